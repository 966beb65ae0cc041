// The README's table of settings and the variables part of --help, both generated from the settings table so that
// the documentation cannot drift from the code (`npx tsx scripts/update-readme.ts` rewrites the README's copy).
import { SETTINGS } from './settings.js';
import type { Setting } from './setting.js';

export const TABLE_START = '<!-- settings-table:start -->';
export const TABLE_END = '<!-- settings-table:end -->';

/** How a switch may be written on the command line (README and --help). */
export const SWITCH_FORMS =
  '`--dry-run`, `--no-dry-run`, `--dry-run=false` or `--dry-run false`, ' +
  'the value being true/false, 1/0, yes/no or on/off';

function flagCell(s: Setting): string {
  if (!s.flag) return '(environment only)';
  return s.boolean ? `\`${s.flag}\`, \`--no-${s.flag.slice(2)}\`` : `\`${s.flag}\``;
}

function defaultCell(s: Setting): string {
  if (s.required) return 'required';
  return s.default !== undefined ? `\`${s.default}\`` : 'unset';
}

function chartCell(s: Setting): string {
  if (!s.chart) return '`extraEnv`';
  // Every value path in the hint as code: `ephor.authValue`, or the key in `ephor.existingSecret`.
  const where = (s.chart.hint ?? s.chart.value).replace(
    /\b(?:[a-z]\w*\.)+\w+\b|\bactiveDeadlineSeconds\b/g,
    (m) => `\`${m}\``,
  );
  return s.chart.default !== undefined ? `${where} (default \`${s.chart.default}\`)` : where;
}

export function settingsTable(): string {
  const rows = SETTINGS.map(
    (s) => `| \`${s.env}\` | ${flagCell(s)} | ${defaultCell(s)} | ${s.allowed} | ${s.description} | ${chartCell(s)} |`,
  );
  return [
    TABLE_START,
    '| Variable | Flag | Default | Allowed | Meaning | Helm value |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    TABLE_END,
  ].join('\n');
}

/** README text with the table between the markers replaced by the current one. */
export function withSettingsTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README lacks the ${TABLE_START} … ${TABLE_END} markers`);
  return readme.slice(0, start) + settingsTable() + readme.slice(end + TABLE_END.length);
}

/** The variables as --help lists them: name, default or required, what is allowed. */
export function helpRows(): string[] {
  return SETTINGS.map((s) => {
    const fallback = s.required ? 'required' : `default: ${s.default ?? '(unset)'}`;
    return `  ${s.env.padEnd(24)} ${fallback}; ${s.allowed}`;
  });
}
