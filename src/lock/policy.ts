// The run lock's rules as pure functions: how long the lease lasts and how often it is renewed, and whether a Lease
// someone else holds may be taken. After client-go tools/leaderelection (leaderelection.go tryAcquireOrRenew,
// isLeaseValid; kubernetes/client-go @ 32ce75a7): a candidate trusts no timestamp written by another clock; it takes
// a lease only once it has seen the record unchanged for the record's own leaseDurationSeconds on its OWN monotonic
// clock, which tolerates any clock skew between hosts. One addition: a renewTime older than twice the duration by this
// run's wall clock is taken at once (a run that died hours ago), which tolerates a skew of up to one duration.
import { parseMicroTime } from './micro-time.js';
import type { LeaseSpec } from './lease-api.js';

export interface LockTiming {
  /** Written into the Lease; what other runs wait before taking it over. */
  leaseDurationSeconds: number;
  leaseDurationMs: number;
  /** A POST attempt may start only while the lease stays valid this much longer (EPHOR_TIMEOUT). */
  fenceMs: number;
  /** Background renewal period while healthy: at most a third of the duration, and half the margin. */
  renewIntervalMs: number;
  /** Background renewal period after a failed renewal. */
  retryIntervalMs: number;
  /** How often a waiting run reads the Lease again (a released one is taken at the next read). */
  pollIntervalMs: number;
}

/**
 * The duration is EPHOR_TIMEOUT plus a margin: Ephor goes on processing a POST after the client gave up, so a holder
 * cut off mid-POST must not be overtaken while that request may still run; and the margin is the time renewals may
 * fail (an API blip, a slow renewal of up to KUBE_TIMEOUT) before POSTs stop. Margin: half the Ephor timeout, at least
 * two Kubernetes timeouts. Defaults (300 s, 30 s): 450 s lease, renewed every 75 s, POSTs stop after 150 s of failed
 * renewals; a run that died is taken over 450 s after its last renewal (at once by a run starting hours later).
 */
export function lockTiming(ephorTimeoutMs: number, kubeTimeoutMs: number): LockTiming {
  const marginMs = Math.max(ephorTimeoutMs / 2, 2 * kubeTimeoutMs);
  const leaseDurationSeconds = Math.max(1, Math.ceil((ephorTimeoutMs + marginMs) / 1000));
  const leaseDurationMs = leaseDurationSeconds * 1000;
  const renewIntervalMs = Math.min(leaseDurationMs / 3, (leaseDurationMs - ephorTimeoutMs) / 2);
  return {
    leaseDurationSeconds,
    leaseDurationMs,
    fenceMs: ephorTimeoutMs,
    renewIntervalMs,
    retryIntervalMs: Math.min(5_000, renewIntervalMs / 2),
    pollIntervalMs: Math.min(5_000, renewIntervalMs),
  };
}

/** What a candidate remembers of the record it saw last: its content and since when (monotonic) it has not changed. */
export interface Observation {
  key: string;
  sinceMs: number;
}

/** client-go compares the whole record; any change (a renewal, a release, a new holder) restarts the wait. */
export function observe(previous: Observation | undefined, spec: LeaseSpec, nowMs: number): Observation {
  const key = JSON.stringify([
    spec.holderIdentity ?? '',
    spec.leaseDurationSeconds ?? 0,
    spec.acquireTime ?? '',
    spec.renewTime ?? '',
    spec.leaseTransitions ?? 0,
  ]);
  return previous?.key === key ? previous : { key, sinceMs: nowMs };
}

export type TakeReason = 'released' | 'expired' | 'stale' | 'ours';

export type Decision =
  | { action: 'take'; reason: TakeReason }
  /** Held by a live run: ask again in `recheckInMs` at the latest (when it would expire on our clock). */
  | { action: 'wait'; holder: string; recheckInMs: number };

export interface DecideInput {
  spec: LeaseSpec;
  observation: Observation;
  identity: string;
  nowMonotonicMs: number;
  nowWallMs: number;
  /** Used when the record names a holder but no usable duration. */
  ownDurationMs: number;
}

export function decide(input: DecideInput): Decision {
  const { spec, observation, identity } = input;
  const holder = spec.holderIdentity ?? '';
  if (holder === '') return { action: 'take', reason: 'released' };
  if (holder === identity) return { action: 'take', reason: 'ours' };
  const durationMs =
    spec.leaseDurationSeconds !== undefined && spec.leaseDurationSeconds > 0
      ? spec.leaseDurationSeconds * 1000
      : input.ownDurationMs;
  const unchangedMs = input.nowMonotonicMs - observation.sinceMs;
  if (unchangedMs >= durationMs) return { action: 'take', reason: 'expired' };
  const renewedAt = spec.renewTime === undefined ? undefined : parseMicroTime(spec.renewTime);
  if (renewedAt !== undefined && input.nowWallMs - renewedAt > 2 * durationMs)
    return { action: 'take', reason: 'stale' };
  return { action: 'wait', holder, recheckInMs: durationMs - unchangedMs };
}

/** The spec this run writes when it takes the lease (client-go: transitions + 1 unless it was already ours). */
export function takenSpec(
  previous: LeaseSpec | undefined,
  reason: TakeReason | 'created',
  identity: string,
  timing: LockTiming,
  nowMicroTime: string,
): LeaseSpec {
  const transitions = previous?.leaseTransitions ?? 0;
  const ours = reason === 'ours';
  return {
    holderIdentity: identity,
    leaseDurationSeconds: timing.leaseDurationSeconds,
    acquireTime: ours ? (previous?.acquireTime ?? nowMicroTime) : nowMicroTime,
    renewTime: nowMicroTime,
    leaseTransitions: reason === 'created' ? 0 : ours ? transitions : transitions + 1,
  };
}

/** client-go's release (LeaderElector.tryRelease): no holder, a one-second duration, transitions kept. */
export function releasedSpec(previous: LeaseSpec, nowMicroTime: string): LeaseSpec {
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: nowMicroTime,
    renewTime: nowMicroTime,
    leaseTransitions: previous.leaseTransitions ?? 0,
  };
}
