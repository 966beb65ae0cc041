// The run lock in a scan run (README "Run lock", src/lock). Taken first, before discovery and Trivy's DB
// preparation: a run that waits holds no Trivy process, does not download the DB into the cache volume the holder
// scans with, and discovers the workloads as they are when it may start, not as they were before its wait. Held
// until the last POST; every POST attempt and every spool write is fenced by it; released at the end (also after a
// shutdown or an unexpected error). A dry run posts nothing, so it takes no lock and never waits for a real run.
import { LockLostError, noRunLock, type AcquireOutcome, type RunLockHandle } from '../lock/index.js';
import type { BodyPart } from '../ephor/body.js';
import type { RunContext } from './run.js';
import type { LockAcquisition, RunDependencies, SpoolPort } from './ports.js';
import type { RunLockOutcome } from './summary.js';

export async function takeRunLock(context: RunContext, deps: RunDependencies): Promise<LockAcquisition> {
  if (context.config.ephor.dryRun) {
    deps.log.info('dry run: nothing is posted, so no run lock is taken');
    return { handle: noRunLock, outcome: { state: 'dry-run' } };
  }
  return deps.lock.acquire(context.scanGroupId, context.shutdown);
}

/** The lock module's answer, as the run uses it: go on with the handle (held, or unlocked with a warning), or stop. */
export function acquisitionOf(result: AcquireOutcome, handle: RunLockHandle, lease: string): LockAcquisition {
  switch (result.outcome) {
    case 'acquired':
      return { handle, outcome: { state: 'acquired', lease } };
    case 'unavailable':
      return { handle, outcome: { state: 'unlocked', lease, message: result.warning } };
    case 'not-acquired':
      return {
        outcome: {
          state: 'not-acquired',
          lease,
          message: `${result.message}: nothing was scanned or posted`,
          ...(result.holder !== undefined && { holder: result.holder }),
        },
      };
  }
}

/** The summary's lock after a loss. */
export function lostOutcome(held: RunLockOutcome, error: LockLostError): RunLockOutcome {
  return {
    ...held,
    state: 'lost',
    message: `${error.message}; nothing more was posted or written to the spool`,
    ...(error.holder !== undefined && { holder: error.holder }),
  };
}

/**
 * The spool, written only while the lock holds: every write (save, discard, and pending(), which deletes expired
 * payloads) is fenced first. After a loss the spool belongs to the new holder: a stale payload written there could
 * be posted later over fresher data, and a discard could delete the new holder's newer payload.
 */
export function fencedSpool(spool: SpoolPort, fence: () => Promise<void>): SpoolPort {
  return {
    async save(namespace: string, startedAt: number, scanGroupId: string, parts: BodyPart[]) {
      await fence();
      await spool.save(namespace, startedAt, scanGroupId, parts);
    },
    async discard(namespace) {
      await fence();
      await spool.discard(namespace);
    },
    async pending(now) {
      await fence();
      return spool.pending(now);
    },
    async remove(part) {
      await fence();
      await spool.remove(part);
    },
  };
}

export function isLockLost(error: unknown): error is LockLostError {
  return error instanceof LockLostError;
}
