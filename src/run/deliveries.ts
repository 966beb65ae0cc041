// Everything sent to Ephor goes through one queue, one POST at a time (concurrent ingests corrupt Ephor's data):
// each namespace as soon as all its images are scanned (split into parts of at most EPHOR_MAX_PAYLOAD_BYTES), then
// the SBOMs, then what earlier runs left in the spool. A namespace that cannot be delivered is spooled for the next
// run. After a shutdown the queue keeps delivering what is finished until the grace period ends.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { splitBody, writeBodyFile, type BodyPart } from '../ephor/body.js';
import { deliverFile, deliverSbom, deliverScan, type DeliveryOptions } from '../ephor/client.js';
import { buildNamespaceBody, type NamespaceBody, type RunFacts } from '../ephor/payload.js';
import { digestOf, sbomRequest } from '../ephor/sbom.js';
import type { ScanPlan } from '../images/plan.js';
import type { Logger } from '../log.js';
import type { Discovery, ScanIngestResponse, ScanResult, Workload } from '../types.js';
import type { Spool } from './spool.js';
import type { NamespaceOutcome, SbomCounts } from './summary.js';

/** After SIGTERM, how long finished work may still be delivered (Kubernetes kills the pod 30 s after SIGTERM). */
export const SHUTDOWN_DELIVERY_MS = 20_000;

export interface DeliveryInputs {
  config: Config;
  log: Logger;
  run: RunFacts;
  discovery: Discovery;
  plan: ScanPlan;
  resultOf: (scanKey: string) => ScanResult | undefined;
  /** Called once a namespace is delivered (or spooled) with each scan key it used, to release their files. */
  onDone: (scanKeys: string[]) => Promise<void>;
  shutdown: AbortSignal;
  spool?: Spool;
  /** The run's temporary directory (findings unions are written there). */
  workDir: string;
}

export interface SbomSource {
  file: string;
  /** `repo@sha256:…` scanned, or the digest Trivy resolved the tag to. */
  digestRef?: string;
}

export class DeliveryQueue {
  readonly namespaces: NamespaceOutcome[] = [];
  readonly sboms: SbomCounts = { delivered: 0, failed: 0, skipped: 0 };
  readonly spooled = { delivered: 0, failed: 0 };
  private chain: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private readonly workloadsOf = new Map<string, Workload[]>();
  /** Scan key → `image_name:image_tag` of the containers that got its findings (Ephor links SBOMs by it). */
  private readonly imageReferences = new Map<string, Set<string>>();
  private readonly cutoff = new AbortController();
  private readonly startedAt: number;
  private readonly onShutdown = () => {
    this.inputs.log.warn(
      { grace_s: SHUTDOWN_DELIVERY_MS / 1000 },
      'shutdown requested: no new scans; delivering what is finished',
    );
    setTimeout(() => {
      this.cutoff.abort();
    }, SHUTDOWN_DELIVERY_MS).unref();
  };

  constructor(private readonly inputs: DeliveryInputs) {
    this.startedAt = Date.parse(inputs.run.startedAt);
    for (const workload of inputs.discovery.workloads) {
      const list = this.workloadsOf.get(workload.namespace);
      if (list) list.push(workload);
      else this.workloadsOf.set(workload.namespace, [workload]);
    }
    if (inputs.shutdown.aborted) this.onShutdown();
    else inputs.shutdown.addEventListener('abort', this.onShutdown, { once: true });
  }

  enqueueNamespace(namespace: string): void {
    if (this.queued.has(namespace)) return;
    this.queued.add(namespace);
    this.enqueue(async () => {
      this.namespaces.push(await this.deliverNamespace(namespace));
    });
  }

  enqueueSbom(scanKey: string, source: SbomSource): void {
    this.enqueue(() => this.deliverSboms(scanKey, source));
  }

  /** Spooled payloads of earlier runs, for the namespaces this run did not deliver itself. */
  enqueueSpooled(): void {
    this.enqueue(() => this.deliverSpooled());
  }

