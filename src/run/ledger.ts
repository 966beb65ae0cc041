// The run's ledger: what each namespace still waits for, which images each namespace uses (so that a findings file
// is released once the last namespace that needs it is done), what was delivered, what was not and why, and the
// counts the summary reports. Plain bookkeeping, no I/O: the pipeline (run.ts) and the delivery queue write to it.
import { EXIT_NOT_DELIVERED, EXIT_OK } from '../exit-codes.js';
import type { NotDeliveredReason, ScanResult, ScanTarget } from '../types.js';
import type { NamespaceOutcome, RunSummary, SbomCounts } from './summary.js';

export interface SbomSource {
  file: string;
  /** `repo@sha256:…` scanned, or the digest Trivy resolved the tag to. */
  digestRef?: string;
}

export class RunLedger {
  readonly failedByReason: Partial<Record<NotDeliveredReason, number>> = {};
  readonly sbomSources = new Map<string, SbomSource>();
  readonly sboms: SbomCounts = { delivered: 0, failed: 0, skipped: 0 };
  /** Payloads of earlier runs, delivered from the spool or still failing. */
  readonly spooled = { delivered: 0, failed: 0 };
  /** Delivery steps other than a namespace's (an SBOM, the spool) that failed unexpectedly: the run cannot end 0. */
  readonly stepFailures: string[] = [];
  /** Why the run lock was lost, when it was: nothing more was posted, so the run cannot end 0. */
  lockLost?: string;
  private scanned = 0;
  private readonly results = new Map<string, ScanResult>();
  /** Scan key → how many namespaces not yet done still need its findings. */
  private readonly users = new Map<string, number>();
  /** Namespace → how many of its images are not scanned yet. */
  private readonly waiting: Map<string, number>;
  /** Namespace → the scan keys its containers use. */
  private readonly imagesOf = new Map<string, string[]>();
  private readonly outcomes = new Map<string, NamespaceOutcome>();
  /** Scan key → `image_name:image_tag` of the delivered containers that got its findings (Ephor links SBOMs so). */
  private readonly references = new Map<string, Set<string>>();

  constructor(
    private readonly namespaces: readonly string[],
    private readonly targets: readonly ScanTarget[],
    private readonly invalidReferences: number,
  ) {
    this.waiting = new Map(namespaces.map((namespace) => [namespace, 0]));
    if (invalidReferences > 0) this.failedByReason.invalid_reference = invalidReferences;
    for (const target of targets) {
      this.users.set(target.key, target.namespaces.length);
      for (const namespace of target.namespaces) {
        this.waiting.set(namespace, (this.waiting.get(namespace) ?? 0) + 1);
        const images = this.imagesOf.get(namespace);
        if (images) images.push(target.key);
        else this.imagesOf.set(namespace, [target.key]);
      }
    }
  }

  /** Namespaces with every image scanned already (at the start: those with no image at all). */
  namespacesReady(): string[] {
    return this.namespaces.filter((namespace) => this.waiting.get(namespace) === 0);
  }

  /** Records one image's result; returns the namespaces it was the last missing image of. */
  recordScan(target: ScanTarget, result: ScanResult): string[] {
    this.results.set(target.key, result);
    if (result.ok) {
      this.scanned++;
      if (result.sbomFile) {
        const digestRef = target.ref.includes('@') ? target.ref : result.image.repoDigests[0];
        this.sbomSources.set(target.key, { file: result.sbomFile, digestRef });
      }
    } else {
      this.failedByReason[result.reason] = (this.failedByReason[result.reason] ?? 0) + 1;
    }
    const ready: string[] = [];
    for (const namespace of target.namespaces) {
      const left = (this.waiting.get(namespace) ?? 1) - 1;
      this.waiting.set(namespace, left);
      if (left === 0) ready.push(namespace);
    }
    return ready;
  }

  resultOf(scanKey: string): ScanResult | undefined {
    return this.results.get(scanKey);
  }

  /** A namespace is done (delivered, spooled or given up): returns the findings files no other namespace needs. */
  releaseNamespace(namespace: string): string[] {
    const files: string[] = [];
    for (const key of this.imagesOf.get(namespace) ?? []) {
      const left = (this.users.get(key) ?? 1) - 1;
      this.users.set(key, left);
      const result = this.results.get(key);
      if (left > 0 || !result) continue;
      this.results.delete(key);
      if (result.ok) files.push(result.image.file);
    }
    this.imagesOf.delete(namespace);
    return files;
  }

  recordImageReferences(byScanKey: ReadonlyMap<string, ReadonlySet<string>>): void {
    for (const [key, references] of byScanKey) {
      const known = this.references.get(key) ?? new Set<string>();
      for (const reference of references) known.add(reference);
      this.references.set(key, known);
    }
  }

  imageReferences(scanKey: string): string[] {
    return [...(this.references.get(scanKey) ?? [])];
  }

  recordDelivery(outcome: NamespaceOutcome): void {
    this.outcomes.set(outcome.namespace, outcome);
  }

  /** Namespaces this run delivered as `completed`: nothing older may be posted for them after it. */
  deliveredFresh(): Set<string> {
    return new Set([...this.outcomes.values()].filter((o) => o.delivered && o.status === 'completed').map(name));
  }

  notDelivered(): Set<string> {
    return new Set([...this.outcomes.values()].filter((o) => !o.delivered).map(name));
  }

  /** Every namespace's outcome, in discovery order. */
  namespaceOutcomes(): NamespaceOutcome[] {
    return this.namespaces.flatMap((namespace) => this.outcomes.get(namespace) ?? []);
  }

  images(): RunSummary['images'] {
    const failed = Object.values(this.failedByReason).reduce((a, b) => a + b, 0);
    const total = this.targets.length + this.invalidReferences;
    return { total, scanned: this.scanned, failed, failedByReason: this.failedByReason };
  }

  /** 0 only when every namespace has an outcome and it is delivered, no delivery step failed, the run lock was not
   * lost and the run was not stopped: anything unaccounted for is "not delivered". */
  exitCode(interrupted: boolean): number {
    const everyDelivered = this.namespaces.every((namespace) => this.outcomes.get(namespace)?.delivered === true);
    const clean = this.stepFailures.length === 0 && this.lockLost === undefined && !interrupted;
    return everyDelivered && clean ? EXIT_OK : EXIT_NOT_DELIVERED;
  }
}

function name(outcome: NamespaceOutcome): string {
  return outcome.namespace;
}
