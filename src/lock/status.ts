// "Who holds the run lock now?" for `check`: one read, judged by the wall clock (a single look cannot use the
// observed-unchanged rule the lock itself uses, so this is an estimate that trusts the holder's clock).
import { failureText, type LeasePort } from './lease-api.js';
import { unavailableWarning } from './messages.js';
import { parseMicroTime } from './micro-time.js';

export type LockStatus =
  | { state: 'free'; detail: 'missing' | 'released' | 'expired'; holder?: string; renewTime?: string }
  | {
      state: 'held';
      holder: string;
      acquireTime?: string;
      renewTime?: string;
      leaseDurationSeconds?: number;
      /** Until it expires unless renewed, by this host's clock. */
      expiresInMs: number;
    }
  | { state: 'unavailable'; reason: 'forbidden' | 'api-missing'; warning: string }
  | { state: 'error'; message: string };

export async function readLockStatus(api: LeasePort, wallNowMs: number): Promise<LockStatus> {
  const read = await api.get();
  if (read.kind === 'not-found' || read.kind === 'namespace-missing') return { state: 'free', detail: 'missing' };
  if (read.kind === 'forbidden' || read.kind === 'api-missing')
    return { state: 'unavailable', reason: read.kind, warning: unavailableWarning(read, api) };
  if (read.kind !== 'ok') return { state: 'error', message: failureText(read) };
  const { holderIdentity, acquireTime, renewTime, leaseDurationSeconds } = read.lease.spec;
  if (!holderIdentity) return { state: 'free', detail: 'released' };
  const renewedAt = renewTime === undefined ? undefined : parseMicroTime(renewTime);
  const expiresInMs =
    renewedAt === undefined || leaseDurationSeconds === undefined
      ? 0
      : renewedAt + leaseDurationSeconds * 1000 - wallNowMs;
  if (expiresInMs <= 0)
    return { state: 'free', detail: 'expired', holder: holderIdentity, ...(renewTime && { renewTime }) };
  return {
    state: 'held',
    holder: holderIdentity,
    expiresInMs,
    ...(acquireTime && { acquireTime }),
    ...(renewTime && { renewTime }),
    ...(leaseDurationSeconds !== undefined && { leaseDurationSeconds }),
  };
}
