// What Trivy sees of the scanner's surroundings (src/trivy/environment.ts): only allow-listed TRIVY_* variables, and
// an empty working directory, so that nothing can hide findings from the report (Ephor would mark them resolved).
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SETTINGS } from '../../src/config/settings.js';
import {
  ALLOWED_TRIVY_VARIABLES,
  trivyEnvironment,
  trivyWorkingDirectory,
  withheldTrivyVariables,
} from '../../src/trivy/environment.js';
import { runTrivy } from '../../src/trivy/process.js';

/** The variables issue 13 names as removing findings from a report. */
const FILTERS = [
  'TRIVY_IGNORE_UNFIXED',
  'TRIVY_IGNOREFILE',
  'TRIVY_IGNORE_POLICY',
  'TRIVY_IGNORE_STATUS',
  'TRIVY_VEX',
  'TRIVY_PKG_TYPES',
  'TRIVY_SKIP_DIRS',
  'TRIVY_SKIP_FILES',
  'TRIVY_SCANNERS',
  'TRIVY_SEVERITY',
];

describe('Trivy environment', () => {
  test('non-TRIVY variables and allow-listed TRIVY_* variables pass; settings, filters and unknown TRIVY_* do not', () => {
    const env = {
      PATH: '/usr/bin',
      HTTPS_PROXY: 'http://proxy:3128',
      NO_PROXY: '.svc',
      SSL_CERT_FILE: '/etc/ssl/ca.pem',
      TRIVY_INSECURE: 'true',
      TRIVY_CACERT: '/etc/ssl/ca.pem',
      TRIVY_DB_REPOSITORY: 'registry.internal/trivy-db:2',
      TRIVY_IGNORE_UNFIXED: 'true',
      TRIVY_CONFIG: '/etc/trivy.yaml',
      TRIVY_USERNAME: 'robot',
      TRIVY_PASSWORD: 'pw',
      TRIVY_SOMETHING_NEW: 'x',
      TRIVY_CACHE_DIR: '/cache',
      TRIVY_TIMEOUT: '300',
      EPHOR_AUTH_VALUE: 'Bearer secret',
      UNSET: undefined,
    };
    assert.deepEqual(trivyEnvironment(env), {
      PATH: '/usr/bin',
      HTTPS_PROXY: 'http://proxy:3128',
      NO_PROXY: '.svc',
      SSL_CERT_FILE: '/etc/ssl/ca.pem',
      TRIVY_INSECURE: 'true',
      TRIVY_CACERT: '/etc/ssl/ca.pem',
      TRIVY_DB_REPOSITORY: 'registry.internal/trivy-db:2',
    });
  });

  test('every filter named in the issue, TRIVY_CONFIG and the registry credentials are withheld, each with its reason', () => {
    const names = [...FILTERS, 'TRIVY_CONFIG', 'TRIVY_USERNAME', 'TRIVY_PASSWORD', 'TRIVY_REGISTRY_TOKEN'];
    const env = Object.fromEntries(names.map((name) => [name, 'value']));
    assert.deepEqual(trivyEnvironment(env), {});
    const withheld = new Map(withheldTrivyVariables(env).map((w) => [w.name, w.reason]));
    assert.deepEqual([...withheld.keys()], [...names].sort());
    for (const name of FILTERS) assert.match(withheld.get(name)!, /Ephor would mark each finding it hides as resolved/);
    assert.match(withheld.get('TRIVY_SEVERITY')!, /SCAN_SEVERITY/);
    assert.match(withheld.get('TRIVY_CONFIG')!, /configuration file/);
    assert.match(withheld.get('TRIVY_PASSWORD')!, /every registry.*pull secrets/);
    assert.match(withheldTrivyVariables({ TRIVY_FUTURE_FILTER: 'x' })[0]!.reason, /only the TRIVY_\* variables known/);
  });

  test("the scanner's own settings are withheld without a warning; unset variables and allowed ones get none", () => {
    const settings = Object.fromEntries(SETTINGS.map((s) => [s.env, 'value']));
    assert.deepEqual(trivyEnvironment(settings), {});
    assert.deepEqual(withheldTrivyVariables(settings), []);
    const allowed = Object.fromEntries([...ALLOWED_TRIVY_VARIABLES.keys()].map((name) => [name, 'value']));
    assert.deepEqual(withheldTrivyVariables({ ...allowed, TRIVY_IGNORE_UNFIXED: undefined }), []);
    assert.deepEqual(trivyEnvironment(allowed), allowed);
  });

  test('the allow-list names no setting of the scanner and no variable that changes findings, output or credentials', () => {
    const settings = new Set(SETTINGS.map((s) => s.env));
    for (const name of ALLOWED_TRIVY_VARIABLES.keys()) {
      assert.match(name, /^TRIVY_[A-Z_]+$/);
      assert.ok(!settings.has(name), `${name} is a scanner setting`);
    }
    for (const name of [...FILTERS, 'TRIVY_EXIT_CODE', 'TRIVY_FORMAT', 'TRIVY_OUTPUT', 'TRIVY_TOKEN', 'TRIVY_SERVER'])
      assert.ok(!ALLOWED_TRIVY_VARIABLES.has(name), name);
  });
});

