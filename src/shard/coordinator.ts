// Index 0 of a sharded run: the one deliverer. It tells the other shards when they may scan (once it holds the run
// lock), takes their results into the run's ledger as if it had scanned those images itself, and notices a shard
// that went silent. Its plan is the authority: a result for a key it does not plan is refused (logged), a key is
// settled exactly once (by a shard's result or by its own scan, whichever claimed it first), and every key of its
// plan ends up settled, by a shard or by itself, before the namespaces that need it are delivered: no container is
// ever sent with the findings of only some of its running digests. The HTTP side is coordinator-server.ts.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { Clock } from '../run/ports.js';
import { SCAN_FAILURE_REASONS, type NotDeliveredReason, type ScanResult, type ScanTarget } from '../types.js';
import type { CoordinatorAnswer, CoordinatorState, ResultEnvelope, ShardHeartbeat } from './protocol.js';
import type { ResultFiles } from './receive.js';

export interface CoordinatorOptions {
  /** SHARD_COUNT. */
  count: number;
  /** SHARD_TIMEOUT: a shard not heard from for this long is lost. */
  timeoutMs: number;
  /** Index 0's scan_group_id, the one its payloads carry: told to the shards, so that every Pod's log names it. */
  scanGroupId?: string;
  clock: Clock;
  log: Logger;
}

/** What index 0 gives the coordinator once it planned: where results go and who records them. */
export interface Collection {
  targets: readonly ScanTarget[];
  findingsDir: string;
  sbomDir?: string;
  /** The ledger's entry point (run.ts): called once per key, for a shard's result as for index 0's own. */
  settle: (target: ScanTarget, result: ScanResult) => void;
}

interface ShardState {
  lastSeen?: number;
  planned?: number;
  handedOver: number;
  finished: boolean;
  lost: boolean;
  sawDone: boolean;
}

/** A long poll is held at most this long (a shard asks for less: a sixth of SHARD_TIMEOUT). */
const MAX_HOLD_MS = 10_000;

/** What a shard may report for an image it could not scan: every scan failure, and cancelled and deadline; never
 * invalid_reference or shard_lost, which index 0 decides itself. */
const VALID_FAILURES = new Set<string>([
  ...SCAN_FAILURE_REASONS,
  ...(['cancelled', 'deadline'] satisfies NotDeliveredReason[]),
]);

export class ShardCoordinator {
  readonly instance = randomUUID();
  private state: CoordinatorState = 'wait';
  private scanningSince?: number;
  private collection?: { planned: Map<string, ScanTarget> } & Collection;
  private readonly claimed = new Set<string>();
  private readonly refused = new Set<string>();
  private readonly shards = new Map<number, ShardState>();
  private received = 0;
  private changed?: () => void;
  private readonly stateWaiters = new Set<() => void>();

  constructor(private readonly options: CoordinatorOptions) {
    for (let index = 1; index < options.count; index++)
      this.shards.set(index, { handedOver: 0, finished: false, lost: false, sawDone: false });
  }

  answer(extra: Partial<CoordinatorAnswer> = {}): CoordinatorAnswer {
    const run = this.options.scanGroupId;
    return { instance: this.instance, state: this.state, ...(run !== undefined && { run }), ...extra };
  }

  /** The run lock is held (or none is needed): the shards may scan. */
  startScanning(): void {
    if (this.state !== 'wait') return;
    this.setState('scan');
    this.scanningSince = this.options.clock.now();
    this.options.log.info({ shards: this.options.count }, 'shards may scan now: index 0 holds the run lock');
  }

  /** From now on results are taken into the run. */
  collect(collection: Collection): void {
    const planned = new Map(collection.targets.map((target) => [target.key, target]));
    this.collection = { ...collection, planned };
  }

  /** Index 0 takes `key` for itself: false when it is already settled (or being received) from a shard. */
  claim(key: string): boolean {
    if (this.claimed.has(key)) return false;
    this.claimed.add(key);
    return true;
  }

  heartbeat(beat: ShardHeartbeat): CoordinatorAnswer | undefined {
    const shard = this.shards.get(beat.shard);
    if (!shard) return undefined;
    const first = shard.lastSeen === undefined;
    shard.lastSeen = this.options.clock.now();
    if (first) this.options.log.info({ shard: beat.shard }, 'shard reported');
    if (shard.lost) this.options.log.warn({ shard: beat.shard }, 'a shard counted as lost reported again');
    shard.lost = false;
    if (beat.instance === this.instance) {
      shard.planned = beat.planned ?? shard.planned;
      shard.handedOver = beat.handedOver;
      if (beat.finished && !shard.finished) {
        shard.finished = true;
        this.options.log.info(
          { shard: beat.shard, planned: beat.planned, handed_over: beat.handedOver },
          'shard finished: every result handed over',
        );
      }
    }
    this.changed?.();
    return this.answer();
  }

