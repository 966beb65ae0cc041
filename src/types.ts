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

export interface ContainerRef {
  name: string;
  role: ContainerRole;
  /** The image string as written in the pod template (or in the Pod, for injected and ephemeral containers). */
  specImage: string;
  /** Registry digests (`repo@sha256:…`) that the workload's Pods run for this container, deduplicated. */
  running: string[];
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
  kind: WorkloadKind | 'Namespace';
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
  /** Per namespace: active Pods whose controller has no Ephor kind (bare ReplicaSets or Jobs, CRDs), by kind. */
  notAttributed: Record<string, Record<string, number>>;
}

/** Why a container's findings are not in the payload. Scan failures come from the Trivy runner. */
export type ScanFailureReason =
  | 'not_found'
  | 'unauthorized'
  | 'rate_limited'
  | 'timeout'
  | 'killed'
  | 'db_error'
  | 'invalid_output'
  | 'no_space'
  | 'other';
/** `cancelled`: the run was stopped (SIGTERM); `deadline`: SCAN_DEADLINE left no time to scan it. */
export type NotDeliveredReason = ScanFailureReason | 'invalid_reference' | 'cancelled' | 'deadline';

/** One image the run scans: a distinct running digest (or spec reference), and who needs it. */
export interface ScanTarget {
  /** What Trivy is given: `registry/repo@sha256:…`, or `registry/repo:tag` when no digest is known. */
  ref: string;
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
