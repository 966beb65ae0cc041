// The chart's values for SCAN_OTHER_CONTROLLERS*: the exclusion list as a list or a comma string, and an empty list
// rendered as "none" (an empty variable would mean the scanner's default list, not an empty one).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { formatOwnerKind } from '../../src/kube/owner-kinds.js';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';

const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-chart-other-controllers-');

function configMap(scan: Record<string, unknown>): Record<string, string> {
  const file = path.join(WORK, `values-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify({ ephor: { apiUrl: 'http://ephor-api:8080' }, scan: { namespaces: 'shop', ...scan } }));
  const r = runHelm(['template', 'ephor-scanner', CHART, '-n', 'ephor', '--skip-tests', '-f', file], HELM_ENV);
  assert.equal(r.status, 0, r.stderr);
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind?: string; data?: Record<string, string> });
  return docs.find((d) => d.kind === 'ConfigMap')!.data!;
}

const excludeOf = (data: Record<string, string>) =>
  loadConfig(data, { resolveExecutable: (name) => name, stdoutIsTerminal: false }).scan.otherControllers;

test('an empty exclusion list renders as "none", which the scanner reads as no exclusion', () => {
  const data = configMap({ otherControllers: { enabled: true, exclude: [] } });
  assert.equal(data.SCAN_OTHER_CONTROLLERS_EXCLUDE, 'none');
  assert.deepEqual(excludeOf(data), { enabled: true, exclude: [] });
});

test('a list or a comma string, and the switch', () => {
  const list = configMap({ otherControllers: { enabled: false, exclude: ['Workflow.argoproj.io', 'Pod'] } });
  assert.equal(list.SCAN_OTHER_CONTROLLERS, 'false');
  assert.equal(list.SCAN_OTHER_CONTROLLERS_EXCLUDE, 'Workflow.argoproj.io,Pod');
  const text = configMap({ otherControllers: { exclude: 'TaskRun.tekton.dev, Pod' } });
  assert.deepEqual(excludeOf(text).exclude.map(formatOwnerKind), ['TaskRun.tekton.dev', 'Pod']);
});

test('a resource name with a version is refused with a sentence naming the key and the form', () => {
  const file = path.join(WORK, 'bad.yaml');
  writeFileSync(
    file,
    stringify({
      ephor: { apiUrl: 'http://ephor-api:8080' },
      scan: { namespaces: 'shop', otherControllers: { exclude: ['workflows.argoproj.io/v1alpha1'] } },
    }),
  );
  const r = runHelm(['template', 'ephor-scanner', CHART, '-n', 'ephor', '--skip-tests', '-f', file], HELM_ENV);
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /scan\.otherControllers\.exclude: "workflows\.argoproj\.io\/v1alpha1" is not an owner kind: write Kind\.group, e\.g\. Workflow\.argoproj\.io/,
  );
});
