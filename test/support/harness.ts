// Runs the built CLI (dist/ephor-scanner.mjs, what the image ships) as a child process against the three loopback
// stand-ins, exactly as the CronJob runs it: configured by environment variables only.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEphorServer, type EphorServer, type EphorServerOptions } from './ephor-server.js';
import {
  FAKE_TRIVY_BIN,
  FAKE_TRIVY_SCENARIO_ENV,
  readInvocations,
  writeScenario,
  type FakeTrivyInvocation,
  type FakeTrivyScenario,
} from './fake-trivy.js';
import { startKubeServer, type KubeServer, type KubeServerOptions } from './k8s-server.js';
import { CLI_BUNDLE } from './paths.js';

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface ScannerRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON log lines (lines that are not JSON are ignored). */
  logs: LogLine[];
  durationMs: number;
}

export interface RunOptions {
  args?: string[];
  /** Hard bound of the run; the child is killed with SIGKILL when it passes and the test fails. */
  timeoutMs?: number;
  bundle?: string;
  onSpawn?: (child: ChildProcess) => void;
  /** Called for each JSON log line as it is written (e.g. to send a signal at the right moment). */
  onLog?: (line: LogLine, child: ChildProcess) => void;
  /** The scanner's working directory (default: the test's). */
  cwd?: string;
}

export async function runScanner(
  env: Record<string, string | undefined>,
  options: RunOptions = {},
): Promise<ScannerRun> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(process.execPath, [options.bundle ?? CLI_BUNDLE, ...(options.args ?? [])], {
    env: cleanEnv(env),
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  options.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (!options.onLog) return;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of parseLogs(lines.join('\n'))) options.onLog(line, child);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, sig) => {
      resolve([code, sig]);
    }),
  );
  clearTimeout(timer);
  if (timedOut)
    throw new Error(`the scanner did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  return { exitCode, signal, stdout, stderr, logs: parseLogs(stdout), durationMs: Date.now() - started };
}

export function parseLogs(stdout: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line
    }
  }
  return lines;
}

/** Only what a pod would have: no KUBERNETES_SERVICE_HOST from the machine running the tests, no stray settings. */
function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) result[key] = value;
  return result;
}

export interface StandInOptions {
  cluster?: KubeServerOptions;
  trivy?: FakeTrivyScenario;
  ephor?: EphorServerOptions;
}

export interface StandIns {
  kube: KubeServer;
  ephor: EphorServer;
  dir: string;
  /** Environment that points the scanner at the stand-ins; add SCAN_NAMESPACES and the rest per test. */
  env: Record<string, string>;
  scenarioPath: string;
  trivyLog: string;
  invocations(): Promise<FakeTrivyInvocation[]>;
  /** `trivy image REF` scans only (no version or DB download calls). */
  scans(): Promise<FakeTrivyInvocation[]>;
  close(): Promise<void>;
}

/**
 * The environment of a scan run against the stand-ins, as bare as the CronJob's: its own HOME, TMPDIR and Trivy cache
 * under `dir` (created here), the Kubernetes stand-in's kubeconfig, the Ephor stand-in's URL and the given Trivy.
 * The e2e tests, the demo and the benchmark all start from it.
 */
export async function scannerEnv(
  dir: string,
  kube: KubeServer,
  ephorUrl: string,
  trivyBinary: string,
): Promise<Record<string, string>> {
  for (const sub of ['home', 'tmp', 'cache']) await mkdir(path.join(dir, sub), { recursive: true });
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: path.join(dir, 'home'),
    TMPDIR: path.join(dir, 'tmp'),
    KUBECONFIG: await kube.writeKubeconfig(dir),
    EPHOR_API_URL: ephorUrl,
    TRIVY_BINARY: trivyBinary,
    TRIVY_CACHE_DIR: path.join(dir, 'cache'),
  };
}

export async function startStandIns(options: StandInOptions = {}): Promise<StandIns> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-e2e-'));
  const [kube, ephor] = await Promise.all([startKubeServer(options.cluster), startEphorServer(options.ephor)]);
  const { scenarioPath, logPath } = await writeScenario(dir, options.trivy ?? {});
  const env = { ...(await scannerEnv(dir, kube, ephor.url, FAKE_TRIVY_BIN)), [FAKE_TRIVY_SCENARIO_ENV]: scenarioPath };
  const invocations = () => readInvocations(logPath);
  return {
    kube,
    ephor,
    dir,
    env,
    scenarioPath,
    trivyLog: logPath,
    invocations,
    scans: async () =>
      (await invocations()).filter((i) => i.argv[0] === 'image' && !i.argv.some((a) => a.startsWith('--download'))),
    async close() {
      await Promise.all([kube.close(), ephor.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The image argument of a `trivy image` invocation (the last argument). */
export function scannedRef(invocation: FakeTrivyInvocation): string {
  return invocation.argv.at(-1)!;
}

export function logsWith(run: ScannerRun, msg: string): LogLine[] {
  return run.logs.filter((line) => line.msg === msg);
}
