// The run lock (issue 13): one writer to Ephor at a time. See run-lock.ts for what it does and what it cannot do.
import type { KubeClient, KubeJsonWriter } from '../kube/client.js';
import type { Logger } from '../log.js';
import type { LockClock } from './clock.js';
import { holderIdentity } from './identity.js';
import { kubeLeaseApi } from './lease-api.js';
import { lockTiming } from './policy.js';
import { RunLock } from './run-lock.js';

export { systemClock, type LockClock } from './clock.js';
export { defaultLockNamespace, holderIdentity, lockNameProblem, lockNamespaceProblem } from './identity.js';
export { kubeLeaseApi, type LeaseFailure, type LeasePort, type LeaseResult, type LeaseSpec } from './lease-api.js';
export { formatDuration, missingLeaseRule, leaseGrant } from './messages.js';
export { lockTiming, type LockTiming } from './policy.js';
export {
  LockLostError,
  RunLock,
  noRunLock,
  type AcquireOutcome,
  type Acquired,
  type NotAcquired,
  type ReleaseOptions,
  type RunLockHandle,
  type Unavailable,
} from './run-lock.js';
export { readLockStatus, type LockStatus } from './status.js';

export interface CreateRunLockOptions {
  client: KubeClient & KubeJsonWriter;
  /** RUN_LOCK_NAMESPACE (default: defaultLockNamespace(kubeConfig)) and RUN_LOCK_NAME (default ephor-scanner). */
  namespace: string;
  name: string;
  /** RUN_LOCK_WAIT */
  waitLimitMs: number;
  /** EPHOR_TIMEOUT and KUBE_TIMEOUT: they set the lease duration and the fencing margin (lockTiming). */
  ephorTimeoutMs: number;
  kubeTimeoutMs: number;
  /** The run's scan_group_id, process.env and os.hostname(): spec.holderIdentity. */
  scanGroupId: string;
  env: Record<string, string | undefined>;
  hostname: string;
  progressIntervalMs: number;
  log: Logger;
  clock?: LockClock;
}

/** The run lock of RUN_LOCK=lease, on the run's Kubernetes client. */
export function createRunLock(options: CreateRunLockOptions): RunLock {
  return new RunLock({
    api: kubeLeaseApi(options.client, options.namespace, options.name),
    identity: holderIdentity(options.scanGroupId, options.env, options.hostname),
    timing: lockTiming(options.ephorTimeoutMs, options.kubeTimeoutMs),
    waitLimitMs: options.waitLimitMs,
    progressIntervalMs: options.progressIntervalMs,
    log: options.log,
    ...(options.clock && { clock: options.clock }),
  });
}
