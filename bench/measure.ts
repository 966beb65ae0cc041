// One measured scanner run: a synthetic cluster in the Kubernetes stand-in, the Ephor stand-in in light mode,
// bench/fast-trivy.c (or .sh, see stand-in.ts) as Trivy, and the built bundle (dist/ephor-scanner.mjs) run under GNU time, configured by
// environment variables exactly as the CronJob runs it. What the scanner logs and what the stand-ins saw become one
// Measurement.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { startEphorServer, type ReceivedRequest } from '../test/support/ephor-server.js';
import { startKubeServer } from '../test/support/k8s-server.js';
import { scannerEnv } from '../test/support/harness.js';
import { CLI_BUNDLE } from '../test/support/paths.js';
import { generateCluster, type ClusterOptions, type ClusterStats } from './cluster.js';
import type { IncrementalRun } from './incremental.js';
import { writeLayersFile, type LayerStats } from './layers.js';
import { writeReportTemplate, type ReportTemplate } from './report.js';
import { trivyStandIn } from './stand-in.js';
import { FAKE_TRIVY_BIN } from '../test/support/fake-trivy.js';
import { freePort } from '../src/trivy/server.js';

export const GNU_TIME = '/usr/bin/time';

export interface RunConfig {
  /** Label in tables, e.g. `U = 500`. */
  label: string;
  cluster: ClusterOptions;
  /** SCAN_CONCURRENCY (C). */
  concurrency: number;
  /** Time each fast-trivy scan takes (L). */
  latencyMs: number;
  /** Report fixture file name in ../shared/fixtures/trivy/reports. */
  report: string;
  /** The incremental scenario: layers instead of a fixed L, a cache mode, a cache directory kept across runs. */
  incremental?: IncrementalRun;
  /** The sharded scenario: SHARD_COUNT scanner processes started together (index 0 measured, the others awaited). */
  shards?: number;
}

export interface RunOptions {
  /** Parent of the run's temporary directory (removed afterwards unless `keep`). */
  tmpRoot?: string;
  keep?: boolean;
  /** Hard bound of the scanner run; it is killed (and the run fails) when it passes. */
  timeoutMs?: number;
  /** Write a V8 CPU profile of the scanner process here (node --cpu-prof). */
  cpuProfDir?: string;
  /** More options for the scanner's node (diagnostics, e.g. --trace-gc: its lines land in the kept stdout file). */
  nodeArgs?: string[];
  /** Progress lines (setup, start, end). */
  progress?: (line: string) => void;
}

