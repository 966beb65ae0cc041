// The Helm chart as the settings table (src/config/settings.ts) describes it: which variables the chart sets, from
// which values, with which defaults. Used by the chart tests so that their expected lists come from the table.
import { SETTINGS } from '../../src/config/settings.js';
import type { Setting } from '../../src/config/setting.js';

/** Settings the chart copies from one value (not computed, like SCAN_DEADLINE). */
export const CHART_BOUND: readonly Setting[] = SETTINGS.filter((s) => s.chart && !s.chart.computed);

/** The variables a default install gets from values.yaml: the chart's default, else the scanner's, when there is one. */
export function chartDefaultEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of CHART_BOUND) {
    const fallback = s.chart!.default ?? s.default;
    if (fallback !== undefined) env[s.env] = fallback;
  }
  return env;
}

/** A values object that sets every bound value to its setting's example (`ephor.timeout: "10m"`, …). */
export function exampleValues(): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const s of CHART_BOUND) {
    const keys = s.chart!.value.split('.');
    let node = values;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[keys.at(-1)!] = s.example;
  }
  return values;
}
