// The command-line flags of the settings table. Each flag overrides its variable: the CLI merges the flags given into
// the environment and the loader validates both alike, so `--concurrency 0` and SCAN_CONCURRENCY=0 fail the same way.
// A switch (a true/false setting) takes every form people use: `--dry-run`, `--no-dry-run`, `--dry-run=false` and
// `--dry-run false` (the word being true/false, 1/0, yes/no, on/off, t/f, y/n). The last form is safe here because
// the scanner has no positional arguments: a word after a switch is its value unless it names a subcommand.
import { Command, Option } from 'commander';
import { SETTINGS } from './settings.js';
import type { Env } from './read.js';

const SWITCHES = SETTINGS.filter((s) => s.boolean && s.flag);

/** One commander Option per flag of the table; a switch gets an optional value and a hidden `--no-` twin. */
export function settingOptions(): Option[] {
  const options: Option[] = [];
  for (const setting of SETTINGS) {
    if (!setting.flag) continue;
    const help = `${setting.description} (${setting.env})`;
    if (setting.boolean) {
      options.push(new Option(`${setting.flag} [true|false]`, help));
      options.push(new Option(`--no-${setting.flag.slice(2)}`, `same as ${setting.flag}=false`).hideHelp());
    } else {
      options.push(new Option(`${setting.flag} <value>`, help));
    }
  }
  return options;
}

/** The variables set by the flags given: commander's parsed options (attribute names) → environment overrides. */
export function flagOverrides(options: Record<string, unknown>): Env {
  const overrides: Env = {};
  for (const setting of SETTINGS) {
    if (!setting.flag) continue;
    const value = options[new Option(setting.flag).attributeName()];
    if (value === undefined) continue;
    // commander gives a string (`--x v`, `--x=v`) or false (`--no-x`).
    overrides[setting.env] = typeof value === 'boolean' ? String(value) : (value as string);
  }
  return overrides;
}

/**
 * Rewrites every bare switch to `--x=VALUE` so that commander never takes the next word for an optional value by
 * itself: `--dry-run false` → `--dry-run=false`, `--dry-run check` → `--dry-run=true check`,
 * `--dry-run` → `--dry-run=true`.
 */
export function normalizeSwitches(argv: readonly string[], subcommands: readonly string[]): string[] {
  const switches = new Set(SWITCHES.map((s) => s.flag));
  const result: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      result.push(...argv.slice(i));
      break;
    }
    if (!switches.has(arg)) {
      result.push(arg);
      continue;
    }
    const next = argv[i + 1];
    const isValue = next !== undefined && !next.startsWith('-') && !subcommands.includes(next);
    result.push(`${arg}=${isValue ? next : 'true'}`);
    if (isValue) i++;
  }
  return result;
}

/** A commander Command that accepts every switch form (see normalizeSwitches) before parsing. */
export class SettingsCommand extends Command {
  override parseOptions(argv: string[]): { operands: string[]; unknown: string[] } {
    return super.parseOptions(
      normalizeSwitches(
        argv,
        this.commands.map((c) => c.name()),
      ),
    );
  }
}