export interface Measurement {
  config: RunConfig;
  cluster: ClusterStats;
  report: { fixture: string; bytes: number; vulnerabilities: number };
  /** Generating the cluster and loading it into the stand-in (not part of any measured number). */
  setupMs: number;
  exitCode: number | null;
  /** From spawning the scanner process to its exit (Node start and bundle load included). */
  wallMs: number;
  /** The scanner's own duration_s (from its start to its summary). */
  durationS?: number;
  /** T_db: the two "database downloaded" steps (vulnerability DB, Java DB). */
  dbMs: { db?: number; javaDb?: number; total: number };
  /** T_db + ceil(U / C) × L. */
  idealMs: number;
  discoveryMs?: number;
  /** The scanner process only (process.resourceUsage(): Trivy processes excluded). */
  cpuUserS?: number;
  cpuSystemS?: number;
  maxRssMiB?: number;
  /** The Trivy launcher's own peak RSS (a separate process of the scanner: the pod holds both). */
  launcherMaxRssMiB?: number;
  /** GNU time around the scanner process: peak RSS (the largest of the process and each of its reaped children,
   * which are small shells), and CPU of the whole tree (scanner + every fast-trivy). */
  time: { maxRssKiB?: number; userS?: number; systemS?: number; elapsed?: string };
  images: { total?: number; scanned?: number; failed?: number };
  namespaces: { total: number; delivered: number };
  containersDelivered?: number;
  findings?: number;
  /** Per namespace, as the scanner reports them. */
  bytesPerNamespace: number[];
  partsPerNamespace: number[];
  /** As the Ephor stand-in counted them (light mode); `checked` bodies were also parsed in full, after the run. */
  ephor: {
    posts: number;
    accepted: number;
    rejected: number;
    firstRejection?: string;
    bytes: number;
    workloads: number;
    vulnerabilities: number;
    critical: number;
    maxConcurrentPosts: number;
    checked: number;
    checkedBytes: number;
  };
  /** Highest sampled VmRSS (every 100 ms) in each phase: discovery (start → plan), scans (→ last image scanned),
   * deliveries after the last scan (→ summary). */
  rssByPhaseKiB: { discovery?: number; scans?: number; tail?: number };
  /** Milliseconds from the scanner's first log line ("ephor-scanner starting"), from its log timestamps. */
  timeline: {
    planned?: number;
    firstScanned?: number;
    lastScanned?: number;
    firstDelivered?: number;
    lastDelivered?: number;
    completed?: number;
  };
  /** Epoch ms of the scanner's first log line. */
  startedAtMs?: number;
  kube: { requests: number };
  /** CPU time of the whole machine while the scanner ran (/proc/stat), of the benchmark process (the stand-ins),
   * and stolen by the hypervisor: what is left after the scanner's process tree and the stand-ins is other load. */
  machine: { busyS?: number; stealS?: number; benchS: number };
  logs: { warn: number; error: number; firstProblems: string[] };
  /** Which Trivy stand-in ran (bench/stand-in.ts). */
  trivyStandIn: { kind: 'c' | 'bash'; note?: string };
  /** How the C Trivy slots were used, from the C stand-in's own start and end times (FAST_TRIVY_TIMELINE). */
  slots?: SlotStats;
  /** The incremental scenario: the run's images' layers, and how many the Trivy stand-ins downloaded in all. */
  layers?: LayerStats & { downloaded: number; downloadedBase: number };
  /** The sharded scenario: the exit codes of the shards other than index 0, and how many images each scanned. */
  shards?: { exitCodes: Array<number | null>; scannedByShard: number[] };
  problems: string[];
}

