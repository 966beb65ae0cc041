// Fakes for running a whole scan run in-process (src/run/run.ts, through its RunDependencies): a clock moved by hand,
// discovery from plain workloads, a Trivy whose scans "end" with a real report of ../shared (mapped by the real
// report reader) or with the failure they are told, an Ephor that records every body and answers as told, and a
// logger whose lines the test reads. No child process, no socket, no real wait.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.js';
import { bodyText, type BodyPart } from '../../src/ephor/body.js';
import type { DeliveryResult } from '../../src/ephor/client.js';
import { createLogger, SecretRegistry, type Logger } from '../../src/log.js';
import type {
  Clock,
  EphorPort,
  ImageScanner,
  MetricsPort,
  RunDependencies,
  RunDirectories,
  RunLockPort,
  SendGuard,
  Timer,
  TrivyPort,
} from '../../src/run/ports.js';
import { runScan, type RunContext } from '../../src/run/run.js';
import { Spool } from '../../src/run/spool.js';
import type { RunSummary } from '../../src/run/summary.js';
import { TrivyUnavailableError, type TrivySetup } from '../../src/trivy/database.js';
import { readImageScan, type TrivyRun } from '../../src/trivy/scan.js';
import type {
  Discovery,
  SbomIngestRequest,
  SbomIngestResponse,
  ScanFailureReason,
  ScanIngestRequest,
  ScanIngestResponse,
  ScanTarget,
  Workload,
} from '../../src/types.js';
import { validate } from './contract.js';
import { FakeRunLock } from './run-lock-fakes.js';
import { TRIVY_REPORTS_DIR } from './paths.js';

/** A clock that moves only when told; due timers fire in time order as it passes them. */
export class FakeClock implements Clock {
  private time: number;
  private readonly timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];

  constructor(start = Date.parse('2026-03-02T06:00:00.000Z')) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, ms: number): Timer {
    const timer = { at: this.time + ms, callback, cancelled: false };
    this.timers.push(timer);
    return {
      cancel() {
        timer.cancelled = true;
      },
    };
  }

  /** Timers set and not cancelled or fired yet. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.time = Math.max(this.time, due.at);
      due.cancelled = true;
      due.callback();
    }
    this.time = until;
  }
}

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface CapturedLog {
  log: Logger;
  lines: LogLine[];
  withMsg: (msg: string) => LogLine[];
}

/** A real logger (debug level, JSON) whose lines are kept for the test. */
export function captureLog(): CapturedLog {
  const lines: LogLine[] = [];
  const log = createLogger({
    level: 'debug',
    format: 'json',
    secrets: new SecretRegistry(),
    write: (line) => lines.push(JSON.parse(line) as LogLine),
  });
  return {
    log,
    lines,
    withMsg: (msg) => lines.filter((line) => line.msg === msg),
  };
}

export interface ContainerSpec {
  name: string;
  image: string;
  /** Registry digests the Pods run; none: the spec reference is scanned. */
  running?: string[];
}

/** A Deployment as discovery reports it. */
export function workload(namespace: string, name: string, containers: ContainerSpec[]): Workload {
  return {
    namespace,
    kind: 'Deployment',
    name,
    labels: {},
    containers: containers.map((c) => ({ name: c.name, role: 'app', specImage: c.image, running: c.running ?? [] })),
    pullSecrets: { namespace, secretNames: [], serviceAccount: 'default' },
  };
}

export function discovery(namespaces: string[], workloads: Workload[], extra: Partial<Discovery> = {}): Discovery {
  return { namespaces, workloads, errors: [], successfulLists: namespaces.length * 4, notAttributed: {}, ...extra };
}

/** What the fake Trivy does with one image (each call takes the next of a `sequence`). */
export type FakeImage =
  | { report: string; durationMs?: number; until?: Promise<void> }
  | { fail: ScanFailureReason; detail: string }
  | { killed: true }
  /** Runs until the run's signal stops it (shutdown, deadline). */
  | { hang: true }
  | { sequence: FakeImage[] };

export interface TrivyCall {
  ref: string;
  startedAt: number;
  /** Scans of this run in their Trivy phase when this one started (itself excluded). */
  othersRunning: string[];
  ended?: boolean;
}

export const TRIVY_SETUP: TrivySetup = {
  version: '0.69.3',
  db: { ready: true, updatedAt: '2026-03-01T00:00:00Z', downloadedAt: '2026-03-02T05:00:00Z' },
  javaDb: { ready: true, updatedAt: '2026-03-01T00:00:00Z' },
  supportsVersionCheckFlags: true,
  supportsRepositoryList: true,
};

