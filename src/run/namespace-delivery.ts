// One namespace: its body built from the scan results (payload.ts), split into parts of at most
// EPHOR_MAX_PAYLOAD_BYTES by whole workloads, then each part POSTed (a proxy's 413 halves it: whole workloads, or
// whole containers; a container is never split, since Ephor auto-resolves per container) or, in a dry run, written
// to EPHOR_OUTPUT_DIR. Parts still not delivered are spooled for the next run: only parts of a body built whole.
import { splitBody, type BodyPart } from '../ephor/body.js';
import { buildNamespaceBody, type NamespaceBody } from '../ephor/payload.js';
import { messageOf } from '../errors.js';
import type { ScanIngestResponse } from '../types.js';
import type { DeliveryContext } from './deliveries.js';
import { writeDryRun } from './dry-run.js';
import { isLockLost } from './run-lock.js';
import type { NamespaceOutcome } from './summary.js';

export async function deliverNamespace(context: DeliveryContext, namespace: string): Promise<NamespaceOutcome> {
  const body = await buildBody(context, namespace);
  context.ledger.recordImageReferences(body.imageReferences);
  const parts = splitBody(body.workloads, body.envelope, context.config.ephor.maxPayloadBytes);
  if (context.config.ephor.dryRun) return writeDryRun(context, body, parts);
  return postNamespace(context, body, parts);
}

function buildBody(context: DeliveryContext, namespace: string): Promise<NamespaceBody> {
  const { config, discovery, ledger } = context;
  const errors = discovery.errors.filter((e) => e.namespace === namespace);
  const kindErrors = errors.filter((e) => (config.scan.workloadKinds as readonly string[]).includes(e.kind));
  return buildNamespaceBody({
    namespace,
    workloads: context.workloadsOf(namespace),
    plan: context.plan,
    resultOf: (scanKey) => ledger.resultOf(scanKey),
    discoveryErrors: errors,
    discoveredNothing: kindErrors.length >= config.scan.workloadKinds.length,
    notAttributed: discovery.notAttributed[namespace],
    excludedOwners: discovery.excludedOwners?.[namespace],
    platforms: discovery.platforms,
    run: context.run,
    completedAt: new Date(context.clock.now()).toISOString(),
    unionDir: context.workDir,
  });
}

async function postNamespace(
  context: DeliveryContext,
  body: NamespaceBody,
  parts: BodyPart[],
): Promise<NamespaceOutcome> {
  const { namespace, stats } = body;
  const delivered: ScanIngestResponse[] = [];
  const failed: BodyPart[] = [];
  for (const part of parts) await postPart(context, body, part, parts.length, { delivered, failed });
  const outcome: NamespaceOutcome = {
    namespace,
    delivered: failed.length === 0,
    status: body.status,
    stats,
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    parts: delivered.length + failed.length,
    scanId: delivered[0]?.scan_id,
    autoResolved: delivered.reduce((n, r) => n + r.auto_resolved, 0),
    reopened: delivered.reduce((n, r) => n + r.reopened, 0),
  };
  if (outcome.delivered) {
    // Newer data is in Ephor: an older spooled payload must never follow it.
    if (body.status === 'completed') await discardOlder(context, outcome);
    return outcome;
  }
  outcome.error = `${failed.length} of ${outcome.parts} part(s) not delivered`;
  outcome.spooled = await spoolParts(context, namespace, failed);
  return outcome;
}

/** After a loss of the run lock the spool is not touched: the namespace is delivered, the run stops posting. */
async function discardOlder(context: DeliveryContext, outcome: NamespaceOutcome): Promise<void> {
  try {
    await context.spool?.discard(outcome.namespace);
  } catch (error) {
    if (!isLockLost(error)) throw error;
    context.lockLost(error);
    const { message } = error;
    outcome.error = `delivered, but the spool was left as it was (an older payload of it, if any, stays): ${message}`;
  }
}

interface PartResults {
  delivered: ScanIngestResponse[];
  failed: BodyPart[];
}

/** One part; a proxy's 413 halves it (by whole workloads or containers) and sends the halves. */
async function postPart(
  context: DeliveryContext,
  body: NamespaceBody,
  part: BodyPart,
  partCount: number,
  results: PartResults,
): Promise<void> {
  const { log } = context;
  const { namespace } = body;
  const result = await context.ephor.deliverScan(namespace, part, context.guard);
  if (result.ok) {
    results.delivered.push(result.response);
    logDelivered(context, body, part, partCount, result.response, result.attempts);
    return;
  }
  const containers = part.workloads.reduce((n, w) => n + w.containers.length, 0);
  if (result.status === 413 && containers > 1) {
    // The halves keep the part's envelope (its scan_config already names the part).
    const halves = splitBody(part.workloads, () => ({ head: part.head, tail: part.tail }), Math.floor(part.bytes / 2));
    log.warn(
      { namespace, bytes: part.bytes, parts: halves.length },
      'the body was too large for a proxy in front of Ephor (413): sending it in smaller parts',
    );
    for (const half of halves) await postPart(context, body, half, partCount + halves.length - 1, results);
    return;
  }
  const problem = result.problem;
  log.error(
    {
      namespace,
      error: result.error,
      status: result.status,
      attempts: result.attempts,
      bytes: result.bytes,
      problem_type: problem?.type,
      trace_id: problem?.trace_id,
      field_errors: problem?.errors?.slice(0, 20),
    },
    'failed to deliver scan results',
  );
  results.failed.push(part);
}

function logDelivered(
  context: DeliveryContext,
  body: NamespaceBody,
  part: BodyPart,
  partCount: number,
  response: ScanIngestResponse,
  attempts: number,
): void {
  context.log.info(
    {
      namespace: body.namespace,
      scan_id: response.scan_id,
      status: body.status,
      part: partCount > 1 ? `${part.label.index}/${part.label.count}` : undefined,
      workloads: response.workloads,
      vulnerabilities: response.vulnerabilities,
      critical: response.critical_vulns,
      auto_resolved: response.auto_resolved,
      reopened: response.reopened,
      not_delivered_containers: body.stats.containersNotDelivered,
      by_spec_tag: body.byTag.length,
      bytes: part.bytes,
      attempts,
    },
    'scan results delivered',
  );
}

async function spoolParts(context: DeliveryContext, namespace: string, parts: BodyPart[]): Promise<boolean> {
  const { spool, log, run } = context;
  if (!spool) return false;
  try {
    await spool.save(namespace, Date.parse(run.startedAt), run.scanGroupId, parts);
    log.warn(
      { namespace, parts: parts.length },
      'payload spooled: the next run delivers it if it cannot deliver this namespace itself',
    );
    return true;
  } catch (error) {
    if (isLockLost(error)) throw error; // the spool is the new holder's now: the namespace is recorded as lost
    log.error({ namespace, error: messageOf(error) }, 'payload could not be spooled');
    return false;
  }
}
