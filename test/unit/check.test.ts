// The preflight's pure parts: which access reviews a configuration raises, how answers become lines, exit codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exitCodeOf, formatJson, formatText } from '../../src/check/output.js';
import { describe as describeAnswers, questionsFor } from '../../src/check/rbac.js';
import { fail, pass, warn } from '../../src/check/types.js';
import { loadConfig } from '../../src/config/index.js';

const config = (env: Record<string, string>) =>
  loadConfig(
    { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'shop', ...env },
    { resolveExecutable: () => '/usr/local/bin/trivy' },
  );
const asked = (env: Record<string, string>) =>
  questionsFor(config(env)).map((q) => `${q.severity} ${q.verb} ${q.group}/${q.resource} ${q.namespace || '*'}`);

test('the reviews follow the configuration: kinds, Pod, registry auth, namespaces for * and a selector', () => {
  assert.deepEqual(asked({ SCAN_WORKLOAD_TYPES: 'Deployment' }), [
    'warn list /nodes *',
    'fail list apps/deployments shop',
    'warn list /pods shop',
    'warn list apps/replicasets shop',
    'warn list batch/jobs shop',
    'warn get /secrets shop',
    'warn get /serviceaccounts shop',
  ]);
  assert.deepEqual(asked({ SCAN_WORKLOAD_TYPES: 'CronJob,Pod', REGISTRY_AUTH_ENABLED: 'false' }), [
    'warn list /nodes *',
    'fail list batch/cronjobs shop',
    'fail list /pods shop',
    'warn list apps/replicasets shop',
    'warn list batch/jobs shop',
  ]);
  const all = asked({ SCAN_NAMESPACES: '*', SCAN_WORKLOAD_TYPES: 'StatefulSet', REGISTRY_AUTH_ENABLED: 'false' });
  assert.deepEqual(all.slice(0, 3), ['fail list /namespaces *', 'warn list /nodes *', 'fail list apps/statefulsets *']);
  assert.equal(asked({ SCAN_NAMESPACE_SELECTOR: 'team=payments' })[0], 'fail list /namespaces *');
});

test('answers become one pass line per namespace and one line per denial with the rule', () => {
  const questions = questionsFor(
    config({ SCAN_NAMESPACES: 'shop,payments', SCAN_WORKLOAD_TYPES: 'Deployment', REGISTRY_AUTH_ENABLED: 'false' }),
  );
  const answers = questions.map((question) => ({
    question,
    allowed: !(question.namespace === 'payments' && question.resource !== 'pods'),
  }));
  const lines = describeAnswers(answers, 'system:serviceaccount:ephor:scanner');
  assert.deepEqual(
    lines.map((l) => `${l.status} ${l.message}`),
    [
      'pass cluster-wide the scanner may list nodes',
      'pass in namespace "shop" the scanner may list deployments, pods, replicasets, jobs',
      'pass in namespace "payments" (partly forbidden: see below) the scanner may list pods',
      'fail the scanner may not list deployments in namespace "payments": its Deployments are not scanned',
      'warn the scanner may not list replicasets in namespace "payments": running Pods are matched to their Deployments by name only',
      'warn the scanner may not list jobs in namespace "payments": running Pods are matched to their CronJobs by name only',
    ],
  );
  assert.equal(
    lines[3]!.fix,
    'allow verb "list" on resource "deployments" (apiGroup "apps") in namespace "payments" for system:serviceaccount:ephor:scanner',
  );
});

