// The benchmark's scenarios and targets (the issue's numbers), full size and `--quick`.
import { incrementalRuns, judgeIncremental } from './incremental.js';
import type { Measurement, RunConfig } from './measure.js';
import { JUICE_SHOP_REPORT } from './report.js';
import { judgeSharded, shardedRuns } from './sharded.js';

export type ScenarioName = 'overhead' | 'discovery' | 'memory' | 'incremental' | 'sharded';
export const SCENARIOS: readonly ScenarioName[] = ['overhead', 'discovery', 'memory', 'incremental', 'sharded'];
/** Scenarios with a section and targets of their own, left out of the fixed-latency tables. */
export const OWN_SECTION: readonly ScenarioName[] = ['incremental', 'sharded'];

export interface PlannedRun {
  scenario: ScenarioName;
  config: RunConfig;
}

export interface PlanOptions {
  quick: boolean;
  /** Runs of the overhead configuration (their median is judged). */
  repeat: number;
  /** Where the incremental scenario keeps its cache directories from one run to the next (one per mode). */
  cacheRoot?: string;
}

/** The sizes: the issue's targets, or a small configuration that runs in about a minute (not judged). */
export function sizes(quick: boolean) {
  return quick
    ? {
        overhead: {
          namespaces: 5,
          workloadsPerNamespace: 40,
          replicas: 3,
          images: 100,
          concurrency: 8,
          latencyMs: 200,
        },
        large: { namespaces: 10, workloadsPerNamespace: 60, replicas: 3, concurrency: 8, latencyMs: 50 },
        curve: [40, 80, 160, 320],
      }
    : {
        overhead: {
          namespaces: 10,
          workloadsPerNamespace: 100,
          replicas: 3,
          images: 500,
          concurrency: 8,
          latencyMs: 200,
        },
        large: { namespaces: 100, workloadsPerNamespace: 200, replicas: 3, concurrency: 8, latencyMs: 200 },
        curve: [250, 500, 1000, 2000],
      };
}

/**
 * The runs to make. Discovery is measured in every run; its target needs the large cluster (20,000 workloads,
 * 60,000 Pods), which the memory runs use, so `discovery` adds a run of its own only when `memory` is not run.
 */
export function planRuns(names: readonly ScenarioName[], options: PlanOptions): PlannedRun[] {
  const size = sizes(options.quick);
  const runs: PlannedRun[] = [];
  if (names.includes('overhead')) {
    const { concurrency, latencyMs, ...cluster } = size.overhead;
    for (let i = 1; i <= options.repeat; i++) {
      runs.push({
        scenario: 'overhead',
        config: { label: `#${i}`, cluster, concurrency, latencyMs, report: JUICE_SHOP_REPORT },
      });
    }
  }
  const { concurrency, latencyMs, ...large } = size.large;
  const curve = names.includes('memory') ? size.curve : names.includes('discovery') ? size.curve.slice(0, 1) : [];
  for (const images of curve) {
    runs.push({
      scenario: names.includes('memory') ? 'memory' : 'discovery',
      config: {
        label: `U = ${images}`,
        cluster: { ...large, images },
        concurrency,
        latencyMs,
        report: JUICE_SHOP_REPORT,
      },
    });
  }
  if (names.includes('incremental'))
    for (const config of incrementalRuns(options.quick, options.cacheRoot ?? ''))
      runs.push({ scenario: 'incremental', config });
  if (names.includes('sharded'))
    for (const config of shardedRuns(options.quick)) runs.push({ scenario: 'sharded', config });
  return runs;
}

export const TARGETS = {
  overheadRatio: 1.05,
  discoveryMs: 10_000,
  discoveryWorkloads: 20_000,
  discoveryPods: 60_000,
  peakRssMiB: 256,
  rssImages: 2_000,
  /** "must not grow with U": peak RSS at the largest U at most this much above the smallest U's. */
  rssGrowth: 0.1,
};

export type Verdict = 'met' | 'missed' | 'not measured';

export interface TargetResult {
  target: string;
  measured: string;
  verdict: Verdict;
}

