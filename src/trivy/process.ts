// Runs the Trivy executable, started in its own process group by the launcher (launcher/main.ts): a timeout or
// shutdown kills Trivy and everything it started; its environment and working directory come from environment.ts.
import os from 'node:os';
import { messageOf } from '../errors.js';
import { killGroup, type SpawnResult } from './child-process.js';
import { trivyEnvironment, trivyWorkingDirectory } from './environment.js';
import { launch } from './launcher/client.js';
import { trivyState } from './state.js';

export interface RunOptions {
  binary: string;
  args: string[];
  /** The scanner's environment; only part of it reaches Trivy (environment.ts trivyEnvironment). */
  env: Record<string, string | undefined>;
  /**
   * Variables set deliberately for this Trivy process, after the filtering (e.g. TRIVY_CACHE_BACKEND, DOCKER_CONFIG).
   */
  extraEnv?: Record<string, string>;
  timeoutMs: number;
  /** Aborting kills the process group at once (shutdown). */
  signal?: AbortSignal;
  /** Keep stdout (for `trivy version`); otherwise it is discarded. */
  captureStdout?: boolean;
  /** A scan: it starts only while fewer than `gate` scans run (SCAN_CONCURRENCY), waiting in order until then; its
   * timeout counts from its start. */
  gate?: number;
  /** Called when the process has started. */
  onStarted?: () => void;
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
  /** The call ended while it waited for a slot (cancelled, or waited too long): no process ran. */
  notStarted: boolean;
  /** When the process started (epoch ms), if it did. */
  startedAt?: number;
  /** From its start (or from the call, if it never started) to its end. */
  durationMs: number;
}

/** Process groups still running, killed on shutdown and when this process exits for any reason (state.ts). */
const liveGroups = trivyState.liveGroups;

/** After a kill, how long the process may take to be reported gone before the call ends without it (a launcher
 * that stopped answering must not hang the run). */
export const SETTLE_AFTER_KILL_MS = 5000;

/**
 * How long a scan may wait for a slot: the processes before it are bounded by their own timeouts, and with at most
 * as many waiting as running (run.ts) one round of each fits. Only a launcher that stopped starting anything hits it.
 */
export function slotWaitLimitMs(timeoutMs: number): number {
  return 2 * timeoutMs + SETTLE_AFTER_KILL_MS;
}

export function runTrivy(options: RunOptions): Promise<RunOutcome> {
  const called = Date.now();
  if (options.signal?.aborted) {
    return Promise.resolve({
      exitCode: null,
      signal: null,
      timedOut: false,
      cancelled: true,
      stdout: '',
      stderr: '',
      notStarted: true,
      durationMs: 0,
    });
  }
  let cwd: string;
  try {
    cwd = trivyWorkingDirectory();
  } catch (error) {
    const spawnError = `its empty working directory cannot be created in ${os.tmpdir()}: ${messageOf(error)}`;
    return Promise.resolve({
      exitCode: null,
      signal: null,
      timedOut: false,
      cancelled: false,
      stdout: '',
      stderr: '',
      spawnError,
      notStarted: false,
      durationMs: Date.now() - called,
    });
  }
  return new Promise((resolve) => {
    let startedAt: number | undefined;
    let timedOut = false;
    let cancelled = false;
    let settled = false;
    let pid: number | undefined;
    /** A kill asked for before the process was known to exist. */
    let killPending = false;
    let settleTimer: NodeJS.Timeout | undefined;

    const settle = (result: SpawnResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(settleTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (pid !== undefined) liveGroups.delete(pid);
      const { notStarted, ...rest } = result;
      resolve({
        ...rest,
        timedOut,
        cancelled,
        // Stopped while it waited for a slot, but the launcher started it before the cancel reached it (a slot freed
        // by a process killed by the same stop): killed at its start, it never scanned, so it counts as not started.
        notStarted: notStarted === true || (killPending && startedAt === undefined),
        startedAt,
        durationMs: Date.now() - (startedAt ?? called),
      });
    };
    const kill = () => {
      if (pid !== undefined) killGroup(pid);
      else {
        killPending = true;
        handle.cancel(); // still waiting for a slot: it never starts
      }
      settleTimer ??= setTimeout(() => {
        settle({
          exitCode: null,
          signal: pid === undefined ? null : 'SIGKILL',
          stdout: '',
          stderr: '',
          notStarted: pid === undefined,
        });
      }, SETTLE_AFTER_KILL_MS);
    };
    const onAbort = () => {
      cancelled = true;
      kill();
    };
    const onTimeout = () => {
      timedOut = true;
      kill();
    };
    let timer = setTimeout(
      onTimeout,
      options.gate === undefined ? options.timeoutMs : slotWaitLimitMs(options.timeoutMs),
    );

    const env = { ...trivyEnvironment(options.env), ...options.extraEnv };
    const handle = launch(
      { binary: options.binary, args: options.args, env, cwd, captureStdout: options.captureStdout ?? false },
      {
        started(startedPid) {
          if (settled) {
            killGroup(startedPid); // too late: the call already ended
            return;
          }
          // started again directly: the launcher died (launcher/client.ts)
          if (pid !== undefined) liveGroups.delete(pid);
          pid = startedPid;
          liveGroups.add(startedPid);
          if (killPending) {
            killGroup(startedPid);
            return;
          }
          if (startedAt === undefined) {
            startedAt = Date.now();
            if (options.gate !== undefined) {
              clearTimeout(timer);
              timer = setTimeout(onTimeout, options.timeoutMs);
            }
            options.onStarted?.();
          }
        },
        done: settle,
      },
      options.gate,
    );
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
