// At the end of a run, the payloads earlier runs spooled, for the namespaces this run did not deliver itself (a
// namespace it could not list, say). Never for a namespace delivered fresh (newer data) or spooled just now (this
// run's payload is the newest): an older result posted after a newer one would reopen or resolve findings wrongly.
import type { DeliveryContext } from './deliveries.js';
import type { SpooledPart } from './spool.js';

export async function deliverSpooled(context: DeliveryContext): Promise<void> {
  const { spool, ledger, discovery } = context;
  if (!spool) return;
  const deliveredFresh = ledger.deliveredFresh();
  const failedNow = ledger.notDelivered();
  const inScope = new Set(discovery.namespaces);
  for (const [namespace, parts] of await spool.pending(context.clock.now())) {
    if (deliveredFresh.has(namespace) || failedNow.has(namespace) || !inScope.has(namespace)) continue;
    for (const part of parts) await deliverSpooledPart(context, namespace, part);
  }
}

async function deliverSpooledPart(context: DeliveryContext, namespace: string, part: SpooledPart): Promise<void> {
  const { log, ledger } = context;
  const result = await context.ephor.deliverFile(namespace, part.file, part.bytes, context.guard);
  if (!result.ok) {
    ledger.spooled.failed++;
    log.error(
      { namespace, error: result.error, status: result.status },
      'spooled payload still not delivered; kept for the next run',
    );
    return;
  }
  ledger.spooled.delivered++;
  await context.spool?.remove(part);
  log.info(
    {
      namespace,
      scan_id: result.response.scan_id,
      scan_group_id_of_payload: part.scanGroupId,
      started_at: new Date(part.startedAt).toISOString(),
    },
    'spooled payload of an earlier run delivered',
  );
}