export async function measureRun(config: RunConfig, options: RunOptions = {}): Promise<Measurement> {
  const progress = options.progress ?? (() => undefined);
  const dir = await mkdtemp(path.join(options.tmpRoot ?? os.tmpdir(), 'ephor-bench-'));
  try {
    const setupStarted = performance.now();
    progress(`${config.label}: generating the cluster (${config.cluster.replicas} Pods per workload)`);
    const generated = generateCluster(config.cluster);
    const cluster = generated.stats;
    const [kube, ephor] = await Promise.all([
      startKubeServer({ bulk: true, objects: generated.objects }),
      startEphorServer({ light: true, lightSample: lightSampleFor(config.cluster) }),
    ]);
    generated.objects.length = 0; // the stand-in owns them now
    try {
      const report = await writeReportTemplate(path.join(dir, 'report'), config.report);
      const fifo = path.join(dir, 'sleep.fifo');
      await run('mkfifo', [fifo]);
      const standIn = await trivyStandIn();
      const env: Record<string, string> = {
        ...(await scannerEnv(dir, kube, ephor.url, standIn.binary)),
        ...standIn.env,
        SCAN_NAMESPACES: '*',
        SCAN_CONCURRENCY: String(config.concurrency),
        LOG_LEVEL: 'info',
        FAST_TRIVY_REPORT: report.dir,
        FAST_TRIVY_LATENCY_MS: String(config.latencyMs),
        FAST_TRIVY_SLEEP_FIFO: fifo,
        FAST_TRIVY_TIMELINE: path.join(dir, 'trivy-timeline.txt'),
      };
      const layerStats = config.incremental && (await incrementalEnv(config, dir, standIn.kind, env));
      const setupMs = performance.now() - setupStarted;
      progress(
        `${config.label}: setup ${(setupMs / 1000).toFixed(1)} s; scanning (C = ${config.concurrency}, L = ${config.latencyMs} ms)`,
      );
      const [machineBefore, benchBefore] = [await machineCpu(), process.cpuUsage()];
      const others = config.shards && config.shards > 1 ? await startShards(config.shards, env, dir) : undefined;
      const scanner = await runScanner(env, dir, options);
      const shards = others && (await others.ended);
      const [machineAfter, benchCpu] = [await machineCpu(), process.cpuUsage(benchBefore)];
      await ephor.settled(); // the light mode's deferred checks
      const measurement = await summarise(
        config,
        cluster,
        report,
        setupMs,
        scanner,
        ephor.scanIngests(),
        ephor.requests.length,
        ephor.maxConcurrentPosts,
        kube.requests.length,
      );
      measurement.trivyStandIn = { kind: standIn.kind, note: standIn.note };
      if (shards) {
        measurement.shards = { exitCodes: shards.exitCodes, scannedByShard: [...shards.scanned] };
        measurement.shards.scannedByShard.unshift(await countScanned(scanner.stdoutFile));
        measurement.problems.push(...shardProblems(measurement));
      }
      measurement.slots = slotStats(
        await readFile(env.FAST_TRIVY_TIMELINE!, 'utf8').catch(() => ''),
        config.concurrency,
        measurement.startedAtMs,
      );
      if (layerStats) measurement.layers = { ...layerStats, ...(await layersDownloaded(env.FAST_TRIVY_LAYER_LOG!)) };
      measurement.machine = {
        busyS: machineBefore && machineAfter ? machineAfter.busyS - machineBefore.busyS : undefined,
        stealS: machineBefore && machineAfter ? machineAfter.stealS - machineBefore.stealS : undefined,
        benchS: (benchCpu.user + benchCpu.system) / 1e6,
      };
      progress(
        `${config.label}: exit ${measurement.exitCode}, wall ${(measurement.wallMs / 1000).toFixed(2)} s, peak RSS ${((measurement.time.maxRssKiB ?? 0) / 1024).toFixed(1)} MiB`,
      );
      return measurement;
    } finally {
      await Promise.all([kube.close(), ephor.close()]);
    }
  } finally {
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}

/** The incremental scenario's settings: the cache mode and directory, and the layered Trivy stand-in. */
async function incrementalEnv(
  config: RunConfig,
  dir: string,
  standIn: 'c' | 'bash',
  env: Record<string, string>,
): Promise<LayerStats> {
  const run = config.incremental!;
  if (standIn !== 'c') throw new Error('the incremental scenario needs the C Trivy stand-in (no C compiler here)');
  const file = path.join(dir, 'layers.txt');
  const stats = await writeLayersFile(file, config.cluster.images, config.cluster.changedEvery ?? 0, run.layers);
  await mkdir(run.cacheDir, { recursive: true });
  Object.assign(env, {
    TRIVY_CACHE_MODE: run.mode,
    TRIVY_CACHE_DIR: run.cacheDir,
    FAST_TRIVY_LAYERS: file,
    FAST_TRIVY_MANIFEST_MS: String(run.layers.manifestMs),
    FAST_TRIVY_LAYER_LOG: path.join(dir, 'layers-downloaded.txt'),
    FAST_TRIVY_SERVER_STAND_IN: FAKE_TRIVY_BIN,
  });
  return stats;
}

async function layersDownloaded(file: string): Promise<{ downloaded: number; downloadedBase: number }> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { downloaded: lines.length, downloadedBase: lines.filter((l) => l.startsWith('sha256:base-')).length };
}

interface ScannerRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  /** VmRSS of the scanner process, sampled every RSS_SAMPLE_MS: [epoch ms, KiB]. */
  rss: Array<[number, number]>;
  stdoutFile: string;
  stderrFile: string;
  timeFile: string;
}

