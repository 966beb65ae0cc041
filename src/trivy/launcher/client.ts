// The scanner's side of the launcher (see main.ts): one launcher per scanner process, started on first use. When it
// cannot be used (its file is missing, it died), Trivy processes are started directly by the scanner instead: slower
// on a big heap, never a lost scan (a scan in flight when the launcher died is started again, directly).
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killGroup, type SpawnCallbacks, type SpawnRequest } from '../child-process.js';
import { cancelWaitingStart, startThroughGate } from '../start-gate.js';
import { trivyState as state } from '../state.js';
import type { FromLauncher, ToLauncher } from './protocol.js';

/** Time allowed for the launcher to answer a usage request, and to exit when asked to. */
const USAGE_TIMEOUT_MS = 2000;
const STOP_TIMEOUT_MS = 2000;

export interface LauncherUsage {
  userMs: number;
  systemMs: number;
  maxRssKiB: number;
}

interface Call {
  request: SpawnRequest;
  callbacks: SpawnCallbacks;
  gate?: number;
  handle: StartHandle;
  pid?: number;
}

/** Cancels a call that still waits for a free slot (one that started is killed by its process group). `cancel` is
 * replaced when the call moves from the launcher to this process's own gate (the launcher died). */
export interface StartHandle {
  cancel(): void;
}

export class Launcher {
  readonly process: ChildProcess;
  private nextId = 1;
  private readonly calls = new Map<number, Call>();
  private readonly usageWaiters = new Map<number, (usage: LauncherUsage | undefined) => void>();
  alive = true;

  constructor(entry: string, execArgv: string[]) {
    // An empty environment: Trivy's comes with each request, and the scanner's secrets stay out of this process.
    this.process = fork(entry, [], {
      execArgv,
      env: {},
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.process.on('message', (message: FromLauncher) => {
      this.onMessage(message);
    });
    this.process.on('error', () => {
      this.onGone();
    });
    this.process.on('exit', () => {
      this.onGone();
    });
    this.idle();
  }

  run(request: SpawnRequest, callbacks: SpawnCallbacks, gate: number | undefined, handle: StartHandle): void {
    const id = this.nextId++;
    this.calls.set(id, { request, callbacks, gate, handle });
    handle.cancel = () => {
      if (this.calls.get(id)?.pid === undefined) this.send({ type: 'cancel', id });
    };
    this.busy();
    this.send({ type: 'run', id, gate, ...request });
  }

  usage(): Promise<LauncherUsage | undefined> {
    if (!this.alive) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        settle(undefined);
      }, USAGE_TIMEOUT_MS);
      const settle = (usage: LauncherUsage | undefined) => {
        clearTimeout(timer);
        this.usageWaiters.delete(id);
        resolve(usage);
      };
      this.usageWaiters.set(id, settle);
      this.send({ type: 'usage', id });
    });
  }

  /** Closes the channel (the launcher then kills what it still runs and exits) and reaps it, so that its CPU time
   * and its children's count in this process's rusage. */
  stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.process.kill('SIGKILL');
        resolve();
      }, STOP_TIMEOUT_MS);
      this.process.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.process.connected) this.process.disconnect();
      else this.process.kill('SIGTERM');
    });
  }

  private send(message: ToLauncher): void {
    try {
      this.process.send(message);
    } catch {
      this.onGone();
    }
  }

  private onMessage(message: FromLauncher): void {
    if (message.type === 'usage') {
      this.usageWaiters.get(message.id)?.({
        userMs: message.userMs,
        systemMs: message.systemMs,
        maxRssKiB: message.maxRssKiB,
      });
      return;
    }
    if (!this.alive) {
      // Its exit was seen before this last message: the call was already started again directly, and the process
      // the launcher started on its way out is one nobody waits for.
      if (message.type === 'started') killGroup(message.pid);
      return;
    }
    const call = this.calls.get(message.id);
    if (!call) return;
    if (message.type === 'started') {
      call.pid = message.pid;
      call.callbacks.started(message.pid);
      return;
    }
    this.calls.delete(message.id);
    const { type: _type, id: _id, ...result } = message;
    call.callbacks.done(result);
    if (this.calls.size === 0) this.idle();
  }

  /** Processes in flight are killed (nobody would see them end) and started again directly, in their order, as are
   * the calls that waited for a slot and later ones. */
  private onGone(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const [, call] of this.calls) {
      if (call.pid !== undefined) killGroup(call.pid);
      launchDirect(call.request, call.callbacks, call.gate, call.handle);
    }
    this.calls.clear();
    for (const [, settle] of this.usageWaiters) settle(undefined);
  }

  // The launcher must never keep the scanner alive on its own.
  private idle(): void {
    this.process.unref();
    this.process.channel?.unref();
  }

  private busy(): void {
    this.process.ref();
    this.process.channel?.ref();
  }
}

// The launcher, whether it failed, and the gate of directly started processes are process-wide (../state.ts).

/**
 * Starts a Trivy process through the launcher, or directly when the launcher is unavailable. With `gate` the start
 * waits until fewer than `gate` such processes run (start-gate.ts), so scans can be handed over before a slot frees.
 */
export function launch(request: SpawnRequest, callbacks: SpawnCallbacks, gate?: number): StartHandle {
  const handle: StartHandle = { cancel: () => undefined };
  const current = currentLauncher();
  if (current) current.run(request, callbacks, gate, handle);
  else launchDirect(request, callbacks, gate, handle);
  return handle;
}

function launchDirect(
  request: SpawnRequest,
  callbacks: SpawnCallbacks,
  gate: number | undefined,
  handle: StartHandle,
): void {
  const id = state.nextDirectId++;
  handle.cancel = () => void cancelWaitingStart(state.directGate, id, callbacks);
  startThroughGate(state.directGate, id, gate, request, callbacks);
}

/** CPU and peak memory of the launcher so far (part of the scanner's own cost), if it ran. */
export function launcherUsage(): Promise<LauncherUsage | undefined> {
  return state.launcher ? state.launcher.usage() : Promise.resolve(undefined);
}

/** The launcher's process id, if one is running (for tests). */
export function launcherPid(): number | undefined {
  return state.launcher?.alive ? state.launcher.process.pid : undefined;
}

export async function stopLauncher(): Promise<void> {
  await state.launcher?.stop();
}

function currentLauncher(): Launcher | undefined {
  if (state.launcher && !state.launcher.alive) {
    state.launcher = undefined;
    state.direct = true;
  }
  if (state.launcher || state.direct) return state.launcher;
  const entry = launcherEntry();
  if (!entry) {
    state.direct = true;
    return undefined;
  }
  try {
    state.launcher = new Launcher(entry.file, entry.execArgv);
  } catch {
    state.direct = true; // fork() itself failed (e.g. EAGAIN): start Trivy directly
  }
  return state.launcher;
}

/**
 * The bundle (dist/ephor-scanner.mjs) has dist/trivy-launcher.mjs beside it; from the sources (tests run them with
 * tsx) the launcher is main.ts, loaded through tsx as well.
 */
function launcherEntry(): { file: string; execArgv: string[] } | undefined {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const file = fileURLToPath(new URL('./main.ts', here));
    return existsSync(file) ? { file, execArgv: ['--import', import.meta.resolve('tsx')] } : undefined;
  }
  const file = fileURLToPath(new URL('./trivy-launcher.mjs', here));
  return existsSync(file) ? { file, execArgv: [] } : undefined;
}
