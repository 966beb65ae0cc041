// One namespace's ScanIngestRequest, following every rule of the contract's §7.
//
// The rule that matters most: Ephor auto-resolves, per container, every open finding that a container's list does
// not contain. So a container whose image could not be scanned is never sent (it would resolve all its findings);
// it is recorded in the ledger in `scan_config` instead. A workload left with no container is dropped, and a
// namespace in which nothing could be scanned is sent as `failed`, which Ephor never auto-resolves.
//
// The body is assembled from the findings files of its images (see body.ts), never held in memory whole.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isInvalid, type PlannedContainer, type ScanPlan } from '../images/plan.js';
import { emptyCounts, readFindings, type ImageFindings } from '../report/findings.js';
import { COLUMN_LENGTH as L, cleanText, truncate } from '../report/limits.js';
import { naturalKey } from '../report/map-image.js';
import type {
  DiscoveryError,
  LedgerEntry,
  ScanResult,
  ScanStatus,
  ScanSuccess,
  Severity,
  TagScanEntry,
  Vulnerability,
  Workload,
} from '../types.js';
import {
  containerEntry,
  envelopeOf,
  workloadEntry,
  type ContainerEntry,
  type Envelope,
  type FindingsFile,
  type WorkloadEntry,
} from './body.js';

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
  /** Where the findings of containers running several digests (their union) are written. */
  unionDir: string;
}

export interface NamespaceStats {
  workloads: number;
  containersDelivered: number;
  containersNotDelivered: number;
  findings: Record<Severity, number>;
}

export interface NamespaceBody {
  namespace: string;
  status: ScanStatus;
  envelope: Envelope;
  workloads: WorkloadEntry[];
  ledger: LedgerEntry[];
  /** Delivered containers scanned by their spec tag because no running digest was known. */
  byTag: TagScanEntry[];
  /** Scan key → the `image_name:image_tag` of every delivered container that got its findings (for SBOM links). */
  imageReferences: Map<string, Set<string>>;
  stats: NamespaceStats;
  /** Scan keys whose results this body used (their files can be released once it is delivered). */
  scanKeys: string[];
}

export async function buildNamespaceBody(input: NamespaceInput): Promise<NamespaceBody> {
  const ledger: LedgerEntry[] = [];
  const workloads: WorkloadEntry[] = [];
  const findings = emptyCounts();
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

    const containers: ContainerEntry[] = [];
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
      const failed = results.find((r) => r.result && !r.result.ok);
      if (failed?.result && !failed.result.ok) {
        ledger.push(
          entry(
            failed.result.reason,
            planned.scanKeys.length > 1 ? `${failed.key}: ${failed.result.detail}` : failed.result.detail,
          ),
        );
        continue;
      }
      if (results.some((r) => !r.result)) {
        ledger.push(entry('cancelled', 'the run stopped before this image was scanned'));
        continue;
      }
      const images = results.map((r) => (r.result as ScanSuccess).image);
      const { fields, counts, file } = await containerFields(container.name, planned, images, input.unionDir);
      for (const severity of Object.keys(findings) as Severity[]) findings[severity] += counts[severity];
      containers.push(containerEntry(fields, file));
      containersDelivered++;
      const reference = `${String(fields.image_name)}:${String(fields.image_tag)}`;
      for (const key of planned.scanKeys) {
        const refs = imageReferences.get(key);
        if (refs) refs.add(reference);
        else imageReferences.set(key, new Set([reference]));
      }
      if (planned.tagReason) {
        byTag.push({
          workload: workload.name,
          kind: workload.kind,
          container: container.name,
          image: truncate(container.specImage, L.imageName),
          reason: planned.tagReason,
        });
      }
    }
    if (containers.length === 0) continue; // Ephor requires at least one container per workload
    workloads.push(
      workloadEntry(
        {
          namespace: truncate(workload.namespace, L.namespace),
          name: truncate(workload.name, L.workloadName),
          kind: workload.kind,
          labels: payloadLabels(workload.labels, droppedLabels),
        },
        containers,
      ),
    );
  }

  const nothingScanned = containersDelivered === 0 && (containersSeen > 0 || input.discoveredNothing);
  const status: ScanStatus = nothingScanned ? 'failed' : 'completed';
  const envelope: Record<string, unknown> = {
    namespace: truncate(input.namespace, L.namespace),
    scan_label: truncate(input.run.scanLabel, L.scanLabel),
    scan_group_id: input.run.scanGroupId,
    status,
    started_at: input.run.startedAt,
    completed_at: input.completedAt,
  };
  if (input.run.trivyVersion) envelope.trivy_version = truncate(input.run.trivyVersion, L.trivyVersion);
  const counts = { containersSeen, containersDelivered, workloadsDelivered: workloads.length };
  return {
    namespace: input.namespace,
    status,
    envelope: envelopeOf(envelope, scanConfig(input, ledger, byTag, droppedLabels, counts)),
    workloads,
    ledger,
    byTag,
    imageReferences,
    stats: {
      workloads: workloads.length,
      containersDelivered,
      containersNotDelivered: containersSeen - containersDelivered,
      findings,
    },
    scanKeys: [...scanKeys],
  };
}