async function runScanner(env: Record<string, string>, dir: string, options: RunOptions): Promise<ScannerRun> {
  const stdoutFile = path.join(dir, 'scanner.stdout.jsonl');
  const stderrFile = path.join(dir, 'scanner.stderr.txt');
  const timeFile = path.join(dir, 'time.txt');
  const nodeArgs = [
    ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : []),
    ...(options.nodeArgs ?? []),
  ];
  const started = performance.now();
  const child = spawn(GNU_TIME, ['-v', '-o', timeFile, process.execPath, ...nodeArgs, CLI_BUNDLE], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stdout = createWriteStream(stdoutFile);
  const stderr = createWriteStream(stderrFile);
  child.stdout.pipe(stdout);
  child.stderr.pipe(stderr);
  let timedOut = false as boolean; // set by the timer below
  const timer = setTimeout(
    () => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    },
    options.timeoutMs ?? 30 * 60_000,
  );
  const rss: Array<[number, number]> = [];
  const sampler = setInterval(() => void sampleRss(child.pid, rss), RSS_SAMPLE_MS);
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      resolve([code, sig]);
    });
  });
  const wallMs = performance.now() - started;
  clearTimeout(timer);
  clearInterval(sampler);
  await Promise.all([finished(stdout), finished(stderr)]);
  if (timedOut)
    throw new Error(
      `the scanner did not finish within ${options.timeoutMs ?? 30 * 60_000} ms (stdout in ${stdoutFile})`,
    );
  return { exitCode, signal, wallMs, rss, stdoutFile, stderrFile, timeFile };
}

const RSS_SAMPLE_MS = 100;
let scannerPid: { timePid: number; pid: number } | undefined;

