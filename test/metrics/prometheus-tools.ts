// The real Prometheus Pushgateway and promtool for the metrics tests (Debian packages prometheus-pushgateway and
// prometheus; .ci/run installs them). A test file that cannot find them stops with one line saying how to get them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../src/trivy/server.js';

export { freePort };

const HOW_TO_GET =
  'apt-get install prometheus-pushgateway prometheus (Debian), or run .ci/run; or set PUSHGATEWAY_BIN and PROMTOOL_BIN';

function findBinary(name: string, override: string | undefined): string | undefined {
  const candidates = override
    ? [override]
    : [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin'].map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The two binaries, or exit(1) with one line naming what is missing and how to install it. */
export function requirePrometheusTools(): { pushgateway: string; promtool: string } {
  const pushgateway = findBinary('prometheus-pushgateway', process.env.PUSHGATEWAY_BIN);
  const promtool = findBinary('promtool', process.env.PROMTOOL_BIN);
  if (pushgateway && promtool) return { pushgateway, promtool };
  const missing = [pushgateway ? undefined : 'prometheus-pushgateway', promtool ? undefined : 'promtool'].filter(
    Boolean,
  );
  process.stderr.write(`${missing.join(' and ')} not found: ${HOW_TO_GET}\n`);
  process.exit(1);
}

/** Runs promtool with input on stdin, bounded to 60 s. */
export function promtool(binary: string, args: string[], options: { input?: string; cwd?: string } = {}) {
  const r = spawnSync(binary, args, { encoding: 'utf8', timeout: 60_000, ...options });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export interface RunningPushgateway {
  url: string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** The real Pushgateway on a free loopback port, in memory only, ready when this resolves. */
export async function startPushgateway(binary: string): Promise<RunningPushgateway> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Debian's build persists to /var/lib/prometheus/pushgateway.data by default: an empty value keeps it in memory.
  const args = [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'];
  const child = spawn(binary, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
    children.delete(child);
  };
  // Poll /-/ready until it answers, the process exits, or 20 s have passed (a safety net, not a measurement).
  const giveUp = Date.now() + 20_000;
  while (Date.now() < giveUp) {
    if (child.exitCode !== null) throw new Error(`the Pushgateway exited: ${stderr.trim()}`);
    try {
      const r = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) return { url, stop };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop();
  throw new Error(`the Pushgateway did not become ready: ${stderr.trim()}`);
}

export interface MetricFamily {
  type: string;
  help: string;
  metrics: Array<{ labels: Record<string, string>; value: string }>;
}

/** The group with exactly these grouping labels as the Pushgateway's query API serves it, or undefined. */
export async function readGroup(
  gatewayUrl: string,
  labels: Record<string, string>,
): Promise<Record<string, MetricFamily> | undefined> {
  const r = await fetch(`${gatewayUrl}/api/v1/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`GET /api/v1/metrics answered ${r.status}`);
  const body = (await r.json()) as { data: Array<{ labels: Record<string, string> } & Record<string, unknown>> };
  const key = (l: Record<string, string>) => JSON.stringify(Object.entries(l).sort(([a], [b]) => a.localeCompare(b)));
  const found = body.data.find((g) => key(g.labels) === key(labels));
  return found as unknown as Record<string, MetricFamily> | undefined;
}

/** The value of the one sample of `name` with these labels (among others); throws naming what is not served. */
export function sampleValue(families: Record<string, MetricFamily>, name: string, labels: Record<string, string> = {}) {
  const sample = families[name]?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v));
  if (!sample) throw new Error(`${name}${JSON.stringify(labels)} is not served`);
  return Number(sample.value);
}
