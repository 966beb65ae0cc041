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
import { isInvalid, isUnscannable, type ContainerPlan, type PlannedContainer, type ScanPlan } from '../images/plan.js';
import { emptyCounts, readFindings, type ImageFindings } from '../report/findings.js';
import { COLUMN_LENGTH as L, cleanText, truncate } from '../report/limits.js';
import { naturalKey } from '../report/map-image.js';
import type {
  ContainerNotDeliveredReason,
  ContainerRef,
  DiscoveryError,
  PlatformFacts,
  ScanResult,
  TagReason,
  Workload,
} from '../types.js';
import {
  containerEntry,
  envelopeOf,
  workloadEntry,
  type ContainerEntry,
  type ContainerFields,
  type Envelope,
  type EnvelopeFields,
  type FindingsFile,
  type WorkloadEntry,
  type WorkloadFields,
} from './body.js';
import {
  SEVERITIES,
  type Coverage,
  type DiscoveryErrorEntry,
  type LedgerEntry,
  type MultiPlatformEntry,
  type NamespaceLedger,
  type PlatformLedger,
  type ScannerFacts,
  type ScanStatus,
  type Severity,
  type TagScanEntry,
  type Vulnerability,
} from './contract.js';

/** The ledger is bounded so that a namespace of broken images cannot blow up the payload. */
export const MAX_LEDGER_ENTRIES = 200;
const MAX_DETAIL = 300;
const MAX_DROPPED_LABELS = 50;

export interface RunFacts {
  scanGroupId: string;
  scanLabel: string;
  startedAt: string;
  trivyVersion?: string;
  /** Scanner-wide facts recorded in every `scan_config` (versions, DB dates, settings). */
  scanConfig: ScannerFacts;
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
  /** Active Pods not reported because their owner cannot be, by controller kind. */
  notAttributed?: Record<string, number>;
  /** Active Pods left out by SCAN_OTHER_CONTROLLERS_EXCLUDE, by owner `Kind.group`. */
  excludedOwners?: Record<string, number>;
  /** The nodes' platforms (absent: not asked for, nothing about platforms is recorded). */
  platforms?: PlatformFacts;
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
  /** Delivered containers by the platform they were scanned for (`unknown`: without `--platform`). */
  byPlatform?: Record<string, number>;
}

/** The platform key of a container scanned without `--platform`. */
export const UNKNOWN_PLATFORM = 'unknown';

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

/** What a namespace's containers came to, gathered while its workloads are walked. */
interface Tally {
  workloads: WorkloadEntry[];
  ledger: LedgerEntry[];
  byTag: TagScanEntry[];
  multiPlatform: MultiPlatformEntry[];
  byPlatform: Record<string, number>;
  droppedLabels: string[];
  findings: Record<Severity, number>;
  scanKeys: Set<string>;
  imageReferences: Map<string, Set<string>>;
  containersSeen: number;
  containersDelivered: number;
}

/** What becomes of one container: sent with the findings of every image it runs, or left out with a reason. */
type ContainerFate =
  | { delivered: true; planned: PlannedContainer; images: ImageFindings[]; scanKeys: string[] }
  | { delivered: false; reason: ContainerNotDeliveredReason; detail: string; scanKeys: string[]; platforms?: string[] };

