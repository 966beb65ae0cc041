// In-process stand-ins for the run lock's unit tests: a clock the test moves by hand, an in-memory Lease store with
// the API server's optimistic concurrency (shared by several locks to make them contend), and a logger that keeps its
// lines.
import { SecretRegistry, createLogger, type Logger } from '../../src/log.js';
import type { LockClock } from '../../src/lock/clock.js';
import type { LeaseFailure, LeaseObject, LeasePort, LeaseResult, LeaseSpec } from '../../src/lock/lease-api.js';

/** Lets every promise chain that does not wait for time run to its end. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Sleeper {
  atMs: number;
  order: number;
  resolve: () => void;
}

/** Time moves only in advance(); the wall clock follows the monotonic one, plus a skew the test may set. */
export class FakeClock implements LockClock {
  nowMs = 0;
  skewMs = 0;
  readonly startWallMs = Date.parse('2026-12-02T14:00:00.000Z');
  private sleepers: Sleeper[] = [];
  private order = 0;

  monotonicMs(): number {
    return this.nowMs;
  }

  wallMs(): number {
    return this.startWallMs + this.nowMs + this.skewMs;
  }

  sleep(ms: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    return new Promise((resolve) => {
      if (options.signal?.aborted) {
        resolve();
        return;
      }
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      };
      const wake = () => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const sleeper: Sleeper = { atMs: this.nowMs + Math.max(0, ms), order: this.order++, resolve: wake };
      this.sleepers.push(sleeper);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Moves time forward by `ms`, waking each sleeper at its own moment, in order. */
  async advance(ms: number): Promise<void> {
    const targetMs = this.nowMs + ms;
    await flush();
    for (;;) {
      const next = this.sleepers
        .filter((s) => s.atMs <= targetMs)
        .sort((a, b) => a.atMs - b.atMs || a.order - b.order)[0];
      if (!next) break;
      this.sleepers = this.sleepers.filter((s) => s !== next);
      this.nowMs = Math.max(this.nowMs, next.atMs);
      next.resolve();
      await flush();
    }
    this.nowMs = targetMs;
    await flush();
  }

  /** Advances in steps until `promise` settles (at most `maxMs`); returns its value. */
  async run<T>(promise: Promise<T>, stepMs = 100, maxMs = 3_600_000): Promise<T> {
    let settled = false;
    void promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    const limitMs = this.nowMs + maxMs;
    await flush();
    while (!settled) {
      if (this.nowMs >= limitMs) throw new Error(`FakeClock.run: not settled within ${maxMs} ms of fake time`);
      await this.advance(stepMs);
    }
    return promise;
  }

  pendingSleeps(): number {
    return this.sleepers.length;
  }
}

export interface FakeCall {
  verb: 'get' | 'create' | 'update';
  atMs: number;
  spec?: LeaseSpec;
  result?: LeaseResult['kind'];
}

/**
 * What a call answers instead of the store: a failure, after an optional delay of fake time; `applied: true` applies
 * the write to the store first (a request the server carried out whose answer was lost).
 */
export type Injected = (
  verb: FakeCall['verb'],
) => { failure?: LeaseFailure; delayMs?: number; applied?: boolean } | undefined;

/** One Lease with resourceVersion semantics (as the API server: stale writes get 409, a second create too). */
export class FakeLeaseStore {
  lease: LeaseObject | undefined;
  private revision = 100;

  constructor(
    readonly namespace = 'ephor',
    readonly name = 'ephor-scanner',
  ) {}

  /** Another client's write (or a seed): a new resourceVersion. */
  put(spec: LeaseSpec): LeaseObject {
    this.lease = {
      metadata: { name: this.name, namespace: this.namespace, uid: 'uid-1', resourceVersion: String(++this.revision) },
      spec: structuredClone(spec),
    };
    return structuredClone(this.lease);
  }

  get(): LeaseResult {
    return this.lease ? { kind: 'ok', lease: structuredClone(this.lease) } : { kind: 'not-found' };
  }

  create(spec: LeaseSpec): LeaseResult {
    if (this.lease) return { kind: 'conflict', message: `leases.coordination.k8s.io "${this.name}" already exists` };
    return { kind: 'ok', lease: this.put(spec) };
  }

  update(current: LeaseObject, spec: LeaseSpec): LeaseResult {
    if (!this.lease) return { kind: 'not-found' };
    if (current.metadata.resourceVersion !== this.lease.metadata.resourceVersion)
      return { kind: 'conflict', message: 'the object has been modified' };
    return { kind: 'ok', lease: this.put(spec) };
  }
}

/** A LeasePort over a FakeLeaseStore, recording its calls; `inject` makes calls fail or take time. */
export class FakeLeaseApi implements LeasePort {
  readonly calls: FakeCall[] = [];
  inject: Injected = () => undefined;
  /** Runs after a read and before the write that follows it (to let another client write in between). */
  beforeWrite: (() => Promise<void>) | undefined;

  constructor(
    readonly store: FakeLeaseStore,
    private readonly clock: FakeClock,
  ) {}

  get namespace(): string {
    return this.store.namespace;
  }

  get name(): string {
    return this.store.name;
  }

  get(): Promise<LeaseResult> {
    return this.call('get', undefined, () => this.store.get());
  }

  create(spec: LeaseSpec): Promise<LeaseResult> {
    return this.call('create', spec, () => this.store.create(spec));
  }

  update(current: LeaseObject, spec: LeaseSpec): Promise<LeaseResult> {
    return this.call('update', spec, () => this.store.update(current, spec));
  }

  private async call(verb: FakeCall['verb'], spec: LeaseSpec | undefined, apply: () => LeaseResult) {
    const call: FakeCall = { verb, atMs: this.clock.nowMs, ...(spec && { spec: structuredClone(spec) }) };
    this.calls.push(call);
    const injected = this.inject(verb);
    if (injected?.delayMs) await this.clock.sleep(injected.delayMs);
    if (verb !== 'get' && this.beforeWrite) await this.beforeWrite();
    const applied = injected?.applied ? apply() : undefined;
    const result = injected?.failure ?? applied ?? apply();
    call.result = result.kind;
    return result;
  }

  writes(): FakeCall[] {
    return this.calls.filter((c) => c.verb !== 'get');
  }
}

export interface CapturedLog {
  log: Logger;
  lines: Array<Record<string, unknown>>;
  messages(level?: string): string[];
}

export function captureLog(): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'debug',
    format: 'json',
    secrets: new SecretRegistry(),
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return {
    log,
    lines,
    messages: (level) => lines.filter((l) => level === undefined || l.level === level).map((l) => String(l.msg)),
  };
}
