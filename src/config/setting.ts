// What one entry of the settings table says about a setting. The table (settings.ts) is the single source: the
// loader parses with it, the CLI builds its flags and --help from it, the README table is generated from it, and
// tests check the Helm chart (ConfigMap, Secret, values.yaml, values reference) and `check`'s hints against it.

/** How the Helm chart sets a variable. */
export interface ChartBinding {
  /** The values.yaml key the chart takes the variable from, e.g. `ephor.maxPayloadBytes`. */
  value: string;
  /**
   * What `check` tells an operator to change when it is more than `value`,
   * e.g. `ephor.authValue or ephor.existingSecret`.
   */
  hint?: string;
  /** The chart puts it in its Secret instead of its ConfigMap. */
  inSecret?: true;
  /** The chart computes the variable (from `hint`'s values) instead of copying `value` as it is. */
  computed?: true;
  /** The chart's default when it differs from the scanner's, with the reason next to it in the table. */
  default?: string;
}

export interface SettingSpec<T> {
  /** Long flag that overrides the variable; absent for secrets, which must never appear in argv. */
  flag?: string;
  /** Text → typed value; throws a ValueError saying what is allowed. Used for the default as well. */
  parse: (text: string) => T;
  /** Text used when the variable is unset (or blank); parsed like a value. */
  default?: string;
  /** Unset is a configuration error (cross-setting exceptions are rules in rules.ts). */
  required?: true;
  /** A valid value other than the default: shown in "is required" errors, used by the chart test. */
  example: string;
  allowed: string;
  description: string;
  /** Environment only, and its value is never shown (not even in an error). */
  secret?: true;
  /** true/false: a switch on the command line (`--x`, `--no-x`, `--x=false`, `--x false`). */
  boolean?: true;
  /** Absent: the chart does not set it (an operator uses extraEnv). */
  chart?: ChartBinding;
}

export interface Setting<T = unknown> extends SettingSpec<T> {
  /** The environment variable. */
  env: string;
}

/** Where an operator changes a variable in a Helm install, as `check` words it. */
export function chartHintOf(setting: Setting | undefined): string {
  return setting?.chart ? (setting.chart.hint ?? setting.chart.value) : 'extraEnv';
}
