// Runs the Trivy executable: argv array (never a shell), its own process group so a timeout or shutdown kills
// Trivy and everything it started, bounded capture of its output, and an environment without the scanner's settings.
import { spawn } from 'node:child_process';
import { SETTINGS } from '../config/settings.js';

export interface RunOptions {
  binary: string;
  args: string[];
  /** The scanner's environment; scanner settings are withheld from Trivy (see WITHHELD). */
  env: Record<string, string | undefined>;
  /** Variables set deliberately for this Trivy process, after the filtering (e.g. TRIVY_CACHE_BACKEND, DOCKER_CONFIG). */
  extraEnv?: Record<string, string>;
  timeoutMs: number;
  /** Aborting kills the process group at once (shutdown). */
  signal?: AbortSignal;
  /** Keep stdout (for `trivy version`); otherwise it is discarded. */
  captureStdout?: boolean;
}

export interface RunOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  stdout: string;
  stderr: string;
  /** Set when the process could not be started at all (e.g. EACCES). */
  spawnError?: string;
  durationMs: number;
}

/** Head and tail of stderr are kept: the head has the first error, the tail the FATAL line. */
const STDERR_HEAD = 16 * 1024;
const STDERR_TAIL = 48 * 1024;
const STDOUT_LIMIT = 1024 * 1024;
/** After the process exits, how long to wait for its pipes to drain (a grandchild may still hold them). */
const DRAIN_MS = 1000;

/** Process groups still running, killed on shutdown and when this process exits for any reason. */
const liveGroups = new Set<number>();
process.on('exit', killAllTrivyProcesses);

export function killAllTrivyProcesses(): void {
  for (const pid of liveGroups) killGroup(pid);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function runTrivy(options: RunOptions): Promise<RunOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    let timedOut = false;
    let cancelled = false;
    let settled = false;
    const stderr = new BoundedText(STDERR_HEAD, STDERR_TAIL);
    const stdout = new BoundedText(STDOUT_LIMIT, 0);

    const child = spawn(options.binary, options.args, {
      env: { ...trivyEnvironment(options.env), ...options.extraEnv },
      stdio: ['ignore', options.captureStdout ? 'pipe' : 'ignore', 'pipe'],
      detached: true,
    });
    const pid = child.pid;
    if (pid !== undefined) liveGroups.add(pid);

    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (pid !== undefined) {
        killGroup(pid); // leftovers of the group (Trivy itself has exited)
        liveGroups.delete(pid);
      }
      resolve({ exitCode, signal, timedOut, cancelled, stdout: stdout.text(), stderr: stderr.text(), spawnError, durationMs: Date.now() - started });
    };
    const kill = () => pid !== undefined && killGroup(pid);
    const onAbort = () => {
      cancelled = true;
      kill();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.append(chunk));
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => stdout.append(chunk));
    child.on('error', (error) => finish(null, null, error.message));
    child.on('exit', (code, signal) => {
      // 'close' waits for every holder of the pipes; a stray grandchild must not hold up the run.
      const drained = setTimeout(() => finish(code, signal), DRAIN_MS);
      child.on('close', () => {
        clearTimeout(drained);
        finish(code, signal);
      });
    });
  });
}

/** Variables Trivy must not see: the scanner's own settings (several are also Trivy's own names, with another
 * meaning), and Trivy options that would change what the scanner relies on (exit status, output, DB download). */
const WITHHELD = new Set([
  ...SETTINGS.map((s) => s.env),
  'TRIVY_EXIT_CODE',
  'TRIVY_EXIT_ON_EOL',
  'TRIVY_FORMAT',
  'TRIVY_OUTPUT',
  'TRIVY_TEMPLATE',
  'TRIVY_DOWNLOAD_DB_ONLY',
  'TRIVY_DOWNLOAD_JAVA_DB_ONLY',
  'TRIVY_CACHE_BACKEND',
]);

export function trivyEnvironment(env: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !WITHHELD.has(key)) result[key] = value;
  }
  return result;
}

class BoundedText {
  private head = '';
  private tail = '';
  private dropped = 0;

  constructor(private readonly headLimit: number, private readonly tailLimit: number) {}

  append(chunk: string): void {
    if (this.head.length < this.headLimit) {
      const room = this.headLimit - this.head.length;
      this.head += chunk.slice(0, room);
      chunk = chunk.slice(room);
    }
    if (chunk.length === 0) return;
    if (this.tailLimit === 0) {
      this.dropped += chunk.length;
      return;
    }
    this.tail += chunk;
    if (this.tail.length > this.tailLimit) {
      this.dropped += this.tail.length - this.tailLimit;
      this.tail = this.tail.slice(-this.tailLimit);
    }
  }

  text(): string {
    return this.dropped > 0 ? `${this.head}\n[… ${this.dropped} characters omitted …]\n${this.tail}` : this.head + this.tail;
  }
}
