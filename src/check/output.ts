// How the preflight results are shown: one line per check (✓ pass, ! warning, ✗ blocker) with the fix under each
// warning and blocker, then a verdict; or one JSON document (`--output json`). Exit codes: 0 nothing blocks
// (warnings allowed), 1 a blocker, 2 the configuration itself is invalid.
import { EXIT_BLOCKED, EXIT_CONFIG, EXIT_OK as EXIT_PASS } from '../exit-codes.js';
import type { CheckResult } from './types.js';

export { EXIT_BLOCKED, EXIT_CONFIG, EXIT_PASS };

const MARK = { pass: '✓', warn: '!', fail: '✗' } as const;

export function exitCodeOf(results: CheckResult[]): number {
  if (results.some((r) => r.status === 'fail' && r.configuration)) return EXIT_CONFIG;
  return results.some((r) => r.status === 'fail') ? EXIT_BLOCKED : EXIT_PASS;
}

function counts(results: CheckResult[]): { pass: number; warn: number; fail: number } {
  return {
    pass: results.filter((r) => r.status === 'pass').length,
    warn: results.filter((r) => r.status === 'warn').length,
    fail: results.filter((r) => r.status === 'fail').length,
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function formatText(results: CheckResult[], version: string): string {
  const lines = [`ephor-scanner ${version} preflight check`];
  for (const result of results) {
    lines.push(`${MARK[result.status]} ${result.group}: ${result.message}`);
    if (result.fix && result.status !== 'pass') lines.push(`    fix: ${result.fix}`);
  }
  const { warn, fail } = counts(results);
  const code = exitCodeOf(results);
  const warnings = warn > 0 ? `, ${plural(warn, 'warning')}` : '';
  if (code === EXIT_CONFIG)
    lines.push(
      `✗ the configuration is invalid (${plural(fail, 'blocker')}${warnings}): fix it, ` +
        'then run "ephor-scanner check" again',
    );
  else if (code === EXIT_BLOCKED)
    lines.push(
      `✗ ${plural(fail, 'blocker')}${warnings}: a scan would not deliver everything; ` +
        'fix the ✗ lines, then run "ephor-scanner check" again',
    );
  else lines.push(`✓ ready to scan${warn > 0 ? ` (${plural(warn, 'warning')}: the scan runs, with less)` : ''}`);
  return `${lines.join('\n')}\n`;
}

export function formatJson(results: CheckResult[], version: string): string {
  const exitCode = exitCodeOf(results);
  const document = {
    version,
    result: exitCode === EXIT_PASS ? 'pass' : 'fail',
    exit_code: exitCode,
    summary: counts(results),
    checks: results.map((r) => ({
      group: r.group,
      status: r.status,
      message: r.message,
      ...(r.fix && r.status !== 'pass' && { fix: r.fix }),
    })),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}
