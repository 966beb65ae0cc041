// The README's table of settings, generated from SETTINGS so the documentation cannot drift from the code.
import { SETTINGS } from './settings.js';

export const TABLE_START = '<!-- settings-table:start -->';
export const TABLE_END = '<!-- settings-table:end -->';

export function settingsTable(): string {
  const rows = SETTINGS.map((s) => {
    const flag = s.flag ? `\`${s.flag}\`` : '(environment only)';
    const fallback = s.required ? 'required' : s.default !== undefined ? `\`${s.default}\`` : 'unset';
    return `| \`${s.env}\` | ${flag} | ${fallback} | ${s.allowed} | ${s.description} |`;
  });
  return [
    TABLE_START,
    '| Variable | Flag | Default | Allowed | Meaning |',
    '| --- | --- | --- | --- | --- |',
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
