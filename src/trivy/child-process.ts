// Starting one Trivy process: argv array (never a shell), its own process group so that a timeout or shutdown
// kills Trivy and everything it started, bounded capture of its output. Node built-ins only: the launcher process
// (launcher/main.ts) runs this too.
import { spawn } from 'node:child_process';

export interface SpawnRequest {
  binary: string;
  args: string[];
  /** The complete environment of the process (already filtered by the caller). */
  env: Record<string, string>;
  /** Its working directory: an empty one (environment.ts trivyWorkingDirectory), never the scanner's. */
  cwd: string;
  /** Keep stdout (for `trivy version`); otherwise it is discarded. */
  captureStdout: boolean;
}

export interface SpawnResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when the process could not be started at all (e.g. ENOENT, EACCES). */
  spawnError?: string;
  /** Set when the call was cancelled while it waited for a free slot (start-gate.ts): no process ran. */
  notStarted?: boolean;
}

export interface SpawnCallbacks {
  /** The process (and its group, same id) exists. */
  started: (pid: number) => void;
  done: (result: SpawnResult) => void;
}

/** Head and tail of stderr are kept: the head has the first error, the tail the FATAL line. */
const STDERR_HEAD = 16 * 1024;
const STDERR_TAIL = 48 * 1024;
const STDOUT_LIMIT = 1024 * 1024;
/** After the process exits, how long to wait for its pipes to drain (a grandchild may still hold them). */
const DRAIN_MS = 1000;

export function spawnGroup(request: SpawnRequest, callbacks: SpawnCallbacks): void {
  const stderr = new BoundedText(STDERR_HEAD, STDERR_TAIL);
  const stdout = new BoundedText(STDOUT_LIMIT, 0);
  let settled = false;
  const child = spawn(request.binary, request.args, {
    env: request.env,
    cwd: request.cwd,
    stdio: ['ignore', request.captureStdout ? 'pipe' : 'ignore', 'pipe'],
    detached: true,
  });
  const pid = child.pid;
  const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: string) => {
    if (settled) return;
    settled = true;
    if (pid !== undefined) killGroup(pid); // leftovers of the group (Trivy itself has exited)
    callbacks.done({ exitCode, signal, stdout: stdout.text(), stderr: stderr.text(), spawnError });
  };
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.append(chunk);
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout.append(chunk);
  });
  child.on('error', (error) => {
    finish(null, null, error.message);
  });
  child.on('exit', (code, signal) => {
    // 'close' waits for every holder of the pipes; a stray grandchild must not hold up the run.
    const drained = setTimeout(() => {
      finish(code, signal);
    }, DRAIN_MS);
    child.on('close', () => {
      clearTimeout(drained);
      finish(code, signal);
    });
  });
  if (pid !== undefined) callbacks.started(pid);
}

export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

class BoundedText {
  private head = '';
  private tail = '';
  private dropped = 0;

  constructor(
    private readonly headLimit: number,
    private readonly tailLimit: number,
  ) {}

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
    return this.dropped > 0
      ? `${this.head}\n[… ${this.dropped} characters omitted …]\n${this.tail}`
      : this.head + this.tail;
  }
}