test("a namespace is partly forbidden when a list discovery makes is refused and another allowed, in the run summary's words", () => {
  const questions = questionsFor(
    config({ SCAN_NAMESPACES: 'shop,blog,locked', SCAN_WORKLOAD_TYPES: 'Deployment,CronJob' }),
  );
  const answers = questions.map((question) => ({
    question,
    allowed: !(
      (question.namespace === 'shop' && question.resource === 'cronjobs') ||
      (question.namespace === 'blog' && ['replicasets', 'secrets'].includes(question.resource)) ||
      (question.namespace === 'locked' && question.verb === 'list')
    ),
  }));
  const lines = describeAnswers(answers, 'system:serviceaccount:ephor:scanner').map((l) => `${l.status} ${l.message}`);
  assert.deepEqual(
    lines.filter((l) => l.startsWith('pass')),
    [
      // cluster-scoped: never "partly forbidden", whatever the namespaces
      'pass cluster-wide the scanner may list nodes',
      'pass in namespace "shop" (partly forbidden: see below) the scanner may list deployments, pods, replicasets, jobs and get secrets, serviceaccounts',
      // replicasets and secrets only cost attribution and pull secrets: discovery records no gap for them
      'pass in namespace "blog" the scanner may list deployments, cronjobs, pods, jobs and get serviceaccounts',
      // nothing listed at all: forbidden, not partly
      'pass in namespace "locked" the scanner may get secrets, serviceaccounts',
    ],
  );
  assert.ok(lines.includes('fail the scanner may not list cronjobs in namespace "shop": its CronJobs are not scanned'));
});

test('nodes (cluster-scoped): a warning of their own, cluster-wide, even when every namespace is checked at once', () => {
  const questions = questionsFor(config({ SCAN_NAMESPACES: '*', SCAN_WORKLOAD_TYPES: 'Deployment' }));
  const nodesDenied = questions.map((question) => ({ question, allowed: question.resource !== 'nodes' }));
  const lines = describeAnswers(nodesDenied, 'system:serviceaccount:ephor:scanner');
  assert.deepEqual(
    lines.map((l) => `${l.status} ${l.message}`),
    [
      'pass cluster-wide the scanner may list namespaces',
      'pass in every namespace the scanner may list deployments, pods, replicasets, jobs and get secrets, serviceaccounts',
      "warn the scanner may not list nodes cluster-wide: images are scanned without --platform: a multi-platform image is scanned as Trivy's default linux/amd64 variant, whatever node runs it",
    ],
  );
  assert.equal(
    lines[2]!.fix,
    'allow verb "list" on resource "nodes" (apiGroup "") cluster-wide for system:serviceaccount:ephor:scanner',
  );
  const allowed = describeAnswers(
    questions.map((question) => ({ question, allowed: true })),
    'u',
  );
  assert.equal(allowed[0]!.message, 'cluster-wide the scanner may list namespaces, nodes');
});

test('exit codes and output: 0 with warnings, 1 with a blocker, 2 for the configuration; JSON carries fixes only where due', () => {
  const ok = [pass('ephor', 'ready'), warn('trivy', 'old DB', 'refresh it')];
  assert.equal(exitCodeOf(ok), 0);
  assert.equal(exitCodeOf([...ok, fail('rbac', 'denied', 'allow it')]), 1);
  assert.equal(
    exitCodeOf([
      ...ok,
      { ...fail('configuration', 'bad', 'fix it'), configuration: true },
      fail('rbac', 'denied', 'allow it'),
    ]),
    2,
  );
  assert.equal(
    formatText(ok, '9.9.9'),
    'ephor-scanner 9.9.9 preflight check\n✓ ephor: ready\n! trivy: old DB\n    fix: refresh it\n✓ ready to scan (1 warning: the scan runs, with less)\n',
  );
  const json = JSON.parse(formatJson([...ok, fail('rbac', 'denied', 'allow it')], '9.9.9'));
  assert.deepEqual(json, {
    version: '9.9.9',
    result: 'fail',
    exit_code: 1,
    summary: { pass: 1, warn: 1, fail: 1 },
    checks: [
      { group: 'ephor', status: 'pass', message: 'ready' },
      { group: 'trivy', status: 'warn', message: 'old DB', fix: 'refresh it' },
      { group: 'rbac', status: 'fail', message: 'denied', fix: 'allow it' },
    ],
  });
});