describe("Trivy's working directory", () => {
  test('is an empty directory that no one may write to, the same one for every process', () => {
    const dir = trivyWorkingDirectory();
    assert.equal(path.dirname(dir), os.tmpdir());
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(statSync(dir).mode & 0o777, 0o500);
    assert.equal(trivyWorkingDirectory(), dir);
    if (process.getuid?.() !== 0) assert.throws(() => writeFileSync(path.join(dir, '.trivyignore'), 'CVE-1\n'));
  });

  test('a directory removed meanwhile is made again', () => {
    const first = trivyWorkingDirectory();
    rmdirSync(first);
    const second = trivyWorkingDirectory();
    assert.notEqual(second, first);
    assert.ok(existsSync(second));
  });

  test('when it cannot be made, Trivy is not started and the outcome says why', async () => {
    rmdirSync(trivyWorkingDirectory());
    const tmpdir = process.env.TMPDIR;
    process.env.TMPDIR = '/proc/no-such-dir';
    try {
      const outcome = await runTrivy({ binary: '/bin/true', args: [], env: {}, timeoutMs: 10_000 });
      assert.equal(outcome.exitCode, null);
      assert.equal(outcome.startedAt, undefined);
      assert.match(outcome.spawnError ?? '', /^its empty working directory cannot be created in \/proc\/no-such-dir: /);
    } finally {
      if (tmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdir;
    }
  });

  test("Trivy runs in it, whatever the scanner's own directory holds, and gets only the allowed environment", async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'trivy-cwd-test-'));
    const cwd = process.cwd();
    try {
      writeFileSync(path.join(work, '.trivyignore'), 'CVE-2019-18224\n');
      writeFileSync(path.join(work, 'trivy.yaml'), 'severity: [CRITICAL]\n');
      const trivy = path.join(work, 'trivy.sh');
      writeFileSync(trivy, '#!/bin/sh\necho "cwd=$(pwd)" >&2\nls -A >&2\nenv >&2\n');
      chmodSync(trivy, 0o755);
      process.chdir(work);
      const outcome = await runTrivy({
        binary: trivy,
        args: [],
        env: { PATH: process.env.PATH, TRIVY_IGNORE_UNFIXED: 'true', TRIVY_INSECURE: 'true' },
        extraEnv: { DOCKER_CONFIG: '/tmp/docker-1' },
        timeoutMs: 10_000,
      });
      assert.equal(outcome.exitCode, 0, outcome.stderr);
      const lines = outcome.stderr.trim().split('\n');
      assert.equal(lines[0], `cwd=${trivyWorkingDirectory()}`);
      assert.ok(!lines.some((l) => l === '.trivyignore' || l === 'trivy.yaml'), 'the directory is empty');
      assert.ok(lines.includes('TRIVY_INSECURE=true'));
      assert.ok(lines.includes('DOCKER_CONFIG=/tmp/docker-1'), 'variables the scanner sets itself still pass');
      assert.ok(!lines.some((l) => l.startsWith('TRIVY_IGNORE_UNFIXED=')));
    } finally {
      process.chdir(cwd);
      rmSync(work, { recursive: true, force: true });
    }
  });
});