export async function buildNamespaceBody(input: NamespaceInput): Promise<NamespaceBody> {
  const tally: Tally = {
    workloads: [],
    ledger: [],
    byTag: [],
    multiPlatform: [],
    byPlatform: {},
    droppedLabels: [],
    findings: emptyCounts(),
    scanKeys: new Set(),
    imageReferences: new Map(),
    containersSeen: 0,
    containersDelivered: 0,
  };
  // A repeated workload would auto-resolve what the first one reported.
  for (const workload of distinctBy(input.workloads, (w) => `${w.kind}/${w.name}`)) {
    const containers = await workloadContainers(workload, input, tally);
    if (containers.length === 0) continue; // Ephor requires at least one container per workload
    tally.workloads.push(workloadEntry(workloadFields(workload, tally.droppedLabels), containers));
  }
  const status = namespaceStatus(tally, input.discoveredNothing);
  return {
    namespace: input.namespace,
    status,
    envelope: envelopeOf(envelopeFields(input, status), { ...input.run.scanConfig, ...namespaceLedger(input, tally) }),
    workloads: tally.workloads,
    ledger: tally.ledger,
    byTag: tally.byTag,
    imageReferences: tally.imageReferences,
    stats: {
      workloads: tally.workloads.length,
      containersDelivered: tally.containersDelivered,
      containersNotDelivered: tally.containersSeen - tally.containersDelivered,
      findings: tally.findings,
      byPlatform: tally.byPlatform,
    },
    scanKeys: [...tally.scanKeys],
  };
}

/** The entries of a workload's containers that go into the payload; the others go to the ledger. */
async function workloadContainers(workload: Workload, input: NamespaceInput, tally: Tally): Promise<ContainerEntry[]> {
  const entries: ContainerEntry[] = [];
  // A repeated container name would auto-resolve what the first one reported.
  for (const container of distinctBy(workload.containers, (c) => c.name)) {
    tally.containersSeen++;
    const fate = containerFate(input.plan.containers.get(container), input.resultOf);
    for (const key of fate.scanKeys) tally.scanKeys.add(key);
    if (fate.delivered) entries.push(await deliveredContainer(workload, container, fate, input.unionDir, tally));
    else tally.ledger.push(ledgerEntry(workload, container, fate));
  }
  return entries;
}

/** Sent when every image it runs was scanned; otherwise left out, with the reason the ledger records. */
function containerFate(planned: ContainerPlan | undefined, resultOf: NamespaceInput['resultOf']): ContainerFate {
  if (planned === undefined || isInvalid(planned)) {
    const detail = planned?.invalid ?? 'no image reference';
    return { delivered: false, reason: 'invalid_reference', detail, scanKeys: [] };
  }
  if (isUnscannable(planned)) {
    const detail = `runs only on ${planned.unscannable.join(', ')} nodes: Trivy cannot scan Windows images`;
    return { delivered: false, reason: 'unsupported_platform', detail, scanKeys: [], platforms: planned.unscannable };
  }
  const { scanKeys } = planned;
  const platforms = planned.platforms.length > 0 ? { platforms: planned.platforms } : {};
  const results = scanKeys.map((key) => ({ key, result: resultOf(key) }));
  // Every image the container runs must be scanned: a union missing one would resolve that image's findings. A
  // failed scan is the reason given even when another of its images was never scanned.
  for (const { key, result } of results) {
    if (result?.ok !== false) continue;
    const detail = scanKeys.length > 1 ? `${key}: ${result.detail}` : result.detail;
    return { delivered: false, reason: result.reason, detail, scanKeys, ...platforms };
  }
  const images = results.flatMap(({ result }) => (result?.ok ? [result.image] : []));
  if (images.length < scanKeys.length) {
    const detail = 'the run stopped before this image was scanned';
    return { delivered: false, reason: 'cancelled', detail, scanKeys, ...platforms };
  }
  return { delivered: true, planned, images, scanKeys };
}

/** A container sent with its findings: its entry, and what it adds to the namespace's counts and references. */
async function deliveredContainer(
  workload: Workload,
  container: ContainerRef,
  fate: Extract<ContainerFate, { delivered: true }>,
  unionDir: string,
  tally: Tally,
): Promise<ContainerEntry> {
  const { planned, images } = fate;
  const { fields, counts, file } = await containerFields(container.name, planned, images, unionDir);
  for (const severity of SEVERITIES) tally.findings[severity] += counts[severity];
  tally.containersDelivered++;
  const reference = `${fields.image_name}:${fields.image_tag}`;
  for (const key of planned.scanKeys) {
    const refs = tally.imageReferences.get(key);
    if (refs) refs.add(reference);
    else tally.imageReferences.set(key, new Set([reference]));
  }
  if (planned.tagReason) tally.byTag.push(tagScanEntry(workload, container, planned.tagReason, planned.platforms[0]));
  countPlatforms(workload, container, planned, tally);
  return containerEntry(fields, file);
}