/** Runs whose numbers mean something: the scanner scanned and delivered everything. */
export function valid(m: Measurement): boolean {
  return m.problems.length === 0;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function peakRssKiB(m: Measurement): number | undefined {
  return m.time.maxRssKiB;
}

/** Each target of the issue against what was measured (quick runs are too small to be judged). */
export function judge(
  all: Array<{ scenario: ScenarioName; measurement: Measurement }>,
  quick: boolean,
): TargetResult[] {
  const verdict = (ok: boolean | undefined): Verdict =>
    quick || ok === undefined ? 'not measured' : ok ? 'met' : 'missed';
  const out: TargetResult[] = [];
  const results = all.filter((r) => !OWN_SECTION.includes(r.scenario));

  const overhead = results.filter((r) => r.scenario === 'overhead').map((r) => r.measurement);
  if (overhead.length > 0) {
    const ok = overhead.filter(valid);
    const ratios = ok.map((m) => m.wallMs / m.idealMs);
    const med = ratios.length > 0 ? median(ratios) : undefined;
    const cfg = overhead[0]!.config;
    out.push({
      target: `wall time ≤ ${TARGETS.overheadRatio} × ideal at U = ${cfg.cluster.images}, C = ${cfg.concurrency}, L = ${cfg.latencyMs} ms (median of the runs)`,
      measured:
        med === undefined ? 'no valid run' : `${med.toFixed(4)} (runs: ${ratios.map((r) => r.toFixed(4)).join(', ')})`,
      verdict: verdict(med === undefined ? undefined : med <= TARGETS.overheadRatio),
    });
  }

  if (results.some((r) => r.scenario !== 'overhead')) {
    const runs = results
      .filter((r) => r.scenario !== 'overhead')
      .map((r) => r.measurement)
      .filter(valid);
    const atScale = quick
      ? runs
      : runs.filter(
          (m) => m.cluster.workloads >= TARGETS.discoveryWorkloads && m.cluster.pods >= TARGETS.discoveryPods,
        );
    const times = atScale.map((m) => m.discoveryMs).filter((ms): ms is number => ms !== undefined);
    const worst = times.length > 0 ? Math.max(...times) : undefined;
    out.push({
      target: `discovery of ${TARGETS.discoveryWorkloads.toLocaleString('en-US')} workloads and ${TARGETS.discoveryPods.toLocaleString('en-US')} Pods ≤ ${TARGETS.discoveryMs / 1000} s (slowest run)`,
      measured:
        worst === undefined
          ? 'no valid run'
          : `${(worst / 1000).toFixed(3)} s (runs: ${times.map((ms) => `${(ms / 1000).toFixed(3)} s`).join(', ')})`,
      verdict: verdict(worst === undefined ? undefined : worst <= TARGETS.discoveryMs),
    });
  }

  const memory = results
    .filter((r) => r.scenario === 'memory')
    .map((r) => r.measurement)
    .filter(valid)
    .sort((a, b) => a.cluster.images - b.cluster.images);
  if (results.some((r) => r.scenario === 'memory')) {
    const atTarget = memory.find(
      (m) => m.cluster.images === TARGETS.rssImages && m.cluster.workloads >= TARGETS.discoveryWorkloads,
    );
    const rss = atTarget && peakRssKiB(atTarget);
    out.push({
      target: `peak RSS ≤ ${TARGETS.peakRssMiB} MiB for U = ${TARGETS.rssImages.toLocaleString('en-US')} images × ${atTarget?.report.vulnerabilities ?? 236} findings and ${TARGETS.discoveryWorkloads.toLocaleString('en-US')} workloads`,
      measured: rss === undefined ? 'no valid run' : `${(rss / 1024).toFixed(1)} MiB (${rss} KiB)`,
      verdict: verdict(rss === undefined ? undefined : rss <= TARGETS.peakRssMiB * 1024),
    });
    const first = memory[0];
    const last = memory.at(-1);
    const low = first && peakRssKiB(first);
    const high = last && peakRssKiB(last);
    const growth = low !== undefined && high !== undefined && first !== last ? high / low - 1 : undefined;
    out.push({
      target: `peak RSS does not grow with U: at U = ${last?.cluster.images ?? '…'} at most ${TARGETS.rssGrowth * 100} % above U = ${first?.cluster.images ?? '…'}`,
      measured:
        growth === undefined
          ? 'no valid curve'
          : `${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} % (${memory.map((m) => `U = ${m.cluster.images}: ${((peakRssKiB(m) ?? 0) / 1024).toFixed(1)} MiB`).join(', ')})`,
      verdict: verdict(growth === undefined ? undefined : growth <= TARGETS.rssGrowth),
    });
  }
  if (all.some((r) => r.scenario === 'incremental')) {
    const runs = all.filter((r) => r.scenario === 'incremental').map((r) => r.measurement);
    const judged = judgeIncremental(runs.filter(valid));
    for (const t of judged) out.push({ target: t.target, measured: t.measured, verdict: verdict(t.ok) });
  }
  if (all.some((r) => r.scenario === 'sharded')) {
    const runs = all.filter((r) => r.scenario === 'sharded').map((r) => r.measurement);
    for (const t of judgeSharded(runs.filter(valid)))
      out.push({ target: t.target, measured: t.measured, verdict: verdict(t.ok) });
  }
  return out;
}