/** One VmRSS sample of the scanner: the Node process GNU time started (its only child). */
async function sampleRss(timePid: number | undefined, samples: Array<[number, number]>): Promise<void> {
  if (timePid === undefined) return;
  try {
    if (scannerPid?.timePid !== timePid) {
      const children = (await readFile(`/proc/${timePid}/task/${timePid}/children`, 'utf8')).trim();
      if (!children) return;
      scannerPid = { timePid, pid: Number(children.split(' ')[0]) };
    }
    const status = await readFile(`/proc/${scannerPid.pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    if (kib) samples.push([Date.now(), Number(kib)]);
  } catch {
    // not started yet, or already gone
  }
}

interface LogLine {
  level?: number;
  msg?: string;
  [key: string]: unknown;
}

/** The fields of the scanner's summary record that the benchmark reads. */
type SummaryLine = LogLine & {
  duration_s?: number;
  discovery_ms?: number;
  images?: { total?: number; scanned?: number; failed?: number };
  namespaces?: { total?: number; delivered?: number };
  containers?: { delivered?: number };
  findings?: Record<string, number>;
  resources?: {
    cpu_user_s?: number;
    cpu_system_s?: number;
    max_rss_mib?: number;
    launcher?: { cpu_user_s?: number; cpu_system_s?: number; max_rss_mib?: number };
  };
  per_namespace?: Array<{ namespace: string; delivered?: boolean; bytes?: number; parts?: number }>;
};

async function summarise(
  config: RunConfig,
  cluster: ClusterStats,
  report: ReportTemplate,
  setupMs: number,
  scanner: ScannerRun,
  ingests: ReceivedRequest[],
  ephorRequests: number,
  maxConcurrentPosts: number,
  kubeRequests: number,
): Promise<Measurement> {
  let completed: SummaryLine | undefined;
  let startedAt: number | undefined;
  const timeline: Measurement['timeline'] = {};
  const at = (line: LogLine) =>
    typeof line.time === 'string' && startedAt !== undefined ? Date.parse(line.time) - startedAt : undefined;
  const dbMs: Measurement['dbMs'] = { total: 0 };
  const logs = { warn: 0, error: 0, firstProblems: [] as string[] };
  const lines = createInterface({ input: createReadStream(scanner.stdoutFile, 'utf8'), crlfDelay: Infinity });
  for await (const text of lines) {
    if (!text.startsWith('{')) continue;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      continue;
    }
    // pino levels: 40 warn, 50 error
    if ((line.level ?? 0) >= 40) {
      if ((line.level ?? 0) >= 50) logs.error++;
      else logs.warn++;
      if (logs.firstProblems.length < 5) logs.firstProblems.push(text.slice(0, 400));
    }
    if (line.msg === 'ephor-scanner starting' && typeof line.time === 'string') startedAt = Date.parse(line.time);
    if (line.msg === 'image deduplication completed') timeline.planned = at(line);
    if (line.msg === 'image scanned') {
      timeline.firstScanned ??= at(line);
      timeline.lastScanned = at(line);
    }
    if (line.msg === 'scan results delivered') {
      timeline.firstDelivered ??= at(line);
      timeline.lastDelivered = at(line);
    }
    if (line.msg === 'ephor-scanner completed') {
      completed = line;
      timeline.completed = at(line);
    }
    if (line.msg === 'database downloaded' && typeof line.duration_ms === 'number') {
      if (line.database === 'db') dbMs.db = line.duration_ms;
      else dbMs.javaDb = line.duration_ms;
      dbMs.total += line.duration_ms;
    }
  }
  const time = parseGnuTime(await readFile(scanner.timeFile, 'utf8').catch(() => ''));
  const summary = completed;
  const perNamespace = summary?.per_namespace ?? [];
  const accepted = ingests.filter((r) => r.response.status === 201 && r.rejectedBecause === undefined);
  const measurement: Measurement = {
    config,
    cluster,
    trivyStandIn: { kind: 'bash' },
    report: { fixture: report.fixture, bytes: report.bytes, vulnerabilities: report.vulnerabilities },
    setupMs,
    exitCode: scanner.exitCode,
    wallMs: scanner.wallMs,
    durationS: summary?.duration_s,
    dbMs,
    idealMs: dbMs.total + Math.ceil(cluster.images / config.concurrency) * config.latencyMs,
    discoveryMs: summary?.discovery_ms,
    // The launcher (the small process that starts Trivy for the scanner) is part of the scanner's own cost.
    cpuUserS: plus(summary?.resources?.cpu_user_s, summary?.resources?.launcher?.cpu_user_s),
    cpuSystemS: plus(summary?.resources?.cpu_system_s, summary?.resources?.launcher?.cpu_system_s),
    maxRssMiB: summary?.resources?.max_rss_mib,
    launcherMaxRssMiB: summary?.resources?.launcher?.max_rss_mib,
    time,
    images: { total: summary?.images?.total, scanned: summary?.images?.scanned, failed: summary?.images?.failed },
    namespaces: { total: perNamespace.length, delivered: perNamespace.filter((n) => n.delivered).length },
    containersDelivered: summary?.containers?.delivered,
    findings: summary?.findings ? Object.values(summary.findings).reduce((a, b) => a + b, 0) : undefined,
    bytesPerNamespace: perNamespace.map((n) => n.bytes ?? 0),
    partsPerNamespace: perNamespace.map((n) => n.parts ?? 0),
    ephor: {
      posts: ephorRequests,
      accepted: accepted.length,
      rejected: ingests.length - accepted.length,
      firstRejection: ingests
        .find((r) => r.rejectedBecause)
        ?.rejectedBecause?.join('; ')
        .slice(0, 300),
      bytes: accepted.reduce((n, r) => n + (r.bytes ?? 0), 0),
      workloads: accepted.reduce((n, r) => n + (r.summary?.workloads ?? 0), 0),
      vulnerabilities: accepted.reduce((n, r) => n + (r.summary?.vulnerabilities ?? 0), 0),
      critical: accepted.reduce((n, r) => n + (r.summary?.critical ?? 0), 0),
      maxConcurrentPosts,
      checked: accepted.filter((r) => r.summary?.checked).length,
      checkedBytes: accepted.reduce((n, r) => n + (r.summary?.checked ? (r.bytes ?? 0) : 0), 0),
    },
    timeline,
    startedAtMs: startedAt,
    rssByPhaseKiB: rssByPhase(scanner.rss, startedAt, timeline),
    kube: { requests: kubeRequests },
    machine: { benchS: 0 },
    logs,
    problems: [],
  };
  measurement.problems = checkRun(measurement, await readFile(scanner.stderrFile, 'utf8').catch(() => ''));
  return measurement;
}

/**
 * The Ephor stand-in keeps the bodies it checks in full until the run is over (so that the check takes no CPU from
 * the scanner): about five per run, the first one included. Every body is counted.
 */
export function lightSampleFor(cluster: ClusterOptions): number {
  return Math.max(1, Math.ceil((cluster.namespaces * cluster.workloadsPerNamespace) / 100));
}

/** What makes a run's numbers meaningless: it failed, or did not scan and deliver everything. */
function checkRun(m: Measurement, stderr: string): string[] {
  const problems: string[] = [];
  if (m.exitCode !== 0) problems.push(`exit code ${m.exitCode}`);
  if (m.durationS === undefined) problems.push('no "ephor-scanner completed" summary in the log');
  if (m.images.total !== m.cluster.images || m.images.scanned !== m.cluster.images) {
    problems.push(`images: ${m.images.scanned} of ${m.images.total} scanned, expected ${m.cluster.images}`);
  }
  if (m.namespaces.delivered !== m.cluster.namespaces)
    problems.push(`namespaces delivered: ${m.namespaces.delivered} of ${m.cluster.namespaces}`);
  if (m.containersDelivered !== m.cluster.containers)
    problems.push(`containers delivered: ${m.containersDelivered} of ${m.cluster.containers}`);
  const posted = m.bytesPerNamespace.reduce((a, b) => a + b, 0);
  if (posted !== m.ephor.bytes)
    problems.push(`the scanner reports ${posted} bytes posted, the Ephor stand-in accepted ${m.ephor.bytes}`);
  if (m.ephor.rejected > 0)
    problems.push(`${m.ephor.rejected} POSTs rejected by the Ephor stand-in (${m.ephor.firstRejection})`);
  if (m.findings !== undefined && m.findings !== m.ephor.vulnerabilities)
    problems.push(`findings: the scanner reports ${m.findings}, the Ephor stand-in counted ${m.ephor.vulnerabilities}`);
  if (m.ephor.workloads < m.cluster.workloads)
    problems.push(`workloads: the Ephor stand-in counted ${m.ephor.workloads} of ${m.cluster.workloads}`);
  if (m.ephor.checked === 0) problems.push('the Ephor stand-in checked no body in full');
  if (m.time.maxRssKiB === undefined) problems.push('GNU time wrote no "Maximum resident set size"');
  if (stderr.trim() !== '') problems.push(`stderr: ${stderr.trim().slice(0, 300)}`);
  return problems;
}

function rssByPhase(
  samples: Array<[number, number]>,
  startedAt: number | undefined,
  timeline: Measurement['timeline'],
): Measurement['rssByPhaseKiB'] {
  if (startedAt === undefined) return {};
  const peak = (from: number | undefined, to: number | undefined) => {
    const within = samples
      .filter(([at]) => (from === undefined || at - startedAt >= from) && (to === undefined || at - startedAt < to))
      .map(([, kib]) => kib);
    return within.length > 0 ? Math.max(...within) : undefined;
  };
  return {
    discovery: peak(undefined, timeline.planned),
    scans: peak(timeline.planned, timeline.lastScanned),
    tail: peak(timeline.lastScanned, undefined),
  };
}

/** Busy and stolen CPU seconds of the whole machine so far (the `cpu` line of /proc/stat). */
async function machineCpu(): Promise<{ busyS: number; stealS: number } | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const hz = 100; // USER_HZ
    return { busyS: (user! + nice! + system! + irq! + softirq!) / hz, stealS: steal! / hz };
  } catch {
    return undefined;
  }
}

/** The lines of `/usr/bin/time -v` the benchmark uses. */
export function parseGnuTime(text: string): Measurement['time'] {
  const field = (label: string) =>
    new RegExp(`^\\s*${label.replace(/[()]/g, '\\$&')}: (.+)$`, 'm').exec(text)?.[1]?.trim();
  const number = (label: string) => {
    const value = field(label);
    return value === undefined ? undefined : Number(value);
  };
  return {
    maxRssKiB: number('Maximum resident set size (kbytes)'),
    userS: number('User time (seconds)'),
    systemS: number('System time (seconds)'),
    elapsed: field('Elapsed (wall clock) time (h:mm:ss or m:ss)'),
  };
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}`));
    });
  });
}

