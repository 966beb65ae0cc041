// The real Helm binary for the chart tests (fetched by scripts/ensure-helm.sh, or $HELM), kept away from the
// user's Helm config, cache and kube context.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './paths.js';

export const CHART = path.join(REPO_ROOT, 'deploy', 'helm', 'ephor-scanner');
export const HELM = process.env.HELM ?? path.join(REPO_ROOT, '.cache', 'helm', 'helm', 'helm');

/** A private work directory (removed when the test process exits) and the environment Helm runs with. */
export function helmWorkspace(prefix: string): { work: string; env: Record<string, string> } {
  const work = mkdtempSync(path.join(tmpdir(), prefix));
  process.on('exit', () => {
    rmSync(work, { recursive: true, force: true });
  });
  return {
    work,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      HELM_CACHE_HOME: path.join(work, 'cache'),
      HELM_CONFIG_HOME: path.join(work, 'config'),
      HELM_DATA_HOME: path.join(work, 'data'),
      KUBECONFIG: path.join(work, 'no-kubeconfig'),
    },
  };
}

export function requireHelm(): void {
  if (!existsSync(HELM)) {
    throw new Error(`helm not found at ${HELM}: run "bash scripts/ensure-helm.sh" first (or set HELM=/path/to/helm)`);
  }
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real helm binary with `env` (from helmWorkspace), bounded to 30 s. */
export function runHelm(args: string[], env: Record<string, string>): HelmResult {
  requireHelm();
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 30_000, env, cwd: REPO_ROOT });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
