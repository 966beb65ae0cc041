// The chart's run lock settings (runLock.*), rendered by the real Helm: RUN_LOCK_WAIT computed from the Job's deadline
// when runLock.wait is empty, RUN_LOCK_NAMESPACE left to the scanner (the release namespace) unless set, and the
// chart refusing what the scanner would refuse, and no Lease Role when the lock is off.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';

type Obj = Record<string, any>;

const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-chart-lock-');
const REQUIRED = { ephor: { apiUrl: 'http://ephor-api:8080' }, scan: { namespaces: 'shop' } };

function template(values: Obj): { status: number | null; stdout: string; stderr: string } {
  const file = path.join(WORK, `values-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(values));
  return runHelm(['template', 'ephor-scanner', CHART, '-n', 'ephor', '--skip-tests', '-f', file], HELM_ENV);
}

function configMap(values: Obj): Record<string, string> {
  const r = template(values);
  assert.equal(r.status, 0, `helm template failed:\n${r.stderr}`);
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj | null);
  return docs.find((d) => d?.kind === 'ConfigMap')!.data as Record<string, string>;
}

const roleNames = (values: Obj): string[] => {
  const r = template(values);
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d) => d?.kind === 'Role' || d?.kind === 'RoleBinding')
    .map((d) => `${d!.kind as string}/${d!.metadata.name as string}`);
};

describe('chart: run lock', () => {
  test('runLock.mode=none: RUN_LOCK=none and no Lease Role (nothing to write then)', () => {
    assert.ok(roleNames(REQUIRED).includes('Role/ephor-scanner-run-lock'));
    const none = { ...REQUIRED, runLock: { mode: 'none' } };
    assert.equal(configMap(none).RUN_LOCK, 'none');
    assert.deepEqual(
      roleNames(none).filter((name) => name.endsWith('-run-lock')),
      [],
    );
  });

  test('a default install: the lease lock named ephor-scanner in the release namespace, waiting half of SCAN_DEADLINE', () => {
    const data = configMap(REQUIRED);
    assert.equal(data.RUN_LOCK, 'lease');
    assert.equal(data.RUN_LOCK_NAME, 'ephor-scanner');
    assert.ok(!('RUN_LOCK_NAMESPACE' in data), "unset: the scanner takes the Pod's own namespace, the release's");
    assert.equal(data.SCAN_DEADLINE, '3300s');
    assert.equal(data.RUN_LOCK_WAIT, '1650s');
    const config = loadConfig(data, { resolveExecutable: (name) => name, stdoutIsTerminal: false });
    assert.equal(config.lock.waitMs, 1_650_000);
    assert.deepEqual(config.warnings, [], 'the computed wait leaves time to scan: no warning');
  });

  test('RUN_LOCK_WAIT follows activeDeadlineSeconds and scan.deadlineMargin, or is runLock.wait when set', () => {
    const longer = configMap({
      ...REQUIRED,
      activeDeadlineSeconds: 7200,
      scan: { namespaces: 'shop', deadlineMargin: 600 },
    });
    assert.equal(longer.RUN_LOCK_WAIT, '3300s');
    assert.equal(configMap({ ...REQUIRED, runLock: { wait: '10m' } }).RUN_LOCK_WAIT, '10m');
    assert.equal(configMap({ ...REQUIRED, runLock: { wait: 0 } }).RUN_LOCK_WAIT, '0');
    const noDeadline = configMap({ ...REQUIRED, activeDeadlineSeconds: null });
    assert.ok(!('RUN_LOCK_WAIT' in noDeadline), "no Job deadline: the scanner's own default");
  });

  test('runLock.namespace and runLock.name set the Lease; RUN_LOCK=none turns it off', () => {
    const data = configMap({ ...REQUIRED, runLock: { mode: 'none', name: 'shared.lock', namespace: 'platform' } });
    assert.deepEqual([data.RUN_LOCK, data.RUN_LOCK_NAME, data.RUN_LOCK_NAMESPACE], ['none', 'shared.lock', 'platform']);
  });

  test('the chart refuses what the scanner would refuse, naming the key', () => {
    const refused: Array<[Record<string, string>, RegExp]> = [
      [{ mode: 'redis' }, /runLock\.mode.*"lease", "none"/],
      [{ name: 'Ephor_Scanner' }, /runLock\.name must be a Lease name/],
      [{ namespace: 'a.b' }, /runLock\.namespace must be a namespace name/],
      [{ wait: '-5' }, /runLock\.wait must be whole seconds \(300\) or a duration/],
    ];
    for (const [runLock, message] of refused) {
      const r = template({ ...REQUIRED, runLock });
      assert.notEqual(r.status, 0, `runLock ${JSON.stringify(runLock)} was accepted`);
      assert.match(r.stderr, message);
    }
    assert.equal(template({ ...REQUIRED, runLock: { wait: '0' } }).status, 0, 'RUN_LOCK_WAIT=0 gives up at once');
  });
});
