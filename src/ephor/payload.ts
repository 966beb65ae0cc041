// One namespace's ScanIngestRequest, following every rule of the contract's §7 (pure).
//
// The rule that matters most: Ephor auto-resolves, per container, every open finding that a container's list does
// not contain. So a container whose image could not be scanned is never sent (it would resolve all its findings);
// it is recorded in the ledger in `scan_config` instead. A workload left with no container is dropped, and a
// namespace in which nothing could be scanned is sent as `failed`, which Ephor never auto-resolves.
import { isInvalid, type PlannedContainer, type ScanPlan } from '../images/plan.js';
import { COLUMN_LENGTH as L, cleanText, truncate } from '../report/limits.js';
import type {
  ContainerPayload,
  DiscoveryError,
  LedgerEntry,
  MappedImage,
  ScanIngestRequest,
  ScanResult,
  ScanSuccess,
  Severity,
  TagScanEntry,
  Vulnerability,
  Workload,
  WorkloadPayload,
} from '../types.js';

/** The ledger is bounded so that a namespace of broken images cannot blow up the payload. */
export const MAX_LEDGER_ENTRIES = 200;
const MAX_DETAIL = 300;

export interface RunFacts {
  scanGroupId: string;
  scanLabel: string;
  startedAt: string;
  trivyVersion?: string;
  /** Scanner-wide facts recorded in every `scan_config` (versions, DB dates, settings). */
  scanConfig: Record<string, unknown>;
}

export interface NamespaceInput {
  namespace: string;
  workloads: readonly Workload[];
  plan: ScanPlan;
  resultOf: (scanKey: string) => ScanResult | undefined;
  /** Discovery failures of this namespace (recorded in scan_config). */
  discoveryErrors: readonly DiscoveryError[];
  /** Every list call of this namespace failed: the namespace is reported as failed, not as empty. */
  discoveredNothing: boolean;
  /** Active Pods whose controller has no Ephor kind, by controller kind. */
  notAttributed?: Record<string, number>;
  run: RunFacts;
  completedAt: string;
}

export interface NamespaceStats {
  workloads: number;
  containersDelivered: number;
  containersNotDelivered: number;
  findings: Record<Severity, number>;
}

export interface NamespacePayload {
  payload: ScanIngestRequest;
  ledger: LedgerEntry[];
  /** Delivered containers scanned by their spec tag because no running digest was known. */
  byTag: TagScanEntry[];
  /** Scan key → the `image_name:image_tag` of every delivered container that got its findings (for SBOM links). */
  imageReferences: Map<string, Set<string>>;
  stats: NamespaceStats;
  /** Scan keys whose results this payload used (their memory can be released once it is delivered). */
  scanKeys: string[];
}

export function buildNamespacePayload(input: NamespaceInput): NamespacePayload {
  const ledger: LedgerEntry[] = [];
  const workloads: WorkloadPayload[] = [];
  const findings: Record<Severity, number> = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  const scanKeys = new Set<string>();
  const droppedLabels: string[] = [];
  const byTag: TagScanEntry[] = [];
  const imageReferences = new Map<string, Set<string>>();
  let containersSeen = 0;
  let containersDelivered = 0;
  const seenWorkloads = new Set<string>();

  for (const workload of input.workloads) {
    const identity = `${workload.kind}/${workload.name}`;
    if (seenWorkloads.has(identity)) continue; // a repeated workload would auto-resolve what the first one reported
    seenWorkloads.add(identity);

    const containers: ContainerPayload[] = [];
    const seenContainers = new Set<string>();
    for (const container of workload.containers) {
      if (seenContainers.has(container.name)) continue;
      seenContainers.add(container.name);
      containersSeen++;
      const planned = input.plan.containers.get(container);
      const entry = (reason: LedgerEntry['reason'], detail: string): LedgerEntry => ({
        workload: workload.name,
        kind: workload.kind,
        container: container.name,
        image: truncate(container.specImage, L.imageName),
        reason,
        detail: truncate(detail, MAX_DETAIL),
      });
      if (planned === undefined || isInvalid(planned)) {
        ledger.push(entry('invalid_reference', planned?.invalid ?? 'no image reference'));
        continue;
      }
      for (const key of planned.scanKeys) scanKeys.add(key);
      const results = planned.scanKeys.map((key) => ({ key, result: input.resultOf(key) }));
      // Every image the container runs must be scanned: a union missing one would resolve that image's findings.
      const missing = results.find((r) => !r.result);
      const failed = results.find((r) => r.result && !r.result.ok);
      if (failed?.result && !failed.result.ok) {
        ledger.push(entry(failed.result.reason, describeFailedImage(failed.key, failed.result.detail, planned.scanKeys.length)));
        continue;
      }
      if (missing) {
        ledger.push(entry('cancelled', 'the run stopped before this image was scanned'));
        continue;
      }
      const images = results.map((r) => (r.result as ScanSuccess).image);
      const payload = containerPayload(container.name, planned, images);
      for (const v of payload.vulnerabilities) findings[v.severity]++;
      containers.push(payload);
      containersDelivered++;
      const reference = `${payload.image_name}:${payload.image_tag}`;
      for (const key of planned.scanKeys) {
        const refs = imageReferences.get(key);
        if (refs) refs.add(reference);
        else imageReferences.set(key, new Set([reference]));
      }
      if (planned.tagReason) {
        byTag.push({ workload: workload.name, kind: workload.kind, container: container.name, image: truncate(container.specImage, L.imageName), reason: planned.tagReason });
      }
    }
    if (containers.length === 0) continue; // Ephor requires at least one container per workload
    workloads.push({
      namespace: truncate(workload.namespace, L.namespace),
      name: truncate(workload.name, L.workloadName),
      kind: workload.kind,
      labels: payloadLabels(workload.labels, droppedLabels),
      containers,
    });
  }

  const nothingScanned = containersDelivered === 0 && (containersSeen > 0 || input.discoveredNothing);
  const payload: ScanIngestRequest = {
    namespace: truncate(input.namespace, L.namespace),
    scan_label: truncate(input.run.scanLabel, L.scanLabel),
    scan_group_id: input.run.scanGroupId,
    status: nothingScanned ? 'failed' : 'completed',
    started_at: input.run.startedAt,
    completed_at: input.completedAt,
    scan_config: scanConfig(input, ledger, byTag, droppedLabels, { containersSeen, containersDelivered, workloadsDelivered: workloads.length }),
    workloads,
  };
  if (input.run.trivyVersion) payload.trivy_version = truncate(input.run.trivyVersion, L.trivyVersion);
  return {
    payload,
    ledger,
    byTag,
    imageReferences,
    stats: { workloads: workloads.length, containersDelivered, containersNotDelivered: containersSeen - containersDelivered, findings },
    scanKeys: [...scanKeys],
  };
}