  /**
   * A shard's long poll: resolves with the answer once the state differs from `known` (at once if it already does),
   * or after `holdMs`, so that a shard hears "scan" and "done" the moment they happen without polling fast.
   */
  async answerWhenChanged(
    shardIndex: number,
    known: CoordinatorState | undefined,
    holdMs: number,
  ): Promise<CoordinatorAnswer> {
    if (known === this.state && holdMs > 0 && this.state !== 'done') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(holdMs, MAX_HOLD_MS));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.stateWaiters.add(done);
      });
    }
    const shard = this.shards.get(shardIndex);
    if (shard && this.state === 'done') shard.sawDone = true;
    return this.answer();
  }

  private setState(state: CoordinatorState): void {
    this.state = state;
    const waiters = [...this.stateWaiters];
    this.stateWaiters.clear();
    for (const wake of waiters) wake();
  }

  /** Decides, from a result's envelope, where its files go: nowhere when the result is not wanted. */
  filesFor(envelope: ResultEnvelope): { files: ResultFiles; take: boolean; answer: CoordinatorAnswer } {
    const collection = this.collection;
    if (!collection) return { files: {}, take: false, answer: this.answer({ note: 'index 0 has not planned yet' }) };
    const target = collection.planned.get(envelope.key);
    if (!target) {
      if (!this.refused.has(envelope.key))
        this.options.log.warn(
          { shard: envelope.shard, image: envelope.result.ref },
          "a shard's result for an image index 0 does not plan was ignored (the shards saw the cluster differently)",
        );
      this.refused.add(envelope.key);
      return { files: {}, take: false, answer: this.answer({ accepted: false, note: 'not in the plan of index 0' }) };
    }
    if (!this.claim(envelope.key))
      return { files: {}, take: false, answer: this.answer({ accepted: true, note: 'already settled' }) };
    if (!envelope.result.ok && !VALID_FAILURES.has(envelope.result.reason)) {
      this.claimed.delete(envelope.key);
      return { files: {}, take: false, answer: this.answer({ accepted: false, note: 'unknown failure reason' }) };
    }
    const name = `shard-${this.received++}`;
    return {
      take: true,
      answer: this.answer({ accepted: true }),
      files: {
        findings: path.join(collection.findingsDir, `${name}.json`),
        sbom: collection.sbomDir && path.join(collection.sbomDir, `${name}.sbom`),
      },
    };
  }

  /** A result whose body was read in full: recorded as the image's result. */
  settleReceived(envelope: ResultEnvelope, files: ResultFiles): void {
    const target = this.collection?.planned.get(envelope.key);
    if (!target || !this.collection) return;
    const wire = envelope.result;
    const result: ScanResult = wire.ok
      ? {
          ok: true,
          ref: target.ref,
          durationMs: wire.durationMs,
          image: { ...wire.image, file: files.findings! },
          sbomFile: envelope.sbomBytes > 0 ? files.sbom : undefined,
        }
      : { ...wire, ref: target.ref };
    this.options.log.debug({ shard: envelope.shard, image: target.ref, ok: wire.ok }, 'result handed over');
    this.collection.settle(target, result);
  }

  /** A result whose body failed: its key may come again. */
  release(envelope: ResultEnvelope): void {
    this.claimed.delete(envelope.key);
  }

  /**
   * Resolves once every shard finished (all its results in) or is lost (silent for SHARD_TIMEOUT; or, past the
   * run's deadline plus SHARD_TIMEOUT, not finished): the keys still unclaimed are then index 0's to scan.
   */
  async shardsSettled(signal: AbortSignal, deadline?: number): Promise<number[]> {
    const { clock } = this.options;
    const check = () => {
      const now = clock.now();
      for (const [index, shard] of this.shards) this.checkLost(index, shard, now, deadline);
      return [...this.shards.values()].every((shard) => shard.finished || shard.lost);
    };
    // The clock's timers never keep the process alive; while index 0 waits for its shards, nothing else may.
    const keepAlive = setInterval(() => undefined, 60_000);
    try {
      await this.waitWhile(() => !check() && !signal.aborted, signal);
    } finally {
      clearInterval(keepAlive);
    }
    return this.lostShards();
  }

  private async waitWhile(condition: () => boolean, signal: AbortSignal): Promise<void> {
    const { clock, timeoutMs } = this.options;
    while (condition()) {
      await new Promise<void>((resolve) => {
        const timer = clock.setTimer(resolve, Math.min(1000, timeoutMs / 4));
        const done = () => {
          timer.cancel();
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.changed = done;
        signal.addEventListener('abort', done);
      });
      this.changed = undefined;
    }
  }

  lostShards(): number[] {
    return [...this.shards].filter(([, shard]) => shard.lost).map(([index]) => index);
  }

  /** The run is over: shards asking from now on are told so; resolves once each live shard heard it (bounded). */
  async finish(): Promise<void> {
    this.setState('done');
    const { clock, timeoutMs } = this.options;
    const until = clock.now() + Math.min(timeoutMs, 30_000);
    const heard = () =>
      [...this.shards.values()].every((s) => s.sawDone || s.lost || s.lastSeen === undefined) || clock.now() > until;
    while (!heard()) await new Promise<void>((resolve) => clock.setTimer(resolve, 100));
    this.report();
  }

  private checkLost(index: number, shard: ShardState, now: number, deadline?: number): void {
    if (shard.finished || shard.lost) return;
    const since = shard.lastSeen ?? this.scanningSince ?? now;
    const silent = now - since > this.options.timeoutMs;
    const late = deadline !== undefined && now > deadline + this.options.timeoutMs;
    if (!silent && !late) return;
    shard.lost = true;
    this.options.log.warn(
      { shard: index, silent_ms: now - since, handed_over: shard.handedOver, planned: shard.planned },
      silent
        ? 'shard lost: not heard from within SHARD_TIMEOUT; index 0 scans what it did not hand over'
        : 'shard lost: not finished by SCAN_DEADLINE plus SHARD_TIMEOUT; index 0 takes over what it did not hand over',
    );
  }

  private report(): void {
    const shards = [...this.shards].map(([index, s]) => ({
      shard: index,
      reported: s.lastSeen !== undefined,
      finished: s.finished,
      lost: s.lost,
      handed_over: s.handedOver,
    }));
    this.options.log.info({ shards }, 'shards at the end of the run');
  }
}