/**
 * A Trivy whose reports are real ones of ../shared/fixtures/trivy/reports, read by the real report reader. Like the
 * launcher's gate, at most SCAN_CONCURRENCY scans run at a time; the others wait for a slot, in order.
 */
export class FakeTrivy implements TrivyPort {
  readonly calls: TrivyCall[] = [];
  /** Set to make prepare() fail as Trivy does without a usable vulnerability DB. */
  unavailable?: string;
  private readonly running = new Set<string>();
  private readonly callsOf = new Map<string, number>();
  private readonly waitingForSlot: Array<() => void> = [];
  private slotsTaken = 0;

  constructor(
    private readonly images: Record<string, FakeImage>,
    private readonly clock: FakeClock,
    private readonly config: () => Config,
  ) {}

  prepare(): Promise<TrivySetup> {
    if (this.unavailable) return Promise.reject(new TrivyUnavailableError(this.unavailable));
    return Promise.resolve(TRIVY_SETUP);
  }

  imageScanner(setup: TrivySetup, dirs: RunDirectories): ImageScanner {
    const context = { config: this.config(), setup, env: {}, ...dirs };
    return {
      run: (target, signal, onStarted) => this.run(target, signal, onStarted),
      read: async (target, run, signal) => {
        if (!dirs.sbomDir) return readImageScan(target, run, context, signal);
        const outcome = await readImageScan(target, run, { ...context, sbomDir: undefined }, signal);
        if (!outcome.ok) return outcome;
        const sbomFile = path.join(dirs.sbomDir, `${this.calls.length}.json`);
        await writeFile(sbomFile, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', components: [] }));
        return { ...outcome, sbomFile };
      },
    };
  }

  private next(ref: string): FakeImage {
    const image = this.images[ref];
    if (!image) throw new Error(`the fake Trivy has no image ${ref}`);
    if (!('sequence' in image)) return image;
    const n = this.callsOf.get(ref) ?? 0;
    this.callsOf.set(ref, n + 1);
    return image.sequence[Math.min(n, image.sequence.length - 1)]!;
  }

  private async run(target: ScanTarget, signal: AbortSignal, onStarted: () => void): Promise<TrivyRun> {
    if (!(await this.slot(signal)))
      return {
        ok: false,
        reason: 'cancelled',
        detail: 'the run stopped before this image was scanned',
        notStarted: true,
      };
    const image = this.next(target.ref);
    const startedAt = this.clock.now();
    this.calls.push({ ref: target.ref, startedAt, othersRunning: [...this.running] });
    const call = this.calls.at(-1)!;
    this.running.add(target.ref);
    onStarted();
    try {
      return await this.outcome(image, signal, startedAt);
    } finally {
      this.running.delete(target.ref);
      call.ended = true;
      const next = this.waitingForSlot.shift();
      if (next)
        next(); // the slot passes on
      else this.slotsTaken--;
    }
  }

  /** True once a slot is free; false when the signal aborts first (the scan never starts). */
  private async slot(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    if (this.slotsTaken < this.config().scan.concurrency && this.waitingForSlot.length === 0) {
      this.slotsTaken++;
      return true;
    }
    return new Promise((resolve) => {
      const turn = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = () => {
        this.waitingForSlot.splice(this.waitingForSlot.indexOf(turn), 1);
        resolve(false);
      };
      this.waitingForSlot.push(turn);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async outcome(image: FakeImage, signal: AbortSignal, startedAt: number): Promise<TrivyRun> {
    const stopped = { ok: false as const, reason: 'cancelled' as const, detail: 'scan stopped by shutdown', startedAt };
    if ('hang' in image) {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return stopped;
    }
    await Promise.resolve(); // a scan never ends in the same tick it started
    if ('killed' in image)
      return { ok: false, reason: 'killed', detail: 'trivy was killed by signal SIGKILL', startedAt };
    if ('fail' in image) return { ok: false, reason: image.fail, detail: image.detail, startedAt };
    if (!('report' in image)) throw new Error('a sequence inside a sequence');
    await image.until;
    if (image.durationMs) this.clock.advance(image.durationMs);
    if (signal.aborted) return stopped;
    const reportFile = path.join(TRIVY_REPORTS_DIR, image.report);
    return { ok: true, reportFile, startedAt, dispose: () => Promise.resolve() };
  }
}

export interface ScanPost {
  namespace: string;
  body: ScanIngestRequest;
  bytes: number;
  /** Messages of the contract's JSON Schema, [] when the body is valid. */
  contractErrors: string[];
}

/** How the fake Ephor answers one POST. */
export type Answer = 'accept' | { status?: number; error?: string } | { throws: Error };

/**
 * An Ephor that records every body (parsed, checked against the contract) and answers each as `answer` says. Each
 * call is one attempt, made after the guard's fence (the run lock), as the real client does before every attempt.
 */
export class FakeEphor implements EphorPort {
  readonly posts: ScanPost[] = [];
  readonly files: Array<{ namespace: string; body: ScanIngestRequest }> = [];
  readonly sboms: SbomIngestRequest[] = [];
  maxInFlight = 0;
  answer: (post: ScanPost, cutoff: AbortSignal) => Answer | Promise<Answer> = () => 'accept';
  answerFile: (namespace: string) => Answer = () => 'accept';
  answerSbom: (request: SbomIngestRequest) => Answer = () => 'accept';
  private inFlight = 0;
  private nextScanId = 1;

  async deliverScan(namespace: string, part: BodyPart, guard: SendGuard): Promise<DeliveryResult> {
    await guard.beforeAttempt();
    return this.exchange(part.bytes, async () => {
      const text = await bodyText(part);
      if (Buffer.byteLength(text) !== part.bytes) throw new Error('the part size is not the size of its bytes');
      const body = JSON.parse(text) as ScanIngestRequest;
      const post = { namespace, body, bytes: part.bytes, contractErrors: validate('ingest-request', body) };
      this.posts.push(post);
      return this.result(await this.answer(post, guard.cutoff), part.bytes, () => this.accepted(body));
    });
  }

  async deliverFile(namespace: string, file: string, bytes: number, guard: SendGuard): Promise<DeliveryResult> {
    await guard.beforeAttempt();
    return this.exchange(bytes, async () => {
      const body = JSON.parse(await readFile(file, 'utf8')) as ScanIngestRequest;
      this.files.push({ namespace, body });
      return this.result(this.answerFile(namespace), bytes, () => this.accepted(body));
    });
  }

  async deliverSbom(request: SbomIngestRequest, guard: SendGuard): Promise<DeliveryResult<SbomIngestResponse>> {
    await guard.beforeAttempt();
    return this.exchange(0, () => {
      this.sboms.push(request);
      const response: SbomIngestResponse = { id: `sbom-${this.sboms.length}`, status: 'created' };
      return Promise.resolve(this.result(this.answerSbom(request), 0, () => response));
    });
  }

  /** Every body posted for `namespace`, in order. */
  bodiesOf(namespace: string): ScanIngestRequest[] {
    return this.posts.filter((p) => p.namespace === namespace).map((p) => p.body);
  }

  private async exchange<R>(bytes: number, work: () => Promise<DeliveryResult<R>>): Promise<DeliveryResult<R>> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      return await work();
    } finally {
      this.inFlight--;
    }
  }

  private result<R>(answer: Answer, bytes: number, response: () => R): DeliveryResult<R> {
    if (answer === 'accept') return { ok: true, response: response(), attempts: 1, bytes };
    if ('throws' in answer) throw answer.throws;
    const error = answer.error ?? `HTTP ${answer.status ?? 'none'}`;
    return { ok: false, error, status: answer.status, attempts: 1, bytes };
  }

  private accepted(body: ScanIngestRequest): ScanIngestResponse {
    const vulnerabilities = body.workloads.flatMap((w) => w.containers.flatMap((c) => c.vulnerabilities));
    return {
      scan_id: this.nextScanId++,
      workloads: body.workloads.length,
      vulnerabilities: vulnerabilities.length,
      critical_vulns: vulnerabilities.filter((v) => v.severity === 'CRITICAL').length,
      auto_resolved: 0,
      reopened: 0,
    };
  }
}

export interface MetricsPush {
  summary: RunSummary;
  startedAt: Date;
  signal: AbortSignal;
  /** Whether `signal` was already aborted when the push began. */
  abortedAtStart: boolean;
  /** Lines the run had logged when the push began. */
  linesBefore: number;
}

/** A Pushgateway port that records each push; `behaviour` makes one hang until its signal aborts, or throw. */
export class FakeMetrics implements MetricsPort {
  readonly pushes: MetricsPush[] = [];
  behaviour: 'record' | 'hang' | 'throw' = 'record';
  constructor(private readonly lines: () => number) {}

  async push(summary: RunSummary, startedAt: Date, signal: AbortSignal): Promise<void> {
    this.pushes.push({ summary, startedAt, signal, abortedAtStart: signal.aborted, linesBefore: this.lines() });
    if (this.behaviour === 'throw') throw new Error('a metrics port that breaks its promise');
    if (this.behaviour === 'hang' && !signal.aborted)
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }
}

export interface InProcessRunOptions {
  namespaces: string[];
  workloads: Workload[];
  images: Record<string, FakeImage>;
  /** Scanner variables on top of the defaults (SCAN_NAMESPACES, EPHOR_API_URL, TRIVY_BINARY, TRIVY_CACHE_DIR). */
  env?: Record<string, string>;
  discovery?: Partial<Discovery>;
  clock?: FakeClock;
  ephor?: FakeEphor;
  /** The run's shutdown signal (SIGTERM). */
  shutdown?: AbortSignal;
  /** TRIVY_CACHE_DIR (the spool lives under it): shared by runs that test the spool. */
  cacheDir?: string;
  tempRoot?: string;
  graceMs?: number;
  /** Gives the run a metrics port (as METRICS_PUSHGATEWAY_URL does) that records its pushes. */
  metrics?: boolean;
  /** The run lock; default: a FakeRunLock that is acquired at once and never lost. */
  lock?: RunLockPort;
}

export interface InProcessRun {
  summary: RunSummary;
  context: RunContext;
  log: CapturedLog;
  /** Present with `metrics: true`. */
  metrics?: FakeMetrics;
  ephor: FakeEphor;
  trivy: FakeTrivy;
  clock: FakeClock;
  config: Config;
}

/** Everything a run needs, with fakes, before it starts (to change a dependency, or to drive the run while it runs). */
export async function prepareRun(options: InProcessRunOptions) {
  const clock = options.clock ?? new FakeClock();
  const cacheDir = options.cacheDir ?? (await mkdtemp(path.join(os.tmpdir(), 'ephor-run-cache-')));
  const config = loadConfig({
    PATH: process.env.PATH,
    EPHOR_API_URL: 'http://127.0.0.1:9',
    SCAN_NAMESPACES: options.namespaces.join(','),
    TRIVY_BINARY: '/bin/true',
    TRIVY_CACHE_DIR: cacheDir,
    ...options.env,
  });
  const log = captureLog();
  const ephor = options.ephor ?? new FakeEphor();
  const trivy = new FakeTrivy(options.images, clock, () => config);
  const found = discovery(options.namespaces, options.workloads, options.discovery);
  const metrics = options.metrics ? new FakeMetrics(() => log.lines.length) : undefined;
  const deps: RunDependencies = {
    discovery: { discover: () => Promise.resolve(found) },
    trivy,
    ephor,
    lock: options.lock ?? new FakeRunLock(),
    spool: config.ephor.dryRun ? undefined : new Spool(config.spool.dir, config.spool.maxAgeMs, log.log),
    metrics,
    clock,
    log: log.log,
    shutdownGraceMs: options.graceMs ?? 20_000,
    tempRoot: options.tempRoot ?? os.tmpdir(),
    resources: () => Promise.resolve({ cpuUserMs: 0, cpuSystemMs: 0, maxRssKiB: 0 }),
  };
  const context: RunContext = {
    config,
    scanGroupId: randomUUID(),
    startedAt: new Date(clock.now()),
    shutdown: options.shutdown ?? new AbortController().signal,
  };
  return {
    deps,
    context,
    clock,
    log,
    ephor,
    trivy,
    config,
    metrics,
    start: () => runScan(context, deps),
    async cleanup() {
      if (!options.cacheDir) await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/** A whole scan run with fakes, to its end. */
export async function runInProcess(options: InProcessRunOptions): Promise<InProcessRun> {
  const prepared = await prepareRun(options);
  try {
    const summary = await prepared.start();
    return { summary, ...prepared };
  } finally {
    await prepared.cleanup();
  }
}

/** `workload/container/number of findings` of every container posted, sorted: each must appear exactly once. */
export function containersPosted(bodies: ScanIngestRequest[]): string[] {
  return bodies
    .flatMap((b) =>
      b.workloads.flatMap((w) => w.containers.map((c) => `${w.name}/${c.name}/${c.vulnerabilities.length}`)),
    )
    .sort();
}

/** Lets the run go on (event-loop turns, no timer) until `condition` holds; a bounded number of turns as a net. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 100_000; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}