function plus(scanner: number | undefined, launcher: number | undefined): number | undefined {
  return scanner === undefined ? undefined : scanner + (launcher ?? 0);
}

export interface SlotStats {
  scans: number;
  /** Mean time from a stand-in's start to its exit (L plus writing the report). */
  meanLifetimeMs: number;
  /** From the scanner's first log line to the first Trivy scan's start. */
  firstStartMs?: number;
  /** For each scan that ended before the last start: how long until the next scan started (a slot stood empty). */
  gapMedianMs: number;
  gapP90Ms: number;
  /** Slot time left empty between the first and the last start, divided by C: the wall time it cost. */
  idleWallMs: number;
}

/** Reads the stand-in's "START_NS END_NS" lines (one per scan). Undefined when there are none (the bash stand-in). */
export function slotStats(text: string, concurrency: number, startedAtMs: number | undefined): SlotStats | undefined {
  const spans = text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').map((n) => Number(n) / 1e6) as [number, number]);
  if (spans.length === 0) return undefined;
  const starts = spans.map(([start]) => start).sort((a, b) => a - b);
  const ends = spans.map(([, end]) => end).sort((a, b) => a - b);
  const lastStart = starts.at(-1)!;
  const gaps: number[] = [];
  let next = 0;
  // Each exit, in order, is paired with the first start after it that no earlier exit took: the slot it freed.
  for (const end of ends) {
    while (next < starts.length && starts[next]! < end) next++;
    if (next < starts.length) gaps.push(starts[next++]! - end);
  }
  gaps.sort((a, b) => a - b);
  const events = [...starts.map((t) => [t, 1] as const), ...ends.map((t) => [t, -1] as const)].sort(
    (a, b) => a[0] - b[0] || a[1] - b[1],
  );
  let running = 0;
  let previous = starts[0]!;
  let idle = 0;
  for (const [time, delta] of events) {
    if (time > lastStart) break;
    idle += (concurrency - running) * (time - previous);
    running += delta;
    previous = time;
  }
  const quantile = (q: number) =>
    gaps.length === 0 ? 0 : gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * q))]!;
  return {
    scans: spans.length,
    meanLifetimeMs: spans.reduce((n, [start, end]) => n + (end - start), 0) / spans.length,
    firstStartMs: startedAtMs === undefined ? undefined : starts[0]! - startedAtMs,
    gapMedianMs: quantile(0.5),
    gapP90Ms: quantile(0.9),
    idleWallMs: idle / concurrency,
  };
}

