// Check 6: the run lock (README "Run lock"). Whether the scanner's account may get, update and create the Lease in
// the lock's namespace (one SelfSubjectAccessReview each, as the rbac group asks), and whether a live run holds it
// now (one read of the Lease; the check never writes it). A missing permission is a warning with the rule to grant:
// a run then goes on without the lock, as with an older chart. RUN_LOCK=none: one line saying the lock is off.
import type { Config } from '../config/index.js';
import { messageOf } from '../errors.js';
import {
  formatDuration,
  kubeLeaseApi,
  leaseGrant,
  missingLeaseRule,
  readLockStatus,
  type LockStatus,
} from '../lock/index.js';
import { LEASE_GROUP } from '../lock/lease-api.js';
import type { KubeAccess } from './kubernetes.js';
import { inChart } from './hints.js';
import { fail, pass, warn, type CheckResult } from './types.js';

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const VERBS = ['get', 'update', 'create'] as const;

export type LeaseVerb = (typeof VERBS)[number];

export interface LeaseAccess {
  verb: LeaseVerb;
  allowed: boolean;
  reason?: string;
}

interface AccessReview {
  status?: { allowed?: unknown; reason?: unknown; evaluationError?: unknown };
}

/** `defaultNamespace`: RUN_LOCK_NAMESPACE's default for this Kubernetes configuration (defaultLockNamespace). */
export async function checkLock(config: Config, access: KubeAccess, defaultNamespace: string): Promise<CheckResult[]> {
  if (config.lock.mode === 'none')
    return [
      pass('lock', 'RUN_LOCK=none: runs take no lock (nothing keeps two runs from posting to Ephor at the same time)'),
    ];
  const lease = { namespace: config.lock.namespace ?? defaultNamespace, name: config.lock.name };
  let answers: LeaseAccess[];
  try {
    answers = await Promise.all(VERBS.map((verb) => askAbout(access, lease, verb)));
  } catch (error) {
    return [
      fail(
        'lock',
        `could not ask the API server whether the scanner may use the Lease ${ref(lease)} ` +
          `(SelfSubjectAccessReview: ${messageOf(error)})`,
        'every authenticated account may create SelfSubjectAccessReviews (ClusterRole system:basic-user); ' +
          'check that this binding exists and that the API server answers',
      ),
    ];
  }
  // read-only: the check never writes the Lease
  const api = kubeLeaseApi(
    { ...access.client, writeJson: () => Promise.reject(new Error('read-only')) },
    lease.namespace,
    lease.name,
  );
  const status = answers.find((a) => a.verb === 'get')?.allowed ? await readLockStatus(api, Date.now()) : undefined;
  return describeLock(lease, answers, status, access.user, config.lock.waitMs);
}

async function askAbout(
  access: KubeAccess,
  lease: { namespace: string; name: string },
  verb: LeaseVerb,
): Promise<LeaseAccess> {
  const resourceAttributes: Record<string, string> = {
    verb,
    group: LEASE_GROUP,
    resource: 'leases',
    namespace: lease.namespace,
    // create cannot be limited by name (the name is only in the body), so it is asked without one
    ...(verb !== 'create' && { name: lease.name }),
  };
  const review = await access.client.postJson<AccessReview>(SSAR_PATH, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes },
  });
  const status = review.status ?? {};
  const reason = [status.reason, status.evaluationError]
    .filter((s): s is string => typeof s === 'string' && s !== '')
    .join('; ');
  return { verb, allowed: status.allowed === true, ...(reason && { reason }) };
}

/** The lock's lines: its permissions (one line), then who holds it now (when it could be read). */
export function describeLock(
  lease: { namespace: string; name: string },
  answers: LeaseAccess[],
  status: LockStatus | undefined,
  user: string,
  waitMs: number,
): CheckResult[] {
  const denied = answers.filter((a) => !a.allowed);
  const results: CheckResult[] = [];
  if (denied.length === 0) {
    results.push(pass('lock', `the scanner may get, update and create the Lease ${ref(lease)} (the run lock)`));
  } else {
    const why = denied.flatMap((a) => (a.reason ? [a.reason] : [])).join('; ');
    const reason = why ? ` (${why})` : '';
    results.push(
      warn(
        'lock',
        `the scanner may not ${wordList(denied.map((a) => a.verb))} the Lease ${ref(lease)}${reason}: ` +
          'runs go on WITHOUT the run lock, so nothing keeps another run from posting to Ephor at the same time',
        `${denied.map((a) => missingLeaseRule(a.verb, lease, user)).join('; ')}: ${leaseGrant(lease)}; ` +
          `or point ${inChart('RUN_LOCK_NAMESPACE')} at the namespace where the scanner has that Role`,
      ),
    );
  }
  const statusLine = status && describeStatus(lease, status, waitMs);
  if (statusLine) results.push(statusLine);
  return results;
}

function describeStatus(
  lease: { namespace: string; name: string },
  status: LockStatus,
  waitMs: number,
): CheckResult | undefined {
  switch (status.state) {
    case 'free': {
      const why = {
        missing: 'the Lease does not exist yet; the first run creates it',
        released: 'the last run released it',
        expired: `its last holder "${status.holder ?? ''}" stopped renewing it`,
      }[status.detail];
      return pass('lock', `no run holds the lock now (${why})`);
    }
    case 'held': {
      const since = status.acquireTime ? ` since ${status.acquireTime}` : '';
      const expiresIn = formatDuration(status.expiresInMs);
      return pass(
        'lock',
        `a live run holds the lock now: "${status.holder}"${since} (expires in ${expiresIn} unless renewed); ` +
          `a run starting now waits for it, at most ${formatDuration(waitMs)} (RUN_LOCK_WAIT)`,
      );
    }
    case 'unavailable':
      return warn('lock', status.warning, leaseGrant(lease));
    case 'error':
      return warn(
        'lock',
        `the Lease ${ref(lease)} could not be read: ${status.message}`,
        'check that the API server answers, then run the check again',
      );
  }
}

/** `a`, `a and b`, `a, b and c` */
function wordList(words: string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)!}`;
}

function ref(lease: { namespace: string; name: string }): string {
  return `${lease.namespace}/${lease.name}`;
}
