// The plain data passed between the pipeline's stages. No classes: every value here can be logged or serialised.
// The Ephor API's own types (bodies, enumerations, the scan_config ledger) live in ephor/contract.ts; the ones
// other stages and the tests use are re-exported here.
import type { WorkloadKind } from './ephor/contract.js';
import type { ImageFindings } from './report/findings.js';

export { SEVERITIES, WORKLOAD_KINDS, type Severity, type WorkloadKind } from './ephor/contract.js';
export type {
  ContainerPayload,
  LedgerEntry,
  SbomIngestRequest,
  SbomIngestResponse,
  ScanIngestRequest,
  ScanIngestResponse,
  ScanStatus,
  TagScanEntry,
  Vulnerability,
  WorkloadPayload,
} from './ephor/contract.js';

/** The Go scanner's default kinds (SCAN_WORKLOAD_TYPES); `Pod` (standalone Pods) is opt-in. */
export const DEFAULT_WORKLOAD_KINDS: readonly WorkloadKind[] = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob'];

/** init and app containers come from the pod template; injected (e.g. a service-mesh sidecar added by an
 * admission webhook) and ephemeral (kubectl debug) containers are only seen in the running Pods. */
export type ContainerRole = 'init' | 'app' | 'injected' | 'ephemeral';

/** Why a container is scanned by the tag of its spec instead of the digest it runs. */
export type TagReason = 'no_running_pod' | 'no_registry_digest' | 'pods_not_listed';

/** A node's platform as Trivy's `--platform` takes it: `os/arch` (`linux/arm64`), from the node's labels. */
export type Platform = string;

export interface ContainerRef {
  name: string;
  role: ContainerRole;
  /** The image string as written in the pod template (or in the Pod, for injected and ephemeral containers). */
  specImage: string;
  /** Registry digests (`repo@sha256:…`) that the workload's Pods run for this container, deduplicated. */
  running: string[];
  /**
   * Running digest → the platforms of the nodes it runs on (sorted). A digest absent here (or with none) runs
   * where the platform is not known (nodes not listed): it is scanned without `--platform`.
   */
  platforms?: Record<string, Platform[]>;
  /** Platforms its Pods run on that Trivy cannot scan (Windows nodes): those instances are left out. */
  unscannablePlatforms?: Platform[];
  /** Set when no running digest is known, so the spec reference is scanned. */
  tagReason?: TagReason;
}

/** Where the credentials for pulling a workload's images come from (Pod and ServiceAccount imagePullSecrets). */
export interface PullSecretSource {
  namespace: string;
  secretNames: string[];
  serviceAccount: string;
}

export interface Workload {
  namespace: string;
  kind: WorkloadKind;
  name: string;
  /** The workload's own `ephor.dev/*` labels with the prefix stripped. */
  labels: Record<string, string>;
  containers: ContainerRef[];
  pullSecrets: PullSecretSource;
}

/** A list call that failed during discovery (the rest of the run goes on). */
export interface DiscoveryError {
  namespace: string;
  kind: WorkloadKind | 'Namespace' | 'Node';
  status?: number;
  reason: string;
  message: string;
  /** For 403: the RBAC rule that is missing, in words an operator can apply. */
  missingRule?: string;
}

export interface Discovery {
  namespaces: string[];
  workloads: Workload[];
  errors: DiscoveryError[];
  /** Number of workload list calls that succeeded; 0 means nothing could be discovered. */
  successfulLists: number;
  /**
   * Per namespace: active Pods that are not reported, by their controller's kind: with SCAN_OTHER_CONTROLLERS every
   * Pod whose owner chain cannot be read; without it, also every Pod of a controller Ephor has no kind for.
   */
  notAttributed: Record<string, Record<string, number>>;
  /** Per namespace: active Pods left out by SCAN_OTHER_CONTROLLERS_EXCLUDE, by their owner's `Kind.group`. */
  excludedOwners?: Record<string, Record<string, number>>;
  /** The nodes' platforms; absent when they were not asked for (check). */
  platforms?: PlatformFacts;
}

/** What the node list told about the platforms Pods run on. */
export interface PlatformFacts {
  /** False: nodes could not be listed, so nothing is scanned with `--platform` (Trivy's linux/amd64 default). */
  listed: boolean;
  /** The distinct platforms of the Linux nodes, sorted. */
  linuxPlatforms: Platform[];
  /** The one platform all Linux nodes share: spec tags (no running Pod) are scanned for it. */
  clusterPlatform?: Platform;
  /** Why the nodes could not be listed. */
  error?: { status?: number; message: string; missingRule?: string };
}

/** Why a container's findings are not in the payload. Scan failures come from the Trivy runner. One list, for the
 * types and for what iterates them (the metrics push every reason; index 0 takes a shard's scan failures). */
export const SCAN_FAILURE_REASONS = [
  'not_found',
  'platform_not_found',
  'unauthorized',
  'rate_limited',
  'timeout',
  'killed',
  'db_error',
  'invalid_output',
  'no_space',
  'other',
] as const;
export type ScanFailureReason = (typeof SCAN_FAILURE_REASONS)[number];
/** `cancelled`: the run was stopped (SIGTERM); `deadline`: SCAN_DEADLINE left no time to scan it; `shard_lost`: a
 * sharded run's shard that had the image stopped answering, and the deadline left index 0 no time to scan it. */
export const NOT_DELIVERED_REASONS = [
  ...SCAN_FAILURE_REASONS,
  'invalid_reference',
  'cancelled',
  'deadline',
  'shard_lost',
] as const;
export type NotDeliveredReason = (typeof NOT_DELIVERED_REASONS)[number];
/** Why a container is not in the payload: an image's reason, or `unsupported_platform` (it runs only on nodes
 * whose images Trivy cannot scan: Windows), which is no image's failure since nothing is scanned for it. */
export type ContainerNotDeliveredReason = NotDeliveredReason | 'unsupported_platform';

/** One image the run scans: a distinct running digest (or spec reference) on one platform, and who needs it. */
export interface ScanTarget {
  /**
   * The scan's identity in the run's maps: `ref`, or `ref (os/arch)` with a platform (images/plan.ts scanKeyOf).
   * A digest that runs on two platforms is two targets.
   */
  key: string;
  /** What Trivy is given: `registry/repo@sha256:…`, or `registry/repo:tag` when no digest is known. */
  ref: string;
  /** Trivy's `--platform` (`os/arch`); absent: Trivy's default (linux/amd64 for a multi-platform image). */
  platform?: Platform;
  registry: string;
  repository: string;
  /** Namespaces whose payloads need this image, in first-use order. */
  namespaces: string[];
  /** Pull-secret sources of every workload that uses it (tried for the registry's credentials). */
  pullSecrets: PullSecretSource[];
}

export interface ScanSuccess {
  ok: true;
  ref: string;
  image: ImageFindings;
  durationMs: number;
  /** The image's SBOM on disk, when SBOM_ENABLED and `trivy convert` succeeded. */
  sbomFile?: string;
}
export interface ScanFailure {
  ok: false;
  ref: string;
  reason: Exclude<NotDeliveredReason, 'invalid_reference'>;
  detail: string;
  durationMs: number;
}
export type ScanResult = ScanSuccess | ScanFailure;