/** Where a run's wall time beyond the ideal went (ms); `rest` is what the parts do not explain (overlaps, rounding). */
export interface OverheadParts {
  overhead: number;
  /** Before the scanner's first log line and after its summary: Node start-up, loading the bundle, exit. */
  outsideLog: number;
  /** The first Trivy start beyond T_db after the first log line: discovery outlasting the DB steps, then planning. */
  firstStartBeyondDb: number;
  /** Empty slot time between the first and the last start, divided by C. */
  emptySlots: number;
  /** The stand-in's mean lifetime beyond L, for each of the ceil(U / C) rounds. */
  lifetimeBeyondL: number;
  /** From the last "image scanned" to the summary: the last deliveries. */
  afterLastScan: number;
  rest: number;
}

export function overheadParts(
  m: Pick<Measurement, 'wallMs' | 'idealMs' | 'dbMs' | 'timeline' | 'slots' | 'config' | 'cluster'>,
): OverheadParts | undefined {
  const { completed, lastScanned } = m.timeline;
  const slots = m.slots;
  if (completed === undefined || lastScanned === undefined || slots?.firstStartMs === undefined) return undefined;
  const parts = {
    overhead: m.wallMs - m.idealMs,
    outsideLog: m.wallMs - completed,
    firstStartBeyondDb: slots.firstStartMs - m.dbMs.total,
    emptySlots: slots.idleWallMs,
    lifetimeBeyondL: (slots.meanLifetimeMs - m.config.latencyMs) * Math.ceil(m.cluster.images / m.config.concurrency),
    afterLastScan: completed - lastScanned,
  };
  const explained =
    parts.outsideLog + parts.firstStartBeyondDb + parts.emptySlots + parts.lifetimeBeyondL + parts.afterLastScan;
  return { ...parts, rest: parts.overhead - explained };
}

