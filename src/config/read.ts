// Table-driven reading: every setting's text (or its default) through its own parser. A bad value becomes a problem
// naming the variable, its value (hidden for secrets) and what is allowed; it is never replaced by the default.
import { ValueError } from './parse.js';
import { SETTINGS, settingOf, type SettingValues } from './settings.js';

export type Env = Record<string, string | undefined>;

export interface ConfigProblem {
  variable: string;
  message: string;
}

/**
 * The raw text of a variable, or undefined when unset; an empty or blank value counts as unset (as in the Go scanner).
 */
export function rawValue(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

export function shownValue(name: string, value: string): string {
  return settingOf(name)?.secret ? '(value hidden)' : JSON.stringify(value);
}

export function requiredProblem(name: string): ConfigProblem {
  const example = settingOf(name)?.example ?? '…';
  return { variable: name, message: `${name} is required (e.g. ${name}=${example})` };
}

/** Cross-setting exceptions to the table's per-setting rules (rules.ts). */
export interface ReadExceptions {
  /** A required setting that may stay unset here (EPHOR_API_URL in a dry run). */
  notRequired: (name: string, parsed: Partial<SettingValues>) => boolean;
  /** A setting that is not used here, so its value is not parsed (TRIVY_CACHE_BACKEND outside redis mode). */
  unused: (name: string, parsed: Partial<SettingValues>) => boolean;
}

/**
 * Parses every setting. `values` holds what parsed; a setting that failed (or a required one that is unset) is
 * undefined there and has its problem in `problems`, so the values may only be trusted when there is none.
 */
export function readSettings(
  env: Env,
  exceptions: ReadExceptions,
): { values: Partial<SettingValues>; problems: ConfigProblem[] } {
  const values: Record<string, unknown> = {};
  const parsed = values as Partial<SettingValues>;
  const failed = new Map<string, ConfigProblem>();
  for (const setting of SETTINGS) {
    const text = rawValue(env, setting.env) ?? setting.default;
    if (text === undefined) continue;
    try {
      values[setting.env] = setting.parse(text);
    } catch (error) {
      if (!(error instanceof ValueError)) throw error;
      const message = `${setting.env}=${shownValue(setting.env, text)} ${error.message}`;
      failed.set(setting.env, { variable: setting.env, message });
    }
  }
  // Exceptions are decided once every value is parsed, whatever the order of the table.
  const problems: ConfigProblem[] = [];
  for (const { env: name, required } of SETTINGS) {
    if (exceptions.unused(name, parsed)) {
      Reflect.deleteProperty(values, name);
      continue;
    }
    const problem = failed.get(name);
    if (problem) problems.push(problem);
    else if (required && rawValue(env, name) === undefined && !exceptions.notRequired(name, parsed))
      problems.push(requiredProblem(name));
  }
  return { values: parsed, problems };
}

/** Problems in the order of the settings table (then their own order), so that a report reads like the table. */
export function inTableOrder(problems: ConfigProblem[]): ConfigProblem[] {
  const position = (p: ConfigProblem) => {
    const index = SETTINGS.findIndex((s) => s.env === p.variable);
    return index < 0 ? SETTINGS.length : index;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => position(a.p) - position(b.p) || a.i - b.i)
    .map(({ p }) => p);
}
