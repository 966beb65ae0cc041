// Which Trivy stand-in the benchmark runs: bench/fast-trivy.c compiled with the machine's C compiler (one process
// per scan), or bench/fast-trivy.sh when there is none (bash + cat: more CPU per scan, taken from the scanner's
// cores). Both write the same report; the one used is named in docs/performance.md.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const FAST_TRIVY_SCRIPT = fileURLToPath(new URL('./fast-trivy.sh', import.meta.url));
export const FAST_TRIVY_SOURCE = fileURLToPath(new URL('./fast-trivy.c', import.meta.url));
export const PROCESS_START_SOURCE = fileURLToPath(new URL('./process-start.c', import.meta.url));

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
    const built = await compileC(FAST_TRIVY_SOURCE);
    return 'binary' in built
      ? { binary: built.binary, kind: 'c', env }
      : { binary: FAST_TRIVY_SCRIPT, kind: 'bash', note: built.note, env };
  })();
  return compiled;
}

/** Compiles one C file with the machine's compiler ($CC, else cc) into a temporary directory; why not, when it fails. */
export async function compileC(source: string): Promise<{ binary: string } | { note: string }> {
  const compiler = process.env.CC ?? 'cc';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-bench-c-'));
  const binary = path.join(dir, path.basename(source, '.c'));
  try {
    await promisify(execFile)(compiler, ['-O2', '-Wall', '-o', binary, source], { timeout: 60_000 });
    return { binary };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    return {
      note: `${compiler} could not build ${path.basename(source)} (${(error as Error).message.split('\n')[0]})`,
    };
  }
}
