// The command-line flags of the settings table, parsed by commander as the CLI parses them: every switch takes every
// form (`--x`, `--no-x`, `--x=false`, `--x false`), before or after "check", and a value flag takes `--x v` and
// `--x=v`. (test/e2e/cli-habits.test.ts runs the built CLI with them.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SettingsCommand, flagOverrides, normalizeSwitches, settingOptions } from '../../src/config/flags.js';
import type { Env } from '../../src/config/index.js';
import { SETTINGS } from '../../src/config/settings.js';

/** What the CLI would merge into the environment for `argv`, and whether the scan or the check ran. */
function parse(argv: string[]): { command: 'scan' | 'check'; env: Env } {
  const program = new SettingsCommand('ephor-scanner').allowExcessArguments(false).exitOverride();
  program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  for (const option of settingOptions()) program.addOption(option);
  let result: { command: 'scan' | 'check'; env: Env } | undefined;
  program.action((options: Record<string, unknown>) => {
    result = { command: 'scan', env: flagOverrides(options) };
  });
  program.command('check').action((_options: unknown, command: SettingsCommand) => {
    result = { command: 'check', env: flagOverrides(command.optsWithGlobals()) };
  });
  program.parse(argv, { from: 'user' });
  assert.ok(result, `nothing ran for ${argv.join(' ')}`);
  return result;
}

const SWITCHES = SETTINGS.filter((s) => s.boolean);

describe('switches', () => {
  test('the table has switches, and each has a flag', () => {
    assert.ok(SWITCHES.length >= 4);
    for (const s of SWITCHES) assert.ok(s.flag, s.env);
  });

  for (const s of SWITCHES) {
    const flag = s.flag!;
    const negated = `--no-${flag.slice(2)}`;
    test(`${flag}: every form, before and after "check"`, () => {
      const forms: Array<[string[], string]> = [
        [[flag], 'true'],
        [[`${flag}=true`], 'true'],
        [[flag, 'true'], 'true'],
        [[`${flag}=yes`], 'yes'],
        [[flag, '1'], '1'],
        [[negated], 'false'],
        [[`${flag}=false`], 'false'],
        [[flag, 'false'], 'false'],
        [[flag, 'no'], 'no'],
        [[`${flag}=0`], '0'],
      ];
      for (const [args, value] of forms) {
        assert.deepEqual(parse(args), { command: 'scan', env: { [s.env]: value } }, args.join(' '));
        assert.deepEqual(parse(['check', ...args]), { command: 'check', env: { [s.env]: value } }, args.join(' '));
      }
    });
  }

  test('a bare switch before "check" does not swallow the subcommand', () => {
    assert.deepEqual(parse(['--dry-run', 'check']), { command: 'check', env: { EPHOR_DRY_RUN: 'true' } });
    assert.deepEqual(parse(['--dry-run', '--namespaces', 'a']), {
      command: 'scan',
      env: { EPHOR_DRY_RUN: 'true', SCAN_NAMESPACES: 'a' },
    });
  });

  test('a word after a switch is its value, so a wrong one reaches the loader and is reported with what is allowed', () => {
    assert.deepEqual(parse(['--sbom-enabled', 'maybe']), { command: 'scan', env: { SBOM_ENABLED: 'maybe' } });
  });

  test('the last form given wins, as for any flag', () => {
    assert.deepEqual(parse(['--dry-run', '--no-dry-run']).env, { EPHOR_DRY_RUN: 'false' });
    assert.deepEqual(parse(['--no-dry-run', '--dry-run=on']).env, { EPHOR_DRY_RUN: 'on' });
  });

  test('normalizeSwitches leaves everything after -- alone', () => {
    assert.deepEqual(normalizeSwitches(['--dry-run', '--', '--dry-run'], ['check']), [
      '--dry-run=true',
      '--',
      '--dry-run',
    ]);
  });
});

describe('value flags', () => {
  test('--x v and --x=v; every flag of the table maps to its own variable', () => {
    assert.deepEqual(parse(['--concurrency', '5', '--context=prod', '--kubeconfig', '/k']).env, {
      SCAN_CONCURRENCY: '5',
      KUBE_CONTEXT: 'prod',
      KUBECONFIG: '/k',
    });
    for (const s of SETTINGS.filter((s) => s.flag && !s.boolean)) {
      assert.deepEqual(parse([s.flag!, s.example]).env, { [s.env]: s.example }, s.flag);
    }
  });

  test('secrets have no flag (argv is visible to every process on the node)', () => {
    assert.throws(() => parse(['--auth-value', 'x']), /unknown option '--auth-value'/);
  });
});
