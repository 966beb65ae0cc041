// The kinds of owners Ephor has no workload kind for (SCAN_OTHER_CONTROLLERS), written `Kind.group` as kubectl
// writes a type with its API group (`Rollout.argoproj.io`), or `Kind` alone for the core group. Which of them are
// left out (SCAN_OTHER_CONTROLLERS_EXCLUDE), and the parser of that list for the settings table.
import { ValueError } from '../config/parse.js';

export interface OwnerKind {
  kind: string;
  /** The API group, '' for the core group (apiVersion `v1`). */
  group: string;
}

export interface OtherControllers {
  /** SCAN_OTHER_CONTROLLERS: report the Pods of other controllers under their top-level owner, as kind `Pod`. */
  enabled: boolean;
  /** SCAN_OTHER_CONTROLLERS_EXCLUDE: owners whose Pods are left out (and counted in the ledger). */
  exclude: readonly OwnerKind[];
}

/**
 * Owners whose names are made anew for every run (a workflow run, a CI job, a batch submission): each would leave a
 * workload row with open findings in Ephor for good, since Ephor never touches a workload that stops appearing.
 * Each is the owner the scanner sees at the top of its Pods' chain (Pod, or Pod → Job / ReplicaSet):
 * - Argo Workflows `Workflow` (its Pods; CronWorkflows create Workflows), Argo Rollouts `AnalysisRun` (its Jobs);
 * - Tekton `TaskRun` (its Pods) and `PipelineRun`;
 * - GitHub Actions Runner Controller `EphemeralRunner` (scale sets) and the legacy summerwind `Runner`;
 * - Spark operator `SparkApplication` (the driver) and `Pod` (a Pod owned by a Pod: Spark's executors, owned by
 *   their driver);
 * - Kubeflow training `PyTorchJob`, `TFJob`, `MPIJob`; Flyte `FlyteWorkflow` (one per execution); Volcano `Job`.
 */
export const DEFAULT_EXCLUDED_OWNERS = [
  'Workflow.argoproj.io',
  'AnalysisRun.argoproj.io',
  'TaskRun.tekton.dev',
  'PipelineRun.tekton.dev',
  'EphemeralRunner.actions.github.com',
  'Runner.actions.summerwind.dev',
  'SparkApplication.sparkoperator.k8s.io',
  'Pod',
  'PyTorchJob.kubeflow.org',
  'TFJob.kubeflow.org',
  'MPIJob.kubeflow.org',
  'FlyteWorkflow.flyte.lyft.com',
  'Job.batch.volcano.sh',
].join(',');

/** The word that stands for an empty list (an empty variable counts as unset, so it cannot say "none"). */
const NONE = 'none';
/** A kind as the API server accepts it in a CRD (`spec.names.kind`): a letter, then letters and digits. */
const KIND = /^[A-Za-z][A-Za-z0-9]{0,62}$/;
/** An API group: a DNS subdomain (RFC 1123), lowercase. */
const GROUP = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `Kind.group`, or `Kind` for the core group. */
export function formatOwnerKind({ kind, group }: OwnerKind): string {
  return group ? `${kind}.${group}` : kind;
}

/** `Workflow.argoproj.io,TaskRun.tekton.dev,Pod` → owner kinds; `none` → []. */
export function parseOwnerKinds(text: string): OwnerKind[] {
  if (text.trim().toLowerCase() === NONE) return [];
  const kinds: OwnerKind[] = [];
  for (const [index, raw] of text.split(',').entries()) {
    const item = raw.trim();
    if (item === '')
      throw new ValueError(`has an empty item at position ${index + 1}; separate the kinds with single commas`);
    const dot = item.indexOf('.');
    const kind = dot < 0 ? item : item.slice(0, dot);
    const group = dot < 0 ? '' : item.slice(dot + 1).toLowerCase();
    if (!KIND.test(kind) || (dot >= 0 && !GROUP.test(group)))
      throw new ValueError(
        `contains "${item}"; write each as Kind.group (the kind as in "kind:", then its API group), e.g. ` +
          `Workflow.argoproj.io, or Kind alone for the core group, e.g. Pod; or ${NONE} for none`,
      );
    if (!kinds.some((k) => sameKind(k, { kind, group }))) kinds.push({ kind, group });
  }
  return kinds;
}

/** Kinds are matched without regard to case, as kubectl matches them; groups are lowercase. */
export function sameKind(a: OwnerKind, b: OwnerKind): boolean {
  return a.kind.toLowerCase() === b.kind.toLowerCase() && a.group.toLowerCase() === b.group.toLowerCase();
}

export function isExcluded(owner: OwnerKind, exclude: readonly OwnerKind[]): boolean {
  return exclude.some((kind) => sameKind(kind, owner));
}