  async drained(): Promise<void> {
    await this.chain;
    this.inputs.shutdown.removeEventListener('abort', this.onShutdown);
    const order = new Map(this.inputs.discovery.namespaces.map((ns, i) => [ns, i]));
    this.namespaces.sort((a, b) => order.get(a.namespace)! - order.get(b.namespace)!);
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      this.inputs.log.error({ err: error }, 'delivery step failed unexpectedly');
    });
  }

  private options(): DeliveryOptions {
    const { ephor } = this.inputs.config;
    return {
      apiUrl: ephor.apiUrl,
      auth: ephor.auth,
      timeoutMs: ephor.timeoutMs,
      maxRetries: ephor.maxRetries,
      log: this.inputs.log,
      cutoff: this.cutoff.signal,
    };
  }

  private async deliverNamespace(namespace: string): Promise<NamespaceOutcome> {
    const { config, discovery } = this.inputs;
    const errors = discovery.errors.filter((e) => e.namespace === namespace);
    const kindErrors = errors.filter((e) => (config.scan.workloadKinds as readonly string[]).includes(e.kind));
    const body = await buildNamespaceBody({
      namespace,
      workloads: this.workloadsOf.get(namespace) ?? [],
      plan: this.inputs.plan,
      resultOf: this.inputs.resultOf,
      discoveryErrors: errors,
      discoveredNothing: kindErrors.length >= config.scan.workloadKinds.length,
      notAttributed: discovery.notAttributed[namespace],
      run: this.inputs.run,
      completedAt: new Date().toISOString(),
      unionDir: this.inputs.workDir,
    });
    for (const [key, references] of body.imageReferences) {
      const known = this.imageReferences.get(key) ?? new Set<string>();
      for (const reference of references) known.add(reference);
      this.imageReferences.set(key, known);
    }
    try {
      const parts = splitBody(body.workloads, body.envelope, config.ephor.maxPayloadBytes);
      if (config.ephor.dryRun) return await this.writeDryRun(body, parts);
      return await this.postNamespace(body, parts);
    } finally {
      await this.inputs.onDone(body.scanKeys);
    }
  }

  private async postNamespace(body: NamespaceBody, parts: BodyPart[]): Promise<NamespaceOutcome> {
    const { namespace, stats } = body;
    const delivered: ScanIngestResponse[] = [];
    const failed: BodyPart[] = [];
    for (const part of parts) await this.postPart(body, part, parts.length, delivered, failed);
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
      if (body.status === 'completed') await this.inputs.spool?.discard(namespace);
      return outcome;
    }
    outcome.error = `${failed.length} of ${outcome.parts} part(s) not delivered`;
    outcome.spooled = await this.spoolParts(namespace, failed);
    return outcome;
  }

  /** One part; a proxy's 413 halves it (by whole workloads or containers) and sends the halves. */
  private async postPart(
    body: NamespaceBody,
    part: BodyPart,
    partCount: number,
    delivered: ScanIngestResponse[],
    failed: BodyPart[],
  ): Promise<void> {
    const { log } = this.inputs;
    const { namespace } = body;
    const result = await deliverScan(namespace, part, this.options());
    if (result.ok) {
      const r = result.response;
      delivered.push(r);
      log.info(
        {
          namespace,
          scan_id: r.scan_id,
          status: body.status,
          part: partCount > 1 ? `${part.label.index}/${part.label.count}` : undefined,
          workloads: r.workloads,
          vulnerabilities: r.vulnerabilities,
          critical: r.critical_vulns,
          auto_resolved: r.auto_resolved,
          reopened: r.reopened,
          not_delivered_containers: body.stats.containersNotDelivered,
          by_spec_tag: body.byTag.length,
          bytes: part.bytes,
          attempts: result.attempts,
        },
        'scan results delivered',
      );
      return;
    }
    const containers = part.workloads.reduce((n, w) => n + w.containers.length, 0);
    if (result.status === 413 && containers > 1) {
      // The halves keep the part's envelope (its scan_config already names the part).
      const halves = splitBody(
        part.workloads,
        () => ({ head: part.head, tail: part.tail }),
        Math.floor(part.bytes / 2),
      );
      log.warn(
        { namespace, bytes: part.bytes, parts: halves.length },
        'the body was too large for a proxy in front of Ephor (413): sending it in smaller parts',
      );
      for (const half of halves) await this.postPart(body, half, partCount + halves.length - 1, delivered, failed);
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
    failed.push(part);
  }

  private async spoolParts(namespace: string, parts: BodyPart[]): Promise<boolean> {
    const { spool, log } = this.inputs;
    if (!spool) return false;
    try {
      await spool.save(namespace, this.startedAt, this.inputs.run.scanGroupId, parts);
      log.warn(
        { namespace, parts: parts.length },
        'payload spooled: the next run delivers it if it cannot deliver this namespace itself',
      );
      return true;
    } catch (error) {
      log.error({ namespace, error: (error as Error).message }, 'payload could not be spooled');
      return false;
    }
  }

  private async deliverSpooled(): Promise<void> {
    const { spool, log } = this.inputs;
    if (!spool) return;
    const delivered = new Set(
      this.namespaces.filter((n) => n.delivered && n.status === 'completed').map((n) => n.namespace),
    );
    const failedNow = new Set(this.namespaces.filter((n) => !n.delivered).map((n) => n.namespace));
    const inScope = new Set(this.inputs.discovery.namespaces);
    for (const [namespace, parts] of await spool.pending()) {
      // Delivered fresh (newer data) or spooled just now (this run's payload is the newest): nothing older may follow.
      if (delivered.has(namespace) || failedNow.has(namespace) || !inScope.has(namespace)) continue;
      for (const part of parts) {
        const result = await deliverFile(namespace, part.file, part.bytes, this.options());
        if (result.ok) {
          this.spooled.delivered++;
          await spool.remove(part);
          log.info(
            {
              namespace,
              scan_id: result.response.scan_id,
              scan_group_id_of_payload: part.scanGroupId,
              started_at: new Date(part.startedAt).toISOString(),
            },
            'spooled payload of an earlier run delivered',
          );
        } else {
          this.spooled.failed++;
          log.error(
            { namespace, error: result.error, status: result.status },
            'spooled payload still not delivered; kept for the next run',
          );
        }
      }
    }
  }

  /** A dry run writes each part to EPHOR_OUTPUT_DIR instead of posting it. */
  private async writeDryRun(body: NamespaceBody, parts: BodyPart[]): Promise<NamespaceOutcome> {
    const dir = this.inputs.config.ephor.outputDir;
    await mkdir(dir, { recursive: true });
    let bytes = 0;
    for (const part of parts) {
      const name =
        parts.length > 1
          ? `${body.namespace}.part-${part.label.index}-of-${part.label.count}.json`
          : `${body.namespace}.json`;
      await writeBodyFile(part, path.join(dir, name));
      bytes += part.bytes;
    }
    this.inputs.log.info(
      { namespace: body.namespace, status: body.status, parts: parts.length, bytes, directory: dir },
      'dry run: payload written, not posted',
    );
    return {
      namespace: body.namespace,
      delivered: true,
      status: body.status,
      stats: body.stats,
      bytes,
      parts: parts.length,
    };
  }

  /** One POST per `image_name:image_tag` that used this image, so that each container links to it. */
  private async deliverSboms(scanKey: string, source: SbomSource): Promise<void> {
    const { config, log, run } = this.inputs;
    for (const imageReference of this.imageReferences.get(scanKey) ?? []) {
      const body = await sbomRequest(source.file, {
        imageReference,
        imageDigest: digestOf(source.digestRef),
        scanGroupId: run.scanGroupId,
        trivyFormat: config.sbom.format,
      });
      if (!body.ok) {
        this.sboms.skipped++;
        log.warn(
          { image: scanKey, image_reference: imageReference, reason: body.reason, detail: body.detail },
          'sbom not delivered',
        );
        continue;
      }
      if (config.ephor.dryRun) {
        const dir = path.join(config.ephor.outputDir, 'sboms');
        await mkdir(dir, { recursive: true });
        await writeFile(
          path.join(
            dir,
            `${imageReference.replace(/[^A-Za-z0-9._-]+/g, '_')}.${digestOf(source.digestRef)?.slice(7, 19) ?? 'tag'}.json`,
          ),
          JSON.stringify(body.request),
        );
        this.sboms.delivered++;
        continue;
      }
      const result = await deliverSbom(body.request, this.options());
      if (result.ok) {
        this.sboms.delivered++;
        log.info(
          { image: scanKey, image_reference: imageReference, status: result.response.status, bytes: result.bytes },
          'sbom delivered',
        );
      } else {
        this.sboms.failed++;
        log.error(
          { image: scanKey, image_reference: imageReference, error: result.error, status: result.status },
          'failed to deliver sbom',
        );
      }
    }
  }
}
