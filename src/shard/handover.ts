// A shard > 0's side of the wire: heartbeats to index 0 from start to end, and each finished image's result handed
// over as soon as it is done, one request at a time, retried with backoff on network errors and 5xx. Results (and
// their files) are kept until index 0 says the run is done: when its instance id changes (index 0 restarted with an
// empty disk), everything is handed over again. Index 0 silent for SHARD_TIMEOUT, or refusing the token, is fatal.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { messageOf } from '../errors.js';
import { HttpFailure, send, type RequestBody } from '../http.js';
import type { Logger } from '../log.js';
import type { Clock } from '../run/ports.js';
import type { ScanResult, ScanTarget } from '../types.js';
import {
  authorization,
  HEARTBEAT_PATH,
  parseAnswer,
  RESULTS_PATH,
  wireResult,
  type CoordinatorAnswer,
  type CoordinatorState,
  type ResultEnvelope,
  type ShardHeartbeat,
} from './protocol.js';

/** The shard cannot go on: its message is the reason it exits non-zero. */
export class ShardFatal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardFatal';
  }
}

export interface HandoverOptions {
  /** SHARD_COORDINATOR_URL. */
  url: string;
  token: string;
  shard: number;
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  /** Backoff of a retried request: first and longest wait. */
  retryMs?: { first: number; max: number };
}

interface Held {
  key: string;
  result: ScanResult;
  /** Acknowledged by index 0's instance `ackedBy`. */
  ackedBy?: string;
}

export class Handover {
  private instance?: string;
  private state: CoordinatorState = 'wait';
  private lastAnswer: number;
  private readonly held: Held[] = [];
  private planned?: number;
  private scanningDone = false;
  private fatal?: ShardFatal;
  private readonly waiters = new Set<() => void>();
  private readonly stopped = new AbortController();

  constructor(private readonly options: HandoverOptions) {
    this.lastAnswer = options.clock.now();
  }

  /** Heartbeats and handovers until stop(); resolves when both loops ended. */
  async run(): Promise<void> {
    // The clock's timers never keep the process alive, and between two requests nothing else may: this does.
    const keepAlive = setInterval(() => undefined, 60_000);
    try {
      await Promise.all([this.heartbeats(), this.handovers()]);
    } finally {
      clearInterval(keepAlive);
    }
  }

  stop(): void {
    this.stopped.abort();
    this.poke();
  }

  setPlanned(count: number): void {
    this.planned = count;
  }

  add(target: ScanTarget, result: ScanResult): void {
    this.held.push({ key: target.key, result });
    this.poke();
  }

  /** Every image of the part was scanned and added. */
  finishScanning(): void {
    this.scanningDone = true;
    this.reportNow();
    this.poke();
  }

