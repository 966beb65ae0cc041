// Where the SCAN_CONCURRENCY limit is enforced: next to the processes. The scanner hands over the next scans before
// a slot frees (launcher/main.ts holds them), so when a Trivy process exits the next one starts at once, without
// waiting for the scanner's event loop, which is busy reading reports and sending bodies. First come, first started.
// Node built-ins only: the launcher process runs this too.
import { messageOf } from '../errors.js';
import { spawnGroup, type SpawnCallbacks, type SpawnRequest, type SpawnResult } from './child-process.js';

interface Waiting {
  id: number;
  limit: number;
  start: () => void;
}

export class StartGate {
  private running = 0;
  private readonly waiting: Waiting[] = [];

  /** Starts `start` now if fewer than `limit` gated processes run (and nobody waits before it), else queues it. */
  admit(id: number, limit: number, start: () => void): void {
    if (this.waiting.length === 0 && this.running < limit) {
      this.begin(start);
      return;
    }
    this.waiting.push({ id, limit, start });
  }

  /** A gated process ended (or failed to start): the next waiting one may start. */
  release(): void {
    this.running = Math.max(this.running - 1, 0);
    this.startWaiting();
  }

  /** Removes a waiting start; false when it is not waiting (already started, or unknown). */
  cancel(id: number): boolean {
    const index = this.waiting.findIndex((w) => w.id === id);
    if (index === -1) return false;
    this.waiting.splice(index, 1);
    this.startWaiting(); // a start behind it may fit now
    return true;
  }

  get counts(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.running < this.waiting[0]!.limit) this.begin(this.waiting.shift()!.start);
  }

  private begin(start: () => void): void {
    this.running++;
    start();
  }
}

/** Starts a process group now, or through `gate` when `limit` is set; a start that throws ends the call. */
export function startThroughGate(
  gate: StartGate,
  id: number,
  limit: number | undefined,
  request: SpawnRequest,
  callbacks: SpawnCallbacks,
): void {
  const start = (done: (result: SpawnResult) => void) => {
    try {
      spawnGroup(request, { started: callbacks.started, done });
    } catch (error) {
      done({ exitCode: null, signal: null, stdout: '', stderr: '', spawnError: messageOf(error) });
    }
  };
  if (limit === undefined) {
    start(callbacks.done);
    return;
  }
  gate.admit(id, limit, () => {
    start((result) => {
      gate.release();
      callbacks.done(result);
    });
  });
}

/** Cancels a start still waiting in `gate`: its call ends as never started. False when it is not waiting. */
export function cancelWaitingStart(gate: StartGate, id: number, callbacks: SpawnCallbacks): boolean {
  if (!gate.cancel(id)) return false;
  callbacks.done({ exitCode: null, signal: null, stdout: '', stderr: '', notStarted: true });
  return true;
}
