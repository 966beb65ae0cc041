// Taking the run lock: read the Lease, create it when missing, take it when released or expired, otherwise wait
// (saying who holds it, at the progress interval) until RUN_LOCK_WAIT runs out. Every write carries the
// resourceVersion it read; a 409 means another run wrote first: read again and decide again.
import type { Logger } from '../log.js';
import type { LockClock } from './clock.js';
import type { LeaseFailure, LeaseObject, LeasePort, LeaseSpec } from './lease-api.js';
import { describeHolder, formatDuration, leaseRef, unavailableWarning } from './messages.js';
import { formatMicroTime } from './micro-time.js';
import { decide, observe, takenSpec, type LockTiming, type Observation, type TakeReason } from './policy.js';

export interface AcquireContext {
  api: LeasePort;
  identity: string;
  timing: LockTiming;
  waitLimitMs: number;
  progressIntervalMs: number;
  clock: LockClock;
  log: Logger;
  signal?: AbortSignal;
}

/** The lease as this run wrote it, and when (monotonic) that write was sent: the lease is valid from then on. */
export interface HeldLease {
  lease: LeaseObject;
  sentAtMs: number;
  reason: TakeReason | 'created';
  previousHolder?: string;
}

export type NotAcquired = {
  outcome: 'not-acquired';
  reason: 'held' | 'api-failing' | 'namespace-missing' | 'rejected' | 'aborted';
  message: string;
  holder?: string;
};
export type Unavailable = { outcome: 'unavailable'; reason: 'forbidden' | 'api-missing'; warning: string };

type Step =
  | { kind: 'acquired'; held: HeldLease }
  | { kind: 'race' }
  | { kind: 'held'; spec: LeaseSpec; observation: Observation; recheckInMs: number }
  | { kind: 'failure'; failure: Exclude<LeaseFailure, { kind: 'not-found' | 'conflict' }> };

/** Conflicts in a row before the loop pauses for a poll interval (each one means another run just wrote). */
const MAX_RACES = 5;

export async function acquireLease(ctx: AcquireContext): Promise<HeldLease | NotAcquired | Unavailable> {
  const { clock, timing } = ctx;
  const deadlineMs = clock.monotonicMs() + ctx.waitLimitMs;
  const logEvery = throttle(clock, ctx.progressIntervalMs);
  let observation: Observation | undefined;
  let holder: LeaseSpec | undefined;
  let lastError: string | undefined;
  let races = 0;
  for (;;) {
    if (ctx.signal?.aborted) return notAcquired(ctx, 'aborted', holder, lastError);
    const step = await attempt(ctx, observation);
    if (step.kind === 'acquired') return step.held;
    if (step.kind === 'race' && ++races <= MAX_RACES) continue;
    races = 0;
    if (step.kind === 'failure') {
      const final = finalOutcome(ctx, step.failure);
      if (final) return final;
      lastError = step.failure.message;
    } else if (step.kind === 'held') {
      [observation, holder, lastError] = [step.observation, step.spec, undefined];
    }
    const nowMs = clock.monotonicMs();
    if (nowMs >= deadlineMs) return notAcquired(ctx, holder ? 'held' : 'api-failing', holder, lastError);
    if (logEvery()) logWaiting(ctx, holder, lastError, ctx.waitLimitMs - (deadlineMs - nowMs));
    const recheckInMs = step.kind === 'held' ? step.recheckInMs : Infinity;
    const pauseMs = Math.min(timing.pollIntervalMs, deadlineMs - nowMs, recheckInMs);
    await clock.sleep(pauseMs, { ...(ctx.signal && { signal: ctx.signal }), keepAlive: true });
  }
}

