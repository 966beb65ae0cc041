// Permission gaps are visible (issue 13 item 6): with cronjobs forbidden in one namespace, the built CLI still
// delivers it (exit 0), marks it in the summary table with the missing rule, carries the rule in the JSON summary,
// and `check` names the same namespace with the same sentence and rule.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cronJob, deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, startStandIns, type StandIns } from '../support/harness.js';

const USER = 'system:serviceaccount:ephor:ephor-scanner';
const RULE = `allow verb "list" on resource "cronjobs" (apiGroup "batch") in namespace "payments" for ${USER}`;
const SENTENCE = 'the scanner may not list cronjobs in namespace "payments": its CronJobs are not scanned';

const objects = ['shop', 'payments'].flatMap((namespace) => [
  deployment({ namespace, name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] }),
  cronJob({ namespace, name: 'report', containers: [{ name: 'report', image: 'alpine:3.10' }] }),
]);

interface CheckJson {
  checks: Array<{ group: string; status: string; message: string; fix?: string }>;
}

describe('cronjobs forbidden in one namespace', { timeout: 180_000 }, () => {
  let standIns: StandIns;
  let env: Record<string, string>;

  before(async () => {
    standIns = await startStandIns({
      cluster: { objects, faults: [{ resource: 'cronjobs', namespace: 'payments', status: 403 }] },
      trivy: { defaultImage: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' } },
    });
    env = { ...standIns.env, SCAN_NAMESPACES: 'shop,payments' };
  });
  after(async () => {
    await standIns.close();
  });

  test('the run delivers it (exit 0) and its JSON summary carries the forbidden list with the missing rule', async () => {
    const run = await runScanner(env);
    assert.equal(run.exitCode, 0, run.stdout);
    const [summary] = logsWith(run, 'ephor-scanner completed');
    assert.deepEqual(summary!.forbidden, [{ namespace: 'payments', list: 'cronjobs', missing_rbac: RULE }]);
    const perNamespace = summary!.per_namespace as Array<Record<string, unknown>>;
    assert.deepEqual(
      perNamespace.map((n) => [n.namespace, n.delivered, n.status, n.forbidden]),
      [
        ['shop', true, 'completed', undefined],
        ['payments', true, 'completed', [{ list: 'cronjobs', missing_rbac: RULE }]],
      ],
    );
    // The log line of the refused list states the same rule.
    const [refused] = logsWith(run, 'discovery forbidden by RBAC');
    assert.equal(refused!.missing_rbac, RULE);
  });

  test('the text summary table marks it, with check’s sentence and the rule', async () => {
    const run = await runScanner({ ...env, LOG_FORMAT: 'text' });
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(run.stdout, /^shop +delivered +2 /m);
    assert.match(run.stdout, /^payments +delivered\* +1 /m);
    const lines = run.stdout.split('\n');
    const note = lines.indexOf('* partly forbidden: RBAC refused these lists, and the run went on without them:');
    assert.ok(note > 0, run.stdout);
    assert.deepEqual(lines.slice(note + 1, note + 3), [`  ${SENTENCE}`, `    fix: ${RULE}`]);
  });

  test('check names the partly forbidden namespace, in the same words', async () => {
    const run = await runScanner(env, { args: ['check', '--output', 'json'], timeoutMs: 60_000 });
    const report = JSON.parse(run.stdout) as CheckJson;
    const rbac = report.checks.filter((c) => c.group === 'rbac');
    assert.deepEqual(
      rbac.map((c) => [c.status, c.message, c.fix]),
      [
        ['pass', 'cluster-wide the scanner may list nodes', undefined],
        [
          'pass',
          'in namespace "shop" the scanner may list deployments, statefulsets, daemonsets, cronjobs, pods, replicasets, jobs and get secrets, serviceaccounts',
          undefined,
        ],
        [
          'pass',
          'in namespace "payments" (partly forbidden: see below) the scanner may list deployments, statefulsets, daemonsets, pods, replicasets, jobs and get secrets, serviceaccounts',
          undefined,
        ],
        ['fail', SENTENCE, RULE],
      ],
    );
  });
});
