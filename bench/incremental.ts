// The incremental scenario (issue 15): the same cluster scanned with realistic layer latencies, first and again
// unchanged, in `ephemeral` mode and in `server` mode (each with its own cache directory kept from one run to the
// next), then once more in `server` mode after 10 % of the images were redeployed with new digests. Judged on ratios
// measured side by side in one benchmark run, never on absolute times.
import type { Measurement, RunConfig } from './measure.js';
import type { LayerModel } from './layers.js';
import { JUICE_SHOP_REPORT } from './report.js';

export type IncrementalStep = 'first' | 'second' | 'changed';

export interface IncrementalRun {
  mode: 'ephemeral' | 'server';
  step: IncrementalStep;
  /** TRIVY_CACHE_DIR, kept from one run of a mode to the next. */
  cacheDir: string;
  layers: LayerModel;
}

/** A realistic layer: 0.3–2 s to download and analyse; manifest and config 50 ms; 3 application layers per image. */
export const LAYERS: LayerModel = { manifestMs: 50, minMs: 300, maxMs: 2000, appLayers: 3 };
/** 10 % of the images get a new digest for the last run. */
export const CHANGED_EVERY = 10;

export function incrementalSize(quick: boolean) {
  return quick
    ? { namespaces: 3, workloadsPerNamespace: 40, replicas: 2, images: 60, concurrency: 8 }
    : { namespaces: 10, workloadsPerNamespace: 100, replicas: 3, images: 500, concurrency: 8 };
}

const SEQUENCE: Array<[IncrementalRun['mode'], IncrementalStep]> = [
  ['ephemeral', 'first'],
  ['ephemeral', 'second'],
  ['server', 'first'],
  ['server', 'second'],
  ['server', 'changed'],
];

export function incrementalLabel(mode: IncrementalRun['mode'], step: IncrementalStep): string {
  const what = { first: 'first run', second: 'second run, unchanged', changed: '10 % of the digests changed' }[step];
  return `${mode}, ${what}`;
}

/** The five runs, in order; `cacheRoot` holds one cache directory per mode. */
export function incrementalRuns(quick: boolean, cacheRoot: string): RunConfig[] {
  const { concurrency, ...cluster } = incrementalSize(quick);
  return SEQUENCE.map(([mode, step]) => ({
    label: incrementalLabel(mode, step),
    cluster: { ...cluster, changedEvery: step === 'changed' ? CHANGED_EVERY : 0 },
    concurrency,
    latencyMs: 0,
    report: JUICE_SHOP_REPORT,
    incremental: { mode, step, cacheDir: `${cacheRoot}/${mode}`, layers: LAYERS },
  }));
}

export const INCREMENTAL_TARGETS = {
  /** The unchanged re-scan at least this many times faster than the first ephemeral run. */
  unchangedSpeedup: 10,
};

export interface IncrementalVerdict {
  target: string;
  measured: string;
  ok?: boolean;
}

const find = (runs: Measurement[], mode: IncrementalRun['mode'], step: IncrementalStep) =>
  runs.find((m) => m.config.incremental?.mode === mode && m.config.incremental.step === step);

/** Wall time of the first ephemeral run over this run's: how many times faster. */
export function speedup(base: Measurement | undefined, run: Measurement | undefined): number | undefined {
  return base && run ? base.wallMs / run.wallMs : undefined;
}

/** The findings a run delivered: vulnerability entries and CRITICAL ones, as the Ephor stand-in counted them. */
export function deliveredFindings(m: Measurement): string {
  return `${m.ephor.vulnerabilities.toLocaleString('en-US')} / ${m.ephor.critical.toLocaleString('en-US')}`;
}

export function judgeIncremental(runs: Measurement[]): IncrementalVerdict[] {
  const base = find(runs, 'ephemeral', 'first');
  const unchanged = find(runs, 'server', 'second');
  const firstServer = find(runs, 'server', 'first');
  const out: IncrementalVerdict[] = [];
  const rescan = speedup(base, unchanged);
  out.push({
    target: `unchanged re-scan in server mode ≥ ${INCREMENTAL_TARGETS.unchangedSpeedup}× faster than the first ephemeral run, and downloading no layer`,
    measured:
      rescan === undefined || !unchanged?.layers
        ? 'no valid run'
        : `${rescan.toFixed(1)}× (${unchanged.layers.downloaded} layers downloaded)`,
    ok:
      rescan === undefined || !unchanged?.layers
        ? undefined
        : rescan >= INCREMENTAL_TARGETS.unchangedSpeedup && unchanged.layers.downloaded === 0,
  });
  const first = speedup(base, firstServer);
  out.push({
    target: 'the first server run faster than the first ephemeral run (shared base layers downloaded once per slot)',
    measured:
      first === undefined || !firstServer?.layers || !base?.layers
        ? 'no valid run'
        : `${first.toFixed(2)}× (base layers downloaded: ${firstServer.layers.downloadedBase} against ${base.layers.downloadedBase}; layers in all: ${firstServer.layers.downloaded} against ${base.layers.downloaded})`,
    ok: first === undefined ? undefined : first > 1,
  });
  const findings = runs.map(deliveredFindings);
  out.push({
    target: 'findings identical across modes and runs (vulnerability entries / CRITICAL ones delivered)',
    measured: runs.length === 0 ? 'no valid run' : runs.map((m, i) => `${m.config.label}: ${findings[i]}`).join('; '),
    ok: runs.length === 0 ? undefined : new Set(findings).size === 1,
  });
  return out;
}