/** What platforms a delivered container adds to the namespace's counts, and its entry when it has several. */
function countPlatforms(workload: Workload, container: ContainerRef, planned: PlannedContainer, tally: Tally): void {
  const platforms = planned.platforms.length > 0 ? planned.platforms : [UNKNOWN_PLATFORM];
  for (const platform of platforms) tally.byPlatform[platform] = (tally.byPlatform[platform] ?? 0) + 1;
  const notScanned = planned.unscannablePlatforms ?? [];
  if (planned.platforms.length < 2 && notScanned.length === 0) return;
  tally.multiPlatform.push({
    workload: truncate(workload.name, L.workloadName),
    kind: workload.kind,
    container: truncate(container.name, L.containerName),
    platforms: planned.platforms,
    ...(notScanned.length > 0 && { not_scanned: notScanned }),
  });
}

function ledgerEntry(
  workload: Workload,
  container: ContainerRef,
  fate: Extract<ContainerFate, { delivered: false }>,
): LedgerEntry {
  return {
    workload: workload.name,
    kind: workload.kind,
    container: container.name,
    image: truncate(container.specImage, L.imageName),
    reason: fate.reason,
    detail: truncate(fate.detail, MAX_DETAIL),
    ...(fate.platforms && { platforms: fate.platforms }),
  };
}

function tagScanEntry(
  workload: Workload,
  container: ContainerRef,
  reason: TagReason,
  platform: string | undefined,
): TagScanEntry {
  return {
    workload: workload.name,
    kind: workload.kind,
    container: container.name,
    image: truncate(container.specImage, L.imageName),
    reason,
    ...(platform && { platform }),
  };
}

function workloadFields(workload: Workload, droppedLabels: string[]): WorkloadFields {
  return {
    namespace: truncate(workload.namespace, L.namespace),
    name: truncate(workload.name, L.workloadName),
    kind: workload.kind,
    labels: payloadLabels(workload.labels, droppedLabels),
  };
}

/** A namespace in which nothing could be scanned is sent as `failed`, which Ephor never auto-resolves. */
function namespaceStatus(tally: Tally, discoveredNothing: boolean): ScanStatus {
  const nothingScanned = tally.containersDelivered === 0 && (tally.containersSeen > 0 || discoveredNothing);
  return nothingScanned ? 'failed' : 'completed';
}

function envelopeFields(input: NamespaceInput, status: ScanStatus): EnvelopeFields {
  const fields: EnvelopeFields = {
    namespace: truncate(input.namespace, L.namespace),
    scan_label: truncate(input.run.scanLabel, L.scanLabel),
    scan_group_id: input.run.scanGroupId,
    status,
    started_at: input.run.startedAt,
    completed_at: input.completedAt,
  };
  if (input.run.trivyVersion) fields.trivy_version = truncate(input.run.trivyVersion, L.trivyVersion);
  return fields;
}