  /** Resolves when `state` is reached (or passed: `done` ends every wait); rejects on a fatal error. */
  async until(state: 'scan' | 'done', signal?: AbortSignal): Promise<CoordinatorState> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.state === 'done' || (state === 'scan' && this.state === 'scan')) return this.state;
      if (signal?.aborted) return this.state;
      await this.pause(this.heartbeatMs(), signal);
    }
  }

  /** Results index 0 (its current instance) has not acknowledged. */
  unacknowledged(): number {
    return this.held.filter((held) => held.ackedBy !== this.instance || this.instance === undefined).length;
  }

  get handedOver(): number {
    return this.held.length - this.unacknowledged();
  }

  /** Long polls: each is held by index 0 until its state changes (or a sixth of SHARD_TIMEOUT), then the next. */
  private async heartbeats(): Promise<void> {
    let failures = 0;
    while (!this.stopped.signal.aborted && !this.fatal) {
      const answered = await this.exchange(HEARTBEAT_PATH, jsonBody(this.beat(true))).then(
        () => true,
        () => false,
      );
      // Index 0 not up yet (the Pods start in any order) or briefly away: tried again soon, then less often.
      failures = answered ? 0 : failures + 1;
      if (!answered) await this.pause(Math.min(this.heartbeatMs(), this.backoff(failures)), this.stopped.signal);
    }
  }

  /** Tells index 0 at once what changed here (finished), beside the long poll in flight. */
  private reportNow(): void {
    if (this.stopped.signal.aborted || this.fatal) return;
    this.exchange(HEARTBEAT_PATH, jsonBody(this.beat(false))).catch(() => undefined);
  }

  private beat(hold: boolean): ShardHeartbeat {
    return {
      shard: this.options.shard,
      instance: this.instance,
      planned: this.planned,
      handedOver: this.handedOver,
      finished: this.scanningDone && this.unacknowledged() === 0,
      known: this.state,
      holdMs: hold ? this.heartbeatMs() : undefined,
    };
  }

  private async handovers(): Promise<void> {
    let failures = 0;
    while (!this.stopped.signal.aborted && !this.fatal) {
      const next = this.state !== 'scan' ? undefined : this.held.find((held) => held.ackedBy !== this.instance);
      if (!next || this.instance === undefined) {
        await this.pause(this.heartbeatMs(), this.stopped.signal);
        continue;
      }
      const answer = await this.handOver(next);
      failures = answer ? 0 : failures + 1;
      if (!answer) await this.pause(this.backoff(failures), this.stopped.signal);
    }
  }

  /** One result sent; the answer, or undefined when it must be sent again. */
  private async handOver(held: Held): Promise<CoordinatorAnswer | undefined> {
    const answer = await this.exchange(RESULTS_PATH, await resultBody(this.options.shard, held)).catch(() => undefined);
    if (answer?.accepted === undefined) return undefined;
    held.ackedBy = answer.instance;
    if (this.scanningDone && this.unacknowledged() === 0) this.reportNow();
    if (!answer.accepted)
      this.options.log.warn({ image: held.result.ref, note: answer.note }, 'index 0 did not take this result');
    else this.options.log.debug({ image: held.result.ref }, 'result handed over to index 0');
    return answer;
  }

  /** One request; its answer when index 0 answered 200 (or 503 with an answer), otherwise a rejection. */
  private async exchange(path: string, body: RequestBody): Promise<CoordinatorAnswer> {
    const { url, token, timeoutMs } = this.options;
    try {
      const response = await send({
        method: 'POST',
        url: new URL(path, url),
        headers: { ...authorization(token), 'Content-Type': 'application/octet-stream' },
        body,
        timeoutMs,
        cutoff: this.stopped.signal,
      });
      if (response.status === 401)
        this.fail("index 0 refused this shard's SHARD_TOKEN (401): give every shard the same");
      const answer = parseAnswer(response.text);
      this.lastAnswer = this.options.clock.now();
      this.observe(answer);
      if (response.status !== 200 && response.status !== 503) throw new Error(`index 0 answered ${response.status}`);
      return answer;
    } catch (error) {
      this.checkSilence(error);
      throw error;
    }
  }

  private observe(answer: CoordinatorAnswer): void {
    if (this.instance !== undefined && answer.instance !== this.instance) {
      this.options.log.warn(
        { results: this.held.length },
        'index 0 restarted (its instance changed): handing over again every result this shard holds',
      );
    }
    if (answer.state !== this.state)
      this.options.log.info({ state: answer.state, index_0_scan_group_id: answer.run }, stateMessage(answer.state));
    this.instance = answer.instance;
    this.state = answer.state;
    this.poke();
  }

  private checkSilence(error: unknown): void {
    if (error instanceof ShardFatal) return;
    const silentMs = this.options.clock.now() - this.lastAnswer;
    if (silentMs > this.options.timeoutMs)
      this.fail(
        `index 0 at ${this.options.url} did not answer for ${Math.round(silentMs / 1000)} s (SHARD_TIMEOUT): ${
          error instanceof HttpFailure ? error.code : messageOf(error)
        }`,
      );
  }

  private fail(message: string): never {
    this.fatal ??= new ShardFatal(message);
    this.poke();
    throw this.fatal;
  }

  private heartbeatMs(): number {
    return Math.max(50, Math.min(5000, this.options.timeoutMs / 6));
  }

  private backoff(failures: number): number {
    const { first, max } = this.options.retryMs ?? { first: 250, max: 5000 };
    return Math.min(max, first * 2 ** Math.min(failures - 1, 10));
  }

  private poke(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Waits `ms`, or less when something changed (a result added, an answer, stop). */
  private pause(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        timer.cancel();
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = this.options.clock.setTimer(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done);
    });
  }
}

function stateMessage(state: CoordinatorState): string {
  if (state === 'scan') return 'index 0 holds the run lock: scanning may start';
  if (state === 'done') return 'index 0 says the run is done';
  return 'index 0 is not ready yet (waiting for the run lock)';
}

function jsonBody(value: object): RequestBody {
  const bytes = Buffer.from(JSON.stringify(value));
  return { bytes: bytes.length, open: () => bytes };
}

/** The envelope line, then the findings file, then the SBOM file: streamed, with their exact total size. */
async function resultBody(shard: number, held: Held): Promise<RequestBody> {
  const { result } = held;
  const sbomFile = result.ok ? result.sbomFile : undefined;
  const sbomBytes = sbomFile ? (await stat(sbomFile)).size : 0;
  const envelope: ResultEnvelope = { shard, key: held.key, result: wireResult(result), sbomBytes };
  const line = Buffer.from(`${JSON.stringify(envelope)}\n`);
  const files = [...(result.ok ? [result.image.file] : []), ...(sbomFile ? [sbomFile] : [])];
  const findingsBytes = result.ok ? result.image.bytes : 0;
  return {
    bytes: line.length + findingsBytes + sbomBytes,
    async *open() {
      yield line;
      for (const file of files) for await (const chunk of createReadStream(file)) yield chunk as Buffer;
    },
  };
}