async function attempt(ctx: AcquireContext, observation: Observation | undefined): Promise<Step> {
  const { api, clock, identity, timing } = ctx;
  const read = await api.get();
  if (read.kind === 'not-found') {
    const sentAtMs = clock.monotonicMs();
    const created = await api.create(takenSpec(undefined, 'created', identity, timing, now(clock)));
    if (created.kind === 'ok') return { kind: 'acquired', held: { lease: created.lease, sentAtMs, reason: 'created' } };
    return created.kind === 'conflict' || created.kind === 'not-found' ? { kind: 'race' } : failure(created);
  }
  if (read.kind !== 'ok') return read.kind === 'conflict' ? { kind: 'race' } : failure(read);
  const { spec } = read.lease;
  const nowMs = clock.monotonicMs();
  const seen = observe(observation, spec, nowMs);
  const decision = decide({
    spec,
    observation: seen,
    identity,
    nowMonotonicMs: nowMs,
    nowWallMs: clock.wallMs(),
    ownDurationMs: timing.leaseDurationMs,
  });
  if (decision.action === 'wait') return { kind: 'held', spec, observation: seen, recheckInMs: decision.recheckInMs };
  const sentAtMs = clock.monotonicMs();
  const written = await api.update(read.lease, takenSpec(spec, decision.reason, identity, timing, now(clock)));
  if (written.kind === 'conflict' || written.kind === 'not-found') return { kind: 'race' };
  if (written.kind !== 'ok') return failure(written);
  const previous = spec.holderIdentity;
  const held: HeldLease = { lease: written.lease, sentAtMs, reason: decision.reason };
  if (previous && previous !== identity) held.previousHolder = previous;
  return { kind: 'acquired', held };
}

function failure(result: LeaseFailure): Step {
  if (result.kind === 'not-found' || result.kind === 'conflict') return { kind: 'race' };
  return { kind: 'failure', failure: result };
}

/** Failures that end the attempt at once; transient ones (undefined) are retried until the wait runs out. */
function finalOutcome(
  ctx: AcquireContext,
  failure: Extract<Step, { kind: 'failure' }>['failure'],
): NotAcquired | Unavailable | undefined {
  switch (failure.kind) {
    case 'forbidden':
    case 'api-missing': {
      const warning = unavailableWarning(failure, ctx.api);
      ctx.log.warn({ lease: leaseRef(ctx.api), error: failure.message }, warning);
      return { outcome: 'unavailable', reason: failure.kind, warning };
    }
    case 'namespace-missing':
      return {
        outcome: 'not-acquired',
        reason: 'namespace-missing',
        message:
          `run lock not acquired: its namespace "${ctx.api.namespace}" does not exist ` +
          `(RUN_LOCK_NAMESPACE): ${failure.message}`,
      };
    case 'failed': {
      if (failure.transient) return undefined;
      const lease = leaseRef(ctx.api);
      return {
        outcome: 'not-acquired',
        reason: 'rejected',
        message: `run lock not acquired: the Kubernetes API rejected the Lease ${lease}: ${failure.message}`,
      };
    }
  }
}

function notAcquired(
  ctx: AcquireContext,
  reason: 'held' | 'api-failing' | 'aborted',
  holder: LeaseSpec | undefined,
  lastError: string | undefined,
): NotAcquired {
  const waited = `after waiting ${formatDuration(ctx.waitLimitMs)} (RUN_LOCK_WAIT)`;
  const why =
    reason === 'aborted'
      ? 'the run was stopped while waiting for it'
      : reason === 'held'
        ? `another run holds it: ${describeHolder(holder ?? {})}; gave up ${waited}`
        : `the Kubernetes API kept failing (${lastError ?? 'no answer'}); gave up ${waited}`;
  return {
    outcome: 'not-acquired',
    reason,
    message: `run lock ${leaseRef(ctx.api)} not acquired: ${why}`,
    ...(holder?.holderIdentity && { holder: holder.holderIdentity }),
  };
}

function logWaiting(
  ctx: AcquireContext,
  holder: LeaseSpec | undefined,
  lastError: string | undefined,
  waitedMs: number,
) {
  const fields = {
    lease: leaseRef(ctx.api),
    waited_s: Math.round(waitedMs / 1000),
    wait_limit_s: Math.round(ctx.waitLimitMs / 1000),
  };
  if (lastError !== undefined)
    ctx.log.warn({ ...fields, error: lastError }, 'run lock: the Kubernetes API is failing; trying again');
  else if (holder)
    ctx.log.info(
      { ...fields, holder: holder.holderIdentity, held_since: holder.acquireTime, renewed_at: holder.renewTime },
      `waiting for the run lock: another run holds it: ${describeHolder(holder)}`,
    );
}

/** true on the first call, then at most once per interval. */
function throttle(clock: LockClock, intervalMs: number): () => boolean {
  let lastMs = -Infinity;
  return () => {
    const nowMs = clock.monotonicMs();
    if (nowMs - lastMs < intervalMs) return false;
    lastMs = nowMs;
    return true;
  };
}

function now(clock: LockClock): string {
  return formatMicroTime(clock.wallMs());
}
