// Everything sent to Ephor goes through one queue, one POST at a time (concurrent ingests corrupt Ephor's data):
// each namespace as soon as all its images are scanned, then the SBOMs. After a shutdown the queue keeps
// delivering what is finished until the grace period ends.
import type { Config } from '../config/index.js';
import { deliverSbom, deliverScan } from '../ephor/client.js';
import { buildNamespacePayload, type RunFacts } from '../ephor/payload.js';
import { digestOf, sbomRequest } from '../ephor/sbom.js';
import type { ScanPlan } from '../images/plan.js';
import type { Logger } from '../log.js';
import type { Discovery, ScanResult, Workload } from '../types.js';
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
  /** Called once a namespace's payload is built with each scan key it used (to release the findings). */
  onBuilt: (scanKeys: string[]) => void;
  shutdown: AbortSignal;
}

export interface SbomSource {
  file: string;
  /** `repo@sha256:…` scanned, or the digest Trivy resolved the tag to. */
  digestRef?: string;
}

export class DeliveryQueue {
  readonly namespaces: NamespaceOutcome[] = [];
  readonly sboms: SbomCounts = { delivered: 0, failed: 0, skipped: 0 };
  private chain: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private readonly workloadsOf = new Map<string, Workload[]>();
  /** Scan key → `image_name:image_tag` of the containers that got its findings (Ephor links SBOMs by it). */
  private readonly imageReferences = new Map<string, Set<string>>();
  private readonly cutoff = new AbortController();
  private readonly onShutdown = () => {
    this.inputs.log.warn({ grace_s: SHUTDOWN_DELIVERY_MS / 1000 }, 'shutdown requested: no new scans; delivering what is finished');
    setTimeout(() => this.cutoff.abort(), SHUTDOWN_DELIVERY_MS).unref();
  };

  constructor(private readonly inputs: DeliveryInputs) {
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
    this.chain = this.chain.then(async () => {
      this.namespaces.push(await this.deliverNamespace(namespace));
    });
  }

  enqueueSbom(scanKey: string, source: SbomSource): void {
    this.chain = this.chain.then(() => this.deliverSboms(scanKey, source));
  }

  async drained(): Promise<void> {
    await this.chain;
    this.inputs.shutdown.removeEventListener('abort', this.onShutdown);
    const order = new Map(this.inputs.discovery.namespaces.map((ns, i) => [ns, i]));
    this.namespaces.sort((a, b) => order.get(a.namespace)! - order.get(b.namespace)!);
  }

  private options() {
    const { ephor } = this.inputs.config;
    return { apiUrl: ephor.apiUrl, auth: ephor.auth, timeoutMs: ephor.timeoutMs, maxRetries: ephor.maxRetries, log: this.inputs.log, cutoff: this.cutoff.signal };
  }

  private async deliverNamespace(namespace: string): Promise<NamespaceOutcome> {
    const { config, discovery, log } = this.inputs;
    const errors = discovery.errors.filter((e) => e.namespace === namespace);
    const kindErrors = errors.filter((e) => (config.scan.workloadKinds as readonly string[]).includes(e.kind));
    const built = buildNamespacePayload({
      namespace,
      workloads: this.workloadsOf.get(namespace) ?? [],
      plan: this.inputs.plan,
      resultOf: this.inputs.resultOf,
      discoveryErrors: errors,
      discoveredNothing: kindErrors.length >= config.scan.workloadKinds.length,
      notAttributed: discovery.notAttributed[namespace],
      run: this.inputs.run,
      completedAt: new Date().toISOString(),
    });
    this.inputs.onBuilt(built.scanKeys);
    for (const [key, references] of built.imageReferences) {
      const known = this.imageReferences.get(key) ?? new Set<string>();
      for (const reference of references) known.add(reference);
      this.imageReferences.set(key, known);
    }
    const { payload, stats } = built;
    const result = await deliverScan(payload, this.options());
    if (result.ok) {
      const r = result.response;
      log.info(
        {
          namespace, scan_id: r.scan_id, status: payload.status, workloads: r.workloads, vulnerabilities: r.vulnerabilities, critical: r.critical_vulns,
          auto_resolved: r.auto_resolved, reopened: r.reopened, not_delivered_containers: stats.containersNotDelivered, by_spec_tag: built.byTag.length,
          bytes: result.bytes, attempts: result.attempts,
        },
        'scan results delivered',
      );
      return { namespace, delivered: true, status: payload.status, scanId: r.scan_id, autoResolved: r.auto_resolved, reopened: r.reopened, bytes: result.bytes, stats };
    }
    const problem = result.problem;
    log.error(
      { namespace, error: result.error, status: result.status, attempts: result.attempts, bytes: result.bytes, problem_type: problem?.type, trace_id: problem?.trace_id, field_errors: problem?.errors?.slice(0, 20) },
      'failed to deliver scan results',
    );
    return { namespace, delivered: false, status: payload.status, error: result.error, bytes: result.bytes, stats };
  }

  /** One POST per `image_name:image_tag` that used this image, so that each container links to it. */
  private async deliverSboms(scanKey: string, source: SbomSource): Promise<void> {
    const { config, log, run } = this.inputs;
    for (const imageReference of this.imageReferences.get(scanKey) ?? []) {
      const body = await sbomRequest(source.file, { imageReference, imageDigest: digestOf(source.digestRef), scanGroupId: run.scanGroupId, trivyFormat: config.sbom.format });
      if (!body.ok) {
        this.sboms.skipped++;
        log.warn({ image: scanKey, image_reference: imageReference, reason: body.reason, detail: body.detail }, 'sbom not delivered');
        continue;
      }
      const result = await deliverSbom(body.request, this.options());
      if (result.ok) {
        this.sboms.delivered++;
        log.info({ image: scanKey, image_reference: imageReference, status: result.response.status, bytes: result.bytes }, 'sbom delivered');
      } else {
        this.sboms.failed++;
        log.error({ image: scanKey, image_reference: imageReference, error: result.error, status: result.status }, 'failed to deliver sbom');
      }
    }
  }
}