/** A container running several digests (a rollout, a moved tag) gets the union of their findings. */
function containerPayload(name: string, planned: PlannedContainer, images: MappedImage[]): ContainerPayload {
  const [first] = images;
  const container: ContainerPayload = {
    name: truncate(name, L.containerName),
    image_name: truncate(planned.imageName, L.imageName),
    image_tag: truncate(planned.imageTag, L.imageTag),
    vulnerabilities: images.length === 1 ? first!.vulnerabilities : unionOfFindings(images),
  };
  if (first?.imageCreated) container.image_created = first.imageCreated;
  const ecosystems = [...new Set(images.flatMap((i) => i.ecosystems))];
  if (ecosystems.length > 0) container.detected_ecosystems = ecosystems;
  if (first?.osFamily) container.os_family = first.osFamily;
  if (first?.osName) container.os_name = first.osName;
  // The digests actually running; for a spec tag, the digests Trivy resolved it to.
  const digests = planned.tagReason ? [...new Set(images.flatMap((i) => i.repoDigests))] : planned.scanKeys;
  if (digests.length > 0) container.repo_digests = digests;
  return container;
}

function unionOfFindings(images: MappedImage[]): Vulnerability[] {
  const seen = new Set<string>();
  const union: Vulnerability[] = [];
  for (const image of images) {
    for (const v of image.vulnerabilities) {
      const key = [v.cve_id, v.package_name, v.package_version, v.scanner_type].join('\u0000');
      if (seen.has(key)) continue;
      seen.add(key);
      union.push(v);
    }
  }
  return union;
}

function describeFailedImage(key: string, detail: string, images: number): string {
  return images > 1 ? `${key}: ${detail}` : detail;
}

/**
 * Ephor replaces a workload's labels on every POST, so the full set is always sent. Keys over 100 characters would
 * be a 500 for the whole namespace: they are dropped (and listed in scan_config); values are cut to 255.
 */
function payloadLabels(labels: Record<string, string>, dropped: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    const cleanKey = cleanText(key);
    if (Array.from(cleanKey).length > L.labelKey || cleanKey.trim() === '') {
      dropped.push(key);
      continue;
    }
    result[cleanKey] = truncate(value, L.labelValue);
  }
  return result;
}

function scanConfig(
  input: NamespaceInput,
  ledger: LedgerEntry[],
  byTag: TagScanEntry[],
  droppedLabels: string[],
  counts: { containersSeen: number; containersDelivered: number; workloadsDelivered: number },
): Record<string, unknown> {
  const config: Record<string, unknown> = {
    ...input.run.scanConfig,
    coverage: {
      workloads_discovered: input.workloads.length,
      workloads_delivered: counts.workloadsDelivered,
      containers_discovered: counts.containersSeen,
      containers_delivered: counts.containersDelivered,
      containers_not_delivered: counts.containersSeen - counts.containersDelivered,
      containers_by_running_digest: counts.containersDelivered - byTag.length,
      containers_by_spec_tag: byTag.length,
      discovery_complete: input.discoveryErrors.length === 0,
    },
    not_delivered: ledger.slice(0, MAX_LEDGER_ENTRIES),
    scanned_by_tag: byTag.slice(0, MAX_LEDGER_ENTRIES),
  };
  if (ledger.length > MAX_LEDGER_ENTRIES) config.not_delivered_omitted = ledger.length - MAX_LEDGER_ENTRIES;
  if (byTag.length > MAX_LEDGER_ENTRIES) config.scanned_by_tag_omitted = byTag.length - MAX_LEDGER_ENTRIES;
  if (input.notAttributed && Object.keys(input.notAttributed).length > 0) config.pods_not_attributed = input.notAttributed;
  if (input.discoveryErrors.length > 0) {
    config.discovery_errors = input.discoveryErrors.map((e) => ({
      kind: e.kind,
      status: e.status,
      reason: e.reason,
      message: truncate(e.message, MAX_DETAIL),
      ...(e.missingRule ? { missing_rbac: e.missingRule } : {}),
    }));
  }
  if (droppedLabels.length > 0) config.labels_dropped = [...new Set(droppedLabels)].slice(0, 50).map((k) => truncate(k, MAX_DETAIL));
  return config;
}
