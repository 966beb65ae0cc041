// An image's SBOM without pulling it a second time: the scan ran with --list-all-pkgs, and `trivy convert` turns
// that report into CycloneDX or SPDX. The SBOM waits on disk until it is delivered.
import { rename } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { KILL_GRACE_MS } from './database.js';
import { classifyFailure } from './failure.js';
import { runTrivy } from './process.js';

export async function convertToSbom(
  reportFile: string,
  keepAs: string,
  config: Config,
  env: Record<string, string | undefined>,
  signal?: AbortSignal,
): Promise<{ ok: true } | { ok: false; detail: string }> {
  const output = path.join(
    path.dirname(reportFile),
    `sbom.${config.sbom.format === 'cyclonedx' ? 'cdx' : 'spdx'}.json`,
  );
  const outcome = await runTrivy({
    binary: config.trivy.binary,
    args: ['convert', '--format', config.sbom.format, '--output', output, reportFile],
    env,
    timeoutMs: config.trivy.timeoutMs + KILL_GRACE_MS,
    signal,
  });
  if (outcome.exitCode !== 0 || outcome.timedOut || outcome.spawnError) {
    return { ok: false, detail: outcome.spawnError ?? classifyFailure(outcome).detail };
  }
  await rename(output, keepAs);
  return { ok: true };
}