/** A container running several digests (a rollout, a moved tag) gets the union of their findings. */
async function containerFields(
  name: string,
  planned: PlannedContainer,
  images: ImageFindings[],
  unionDir: string,
): Promise<{ fields: ContainerFields; counts: Record<Severity, number>; file: FindingsFile }> {
  const [first] = images;
  const fields: ContainerFields = {
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
  const digests = planned.tagReason ? [...new Set(images.flatMap((i) => i.repoDigests))] : planned.digests;
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

/** The namespace's part of scan_config: what its payload covers, what it leaves out and why. */
function namespaceLedger(input: NamespaceInput, tally: Tally): NamespaceLedger {
  const { ledger, byTag, droppedLabels } = tally;
  const result: NamespaceLedger = {
    coverage: coverageOf(input, tally),
    not_delivered: ledger.slice(0, MAX_LEDGER_ENTRIES),
    scanned_by_tag: byTag.slice(0, MAX_LEDGER_ENTRIES),
  };
  if (ledger.length > MAX_LEDGER_ENTRIES) result.not_delivered_omitted = ledger.length - MAX_LEDGER_ENTRIES;
  if (byTag.length > MAX_LEDGER_ENTRIES) result.scanned_by_tag_omitted = byTag.length - MAX_LEDGER_ENTRIES;
  if (input.notAttributed && Object.keys(input.notAttributed).length > 0)
    result.pods_not_attributed = input.notAttributed;
  if (input.excludedOwners && Object.keys(input.excludedOwners).length > 0) result.pods_excluded = input.excludedOwners;
  if (input.platforms) result.platforms = platformLedger(input.platforms, tally);
  if (input.discoveryErrors.length > 0) result.discovery_errors = input.discoveryErrors.map(discoveryErrorEntry);
  if (droppedLabels.length > 0)
    result.labels_dropped = [...new Set(droppedLabels)]
      .slice(0, MAX_DROPPED_LABELS)
      .map((k) => truncate(k, MAX_DETAIL));
  return result;
}

function platformLedger(facts: PlatformFacts, tally: Tally): PlatformLedger {
  const { multiPlatform } = tally;
  const ledger: PlatformLedger = {
    nodes_listed: facts.listed,
    containers_by_platform: tally.byPlatform,
    multi_platform: multiPlatform.slice(0, MAX_LEDGER_ENTRIES),
  };
  if (multiPlatform.length > MAX_LEDGER_ENTRIES)
    ledger.multi_platform_omitted = multiPlatform.length - MAX_LEDGER_ENTRIES;
  if (!facts.listed) {
    const status = facts.error?.status !== undefined ? ` (HTTP ${facts.error.status})` : '';
    ledger.note = truncate(
      `nodes could not be listed${status}: every image was scanned without --platform, so a multi-platform image was ` +
        `scanned as its linux/amd64 variant (Trivy's default), whatever node runs it: ${facts.error?.message ?? ''}`,
      MAX_DETAIL,
    );
    if (facts.error?.missingRule) ledger.missing_rbac = facts.error.missingRule;
  } else if (!facts.clusterPlatform && tally.byTag.length > 0) {
    const several =
      facts.linuxPlatforms.length > 0 ? `several platforms (${facts.linuxPlatforms.join(', ')})` : 'no known platform';
    ledger.note = truncate(
      `the Linux nodes run ${several}: the containers in scanned_by_tag were scanned without --platform ` +
        "(Trivy's default, linux/amd64 for a multi-platform image)",
      MAX_DETAIL,
    );
  }
  return ledger;
}

function coverageOf(input: NamespaceInput, tally: Tally): Coverage {
  const { containersSeen, containersDelivered } = tally;
  return {
    workloads_discovered: input.workloads.length,
    workloads_delivered: tally.workloads.length,
    containers_discovered: containersSeen,
    containers_delivered: containersDelivered,
    containers_not_delivered: containersSeen - containersDelivered,
    containers_by_running_digest: containersDelivered - tally.byTag.length,
    containers_by_spec_tag: tally.byTag.length,
    discovery_complete: input.discoveryErrors.length === 0,
  };
}

function discoveryErrorEntry(error: DiscoveryError): DiscoveryErrorEntry {
  return {
    kind: error.kind,
    status: error.status,
    reason: error.reason,
    message: truncate(error.message, MAX_DETAIL),
    ...(error.missingRule ? { missing_rbac: error.missingRule } : {}),
  };
}

function distinctBy<T>(items: readonly T[], identity: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = identity(item);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
