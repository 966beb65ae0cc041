// The preflight's configuration group: the same validation as a run (variables, Trivy, kubeconfig and context),
// "valid" only without a problem, and fixes that name the chart value the settings table binds, never a hard-coded one.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkConfiguration } from '../../src/check/config.js';
import { chartValue } from '../../src/check/hints.js';
import { SETTINGS } from '../../src/config/settings.js';
import { REPO_ROOT } from '../support/paths.js';

let dir = '';
let env: Record<string, string | undefined> = {};

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-check-config-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]',
      'users: [{name: u, user: {}}]',
      'contexts: [{name: one, context: {cluster: c, user: u}}, {name: two, context: {cluster: c, user: u}}]',
      'current-context: one',
    ].join('\n'),
  );
  // TRIVY_BINARY: this very Node, an executable that exists wherever the tests run.
  env = {
    PATH: '/usr/bin:/bin',
    HOME: dir,
    KUBECONFIG: kubeconfig,
    EPHOR_API_URL: 'http://ephor-api:8080',
    SCAN_NAMESPACES: 'shop',
    TRIVY_BINARY: process.execPath,
  };
});
after(() => rm(dir, { recursive: true, force: true }));

const lines = (results: ReturnType<typeof checkConfiguration>['results']) =>
  results.map((r) => `${r.status} ${r.message}`);

describe('the configuration group', () => {
  test('valid: one pass line, the kubeconfig loaded for the other groups', () => {
    const checked = checkConfiguration(env);
    assert.deepEqual(lines(checked.results), [
      'pass valid: scans namespaces shop (Deployment, StatefulSet, DaemonSet, CronJob)',
    ]);
    assert.equal(checked.kube?.source, `kubeconfig ${env.KUBECONFIG}`);
    assert.equal(checked.trivyMissing, false);
  });

  test('the context chosen by KUBE_CONTEXT is used; an unknown one fails here, naming the contexts', () => {
    assert.equal(
      checkConfiguration({ ...env, KUBE_CONTEXT: 'two' }).kube?.source,
      `kubeconfig ${env.KUBECONFIG}, context two`,
    );
    const unknown = checkConfiguration({ ...env, KUBE_CONTEXT: 'three' });
    assert.deepEqual(lines(unknown.results), [
      `fail kubeconfig ${env.KUBECONFIG} has no context "three" (KUBE_CONTEXT, --context); its contexts: one, two`,
    ]);
    assert.equal(unknown.results[0]!.configuration, true);
  });

  test('a context without a kubeconfig to take it from: a failure saying so; ~/.kube/config is one', async () => {
    const bare = { ...env, KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBE_CONTEXT: 'two' };
    assert.deepEqual(lines(checkConfiguration(bare).results), [
      'fail KUBE_CONTEXT="two" names a kubeconfig context, but there is no kubeconfig: KUBECONFIG is not set and ~/.kube/config does not exist (the in-cluster service account has no contexts)',
    ]);
    await mkdir(path.join(dir, '.kube'));
    await copyFile(env.KUBECONFIG!, path.join(dir, '.kube', 'config'));
    assert.equal(checkConfiguration(bare).kube?.source, `kubeconfig ${path.join(dir, '.kube', 'config')}, context two`);
  });

  test('Trivy missing: a failure with the run\'s message, no "valid", and a configuration for the other groups', () => {
    const checked = checkConfiguration({ ...env, TRIVY_BINARY: 'trivy', PATH: '/nonexistent-bin' });
    assert.deepEqual(lines(checked.results), [
      'fail TRIVY_BINARY="trivy" was not found on PATH (/nonexistent-bin); install Trivy or set TRIVY_BINARY to its path',
    ]);
    assert.equal(checked.trivyMissing, true);
    assert.equal(checked.config?.trivy.binary, 'trivy');
  });

  test('every problem at once: variables and the kubeconfig, never with a pass line', () => {
    const checked = checkConfiguration({ ...env, SCAN_CONCURRENCY: '0', KUBECONFIG: path.join(dir, 'missing') });
    assert.deepEqual(lines(checked.results), [
      'fail SCAN_CONCURRENCY="0" must be an integer from 1 to 64',
      `fail KUBECONFIG=${path.join(dir, 'missing')}: no such file`,
    ]);
    assert.equal(checked.config, undefined);
    assert.ok(checked.results.every((r) => r.configuration === true));
  });

  test('warnings come with a pass line, not instead of it', () => {
    const checked = checkConfiguration({ ...env, TRIVY_CACHE_MODE: 'shared', SCAN_CONCURRENCY: '4' });
    assert.deepEqual(
      checked.results.map((r) => r.status),
      ['pass', 'warn'],
    );
    assert.equal(
      checked.results[1]!.fix,
      'set SCAN_CONCURRENCY=1 (chart: scan.concurrency), or TRIVY_CACHE_MODE=ephemeral to scan in parallel',
    );
  });
});

describe('fixes name the chart value from the settings table', () => {
  test('EPHOR_MAX_PAYLOAD_BYTES: ephor.maxPayloadBytes (the chart sets it), not extraEnv', () => {
    const [result] = checkConfiguration({ ...env, EPHOR_MAX_PAYLOAD_BYTES: '1' }).results;
    assert.equal(
      result!.fix,
      'correct EPHOR_MAX_PAYLOAD_BYTES (chart: ephor.maxPayloadBytes); "ephor-scanner --help" lists what every variable allows',
    );
  });

  test('every setting: its binding, or extraEnv when the chart does not set it', () => {
    for (const s of SETTINGS)
      assert.equal(chartValue(s.env), s.chart ? (s.chart.hint ?? s.chart.value) : 'extraEnv', s.env);
    assert.equal(chartValue('EPHOR_DRY_RUN'), 'extraEnv');
  });

  test('no check source spells out the chart value of a setting by hand', async () => {
    const bound = new Set(SETTINGS.flatMap((s) => (s.chart ? [s.chart.value] : [])));
    const folder = path.join(REPO_ROOT, 'src', 'check');
    const handWritten: string[] = [];
    for (const file of await readdir(folder)) {
      const text = await readFile(path.join(folder, file), 'utf8');
      for (const [, value] of text.matchAll(/\(chart: ([\w.]+)/g))
        if (bound.has(value!)) handWritten.push(`${file}: (chart: ${value}`);
    }
    assert.deepEqual(handWritten, [], 'use chartValue(VARIABLE) or inChart(VARIABLE) from src/check/hints.ts');
  });
});
