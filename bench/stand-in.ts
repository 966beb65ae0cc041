// Which Trivy stand-in the benchmark runs: bench/fast-trivy.c compiled with the machine's C compiler (one process
// per scan), or bench/fast-trivy.sh when there is none (bash + cat: more CPU per scan, taken from the scanner's
// cores). Both write the same report; the one used is named in docs/performance.md.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const FAST_TRIVY_SCRIPT = fileURLToPath(new URL('./fast-trivy.sh', import.meta.url));
export const FAST_TRIVY_SOURCE = fileURLToPath(new URL('./fast-trivy.c', import.meta.url));

export interface TrivyStandIn {
  /** TRIVY_BINARY for the scanner. */
  binary: string;
  kind: 'c' | 'bash';
  /** Why the bash one is used, when it is. */
  note?: string;
  /** Environment both need (the C one hands what it does not do itself to the script). */
  env: Record<string, string>;
}

let compiled: Promise<TrivyStandIn> | undefined;

/** Compiles the C stand-in once per benchmark process (into a temporary directory), or falls back to the script. */
export function trivyStandIn(): Promise<TrivyStandIn> {
  compiled ??= (async () => {
    const env = { FAST_TRIVY_SCRIPT };
    const compiler = process.env.CC ?? 'cc';
    const binary = path.join(await mkdtemp(path.join(os.tmpdir(), 'ephor-fast-trivy-')), 'fast-trivy');
    try {
      await promisify(execFile)(compiler, ['-O2', '-Wall', '-o', binary, FAST_TRIVY_SOURCE], { timeout: 60_000 });
      return { binary, kind: 'c', env };
    } catch (error) {
      const note = `${compiler} could not build ${path.basename(FAST_TRIVY_SOURCE)} (${(error as Error).message.split('\n')[0]})`;
      return { binary: FAST_TRIVY_SCRIPT, kind: 'bash', note, env };
    }
  })();
  return compiled;
}
