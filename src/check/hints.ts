// Where an operator changes a setting, as `check`'s fixes say it: the variable with the Helm value that sets it,
// both taken from the settings table (src/config/settings.ts), so that a hint cannot name a value the chart lacks.
import { chartHintOf } from '../config/setting.js';
import { settingOf } from '../config/settings.js';

/** The chart value behind a variable; `extraEnv` for a variable the chart does not set. */
export function chartValue(variable: string): string {
  return chartHintOf(settingOf(variable));
}

/** `VARIABLE (chart: value)`, with `detail` after the value (e.g. `=false`). */
export function inChart(variable: string, detail = ''): string {
  return `${variable} (chart: ${chartValue(variable)}${detail})`;
}