const SHARD_TOKEN = 'bench-shard-token-0123456789abcdefghij';

/**
 * The shards other than index 0 of a sharded run, started now (index 0 is started next, under GNU time): each with
 * its own HOME, TMPDIR and cache, as a Pod of an Indexed Job has. `env` becomes index 0's. Resolves once they exited.
 */
async function startShards(
  count: number,
  env: Record<string, string>,
  dir: string,
): Promise<{ ended: Promise<{ exitCodes: Array<number | null>; scanned: number[] }> }> {
  const port = await freePort();
  Object.assign(env, {
    SHARD_COUNT: String(count),
    JOB_COMPLETION_INDEX: '0',
    SHARD_TOKEN,
    SHARD_LISTEN: `127.0.0.1:${port}`,
  });
  const runs: Array<Promise<[number | null, number]>> = [];
  for (let index = 1; index < count; index++) {
    const own = path.join(dir, `shard-${index}`);
    for (const sub of ['home', 'tmp', 'cache']) await mkdir(path.join(own, sub), { recursive: true });
    const shardEnv: Record<string, string> = {
      ...env,
      JOB_COMPLETION_INDEX: String(index),
      SHARD_COORDINATOR_URL: `http://127.0.0.1:${port}`,
      HOME: path.join(own, 'home'),
      TMPDIR: path.join(own, 'tmp'),
      TRIVY_CACHE_DIR: path.join(own, 'cache'),
      FAST_TRIVY_TIMELINE: path.join(own, 'trivy-timeline.txt'),
    };
    Reflect.deleteProperty(shardEnv, 'SHARD_LISTEN');
    runs.push(runShard(shardEnv, path.join(own, 'scanner.stdout.jsonl')));
  }
  const ended = Promise.all(runs).then((all) => ({
    exitCodes: all.map(([code]) => code),
    scanned: all.map(([, n]) => n),
  }));
  return { ended };
}

/** One shard > 0: its exit code and the images it scanned. Killed with its process group after 30 min. */
async function runShard(env: Record<string, string>, stdoutFile: string): Promise<[number | null, number]> {
  const child = spawn(process.execPath, [CLI_BUNDLE], { env, stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  const stdout = createWriteStream(stdoutFile);
  child.stdout.pipe(stdout);
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, 30 * 60_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (exitCode) => {
      resolve(exitCode);
    });
  });
  clearTimeout(timer);
  await finished(stdout);
  return [code, await countScanned(stdoutFile)];
}

async function countScanned(stdoutFile: string): Promise<number> {
  const text = await readFile(stdoutFile, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.includes('"msg":"image scanned"')).length;
}

function shardProblems(m: Measurement): string[] {
  const problems: string[] = [];
  const shards = m.shards!;
  const failed = shards.exitCodes.map((code, i) => [i + 1, code]).filter(([, code]) => code !== 0);
  if (failed.length > 0) problems.push(`shards exited non-zero: ${failed.map(([i, c]) => `${i}: ${c}`).join(', ')}`);
  const scanned = shards.scannedByShard.reduce((a, b) => a + b, 0);
  if (scanned !== m.cluster.images)
    problems.push(
      `the shards scanned ${scanned} images in all (${shards.scannedByShard.join(' + ')}), not ${m.cluster.images}`,
    );
  if (m.ephor.maxConcurrentPosts > 1) problems.push(`${m.ephor.maxConcurrentPosts} POSTs at once`);
  return problems;
}