/** A container running several digests (a rollout, a moved tag) gets the union of their findings. */
async function containerFields(
  name: string,
  planned: PlannedContainer,
  images: ImageFindings[],
  unionDir: string,
): Promise<{ fields: Record<string, unknown>; counts: Record<Severity, number>; file: FindingsFile }> {
  const [first] = images;
  const fields: Record<string, unknown> = {
    name: truncate(name, L.containerName),
    image_name: truncate(planned.imageName, L.imageName),
    image_tag: truncate(planned.imageTag, L.imageTag),
  };
  if (first?.imageCreated) fields.image_created = first.imageCreated;
  const ecosystems = [...new Set(images.flatMap((i) => i.ecosystems))];
  if (ecosystems.length > 0) fields.detected_ecosystems = ecosystems;
  if (first?.osFamily) fields.os_family = first.osFamily;
  if (first?.osName) fields.os_name = first.osName;
  // The digests actually running; for a spec tag, the digests Trivy resolved it to.
  const digests = planned.tagReason ? [...new Set(images.flatMap((i) => i.repoDigests))] : planned.scanKeys;
  if (digests.length > 0) fields.repo_digests = digests;
  if (images.length === 1)
    return { fields, counts: first!.bySeverity, file: { file: first!.file, bytes: first!.bytes } };
  return { fields, ...(await unionOfFindings(images, planned.scanKeys, unionDir)) };
}

async function unionOfFindings(
  images: ImageFindings[],
  keys: string[],
  unionDir: string,
): Promise<{ counts: Record<Severity, number>; file: FindingsFile }> {
  const seen = new Set<string>();
  const union: Vulnerability[] = [];
  const counts = emptyCounts();
  for (const image of images) {
    for (const v of await readFindings(image.file)) {
      const key = naturalKey(v);
      if (seen.has(key)) continue;
      seen.add(key);
      union.push(v);
      counts[v.severity]++;
    }
  }
  const file = path.join(
    unionDir,
    `union-${createHash('sha256').update(keys.join('\n')).digest('hex').slice(0, 24)}.json`,
  );
  const text = JSON.stringify(union);
  await writeFile(file, text, { mode: 0o600 });
  return { counts, file: { file, bytes: Buffer.byteLength(text) } };
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
  if (input.notAttributed && Object.keys(input.notAttributed).length > 0)
    config.pods_not_attributed = input.notAttributed;
  if (input.discoveryErrors.length > 0) {
    config.discovery_errors = input.discoveryErrors.map((e) => ({
      kind: e.kind,
      status: e.status,
      reason: e.reason,
      message: truncate(e.message, MAX_DETAIL),
      ...(e.missingRule ? { missing_rbac: e.missingRule } : {}),
    }));
  }
  if (droppedLabels.length > 0)
    config.labels_dropped = [...new Set(droppedLabels)].slice(0, 50).map((k) => truncate(k, MAX_DETAIL));
  return config;
}
