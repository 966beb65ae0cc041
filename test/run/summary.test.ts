// The run's summary in-process: containers and findings are counted as delivered (a namespace that was not delivered
// counts none, in its row as "-", in the TOTAL row, in the record and in the metrics input), and lists RBAC refused
// are marked in the table and carried in the record with their missing rule.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { metricsInputFromSummary } from '../../src/metrics/index.js';
import { summaryTable, type RunSummary } from '../../src/run/summary.js';
import { SEVERITIES, type DiscoveryError } from '../../src/types.js';
import { FakeEphor, runInProcess, workload, type FakeImage, type InProcessRun } from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const DEBIAN = 'trivy-v0.69.3_debian-buster_os-pkgs.json';
const WORKLOADS = [
  workload('shop', 'web', [
    { name: 'app', image: 'alpine:3.10' },
    { name: 'broken', image: 'registry.local/missing:1' },
  ]),
  workload('blog', 'web', [{ name: 'app', image: 'debian:buster' }]),
];
const IMAGES: Record<string, FakeImage> = {
  'docker.io/library/alpine:3.10': { report: ALPINE },
  'docker.io/library/debian:buster': { report: DEBIAN },
  'registry.local/missing:1': { fail: 'not_found', detail: 'MANIFEST_UNKNOWN: manifest unknown' },
};
const USER = 'system:serviceaccount:ephor:ephor-scanner';
const CRONJOBS_RULE = `allow verb "list" on resource "cronjobs" (apiGroup "batch") in namespace "shop" for ${USER}`;
const PODS_RULE = `allow verb "list" on resource "pods" (apiGroup "") in namespace "blog" for ${USER}`;
const FORBIDDEN: DiscoveryError[] = [
  { namespace: 'shop', kind: 'CronJob', status: 403, reason: 'Forbidden', message: '…', missingRule: CRONJOBS_RULE },
  { namespace: 'blog', kind: 'Pod', status: 403, reason: 'Forbidden', message: '…', missingRule: PODS_RULE },
  // Not a permission gap: no rule is missing.
  { namespace: 'blog', kind: 'DaemonSet', status: 500, reason: 'InternalError', message: 'etcd timed out' },
];

type SummaryLine = Record<string, unknown> & { per_namespace: Array<Record<string, unknown>> };

function completed(run: InProcessRun): SummaryLine {
  const [line] = run.log.withMsg('ephor-scanner completed');
  assert.ok(line, 'the summary line');
  return line as unknown as SummaryLine;
}

/** The table's rows as cells (cells never hold two spaces in a row; columns are joined by at least two). */
function rows(table: string): string[][] {
  const lines = table.split('\n');
  return lines.slice(0, lines.indexOf('')).map((line) => line.split(/ {2,}/));
}

/** Each severity column summed over the namespace rows, "-" counting nothing. */
function columnSums(cells: string[][], from: number): number[] {
  return SEVERITIES.map((_, i) =>
    cells.reduce((total, row) => total + (row[from + i] === '-' ? 0 : Number(row[from + i])), 0),
  );
}

describe('the TOTAL row sums what the rows show: findings delivered', () => {
  test('a namespace not delivered shows "-" and counts nothing, in the table, the record and the metrics', async () => {
    const ephor = new FakeEphor();
    ephor.answer = (post) => (post.namespace === 'blog' ? { status: 500, error: 'HTTP 500' } : 'accept');
    const run = await runInProcess({
      namespaces: ['shop', 'blog'],
      workloads: WORKLOADS,
      images: IMAGES,
      ephor,
      env: { LOG_FORMAT: 'text' },
    });
    assert.equal(run.summary.exitCode, 1);
    const blogFound = run.summary.namespaces.find((n) => n.namespace === 'blog')!.stats.findings;
    const shopFound = run.summary.namespaces.find((n) => n.namespace === 'shop')!.stats.findings;
    assert.ok(
      SEVERITIES.some((s) => blogFound[s] > 0),
      'blog found something it did not deliver',
    );

    const record = completed(run);
    const table = rows(record.table as string);
    assert.deepEqual(table[0]!.slice(0, 5), ['NAMESPACE', 'RESULT', 'WORKLOADS', 'CONTAINERS', 'NOT SCANNED']);
    const [shop, blog, total] = table.slice(1);
    assert.deepEqual(shop!.slice(0, 5), ['shop', 'delivered', '1', '1', '1']);
    assert.deepEqual(blog, ['blog', 'NOT DELIVERED', '1', '-', '0', '-', '-', '-', '-', '-']);
    assert.deepEqual(total!.slice(0, 5), ['TOTAL', '1/2', '2', '1', '1']);
    assert.deepEqual(total!.slice(5).map(Number), columnSums([shop!, blog], 5), 'TOTAL is the sum of the rows');
    assert.deepEqual(
      total!.slice(5).map(Number),
      SEVERITIES.map((s) => shopFound[s]),
    );
    assert.match(
      record.table as string,
      /^CONTAINERS and findings: delivered by this run \("-": namespace not delivered\); TOTAL sums the rows\.$/m,
    );

    // The record: the same figures.
    assert.deepEqual(record.findings, shopFound);
    // by_platform counts what was delivered, as `delivered` does (the fakes scan without --platform: `unknown`).
    assert.deepEqual(record.containers, { delivered: 1, not_delivered: 1, by_platform: { unknown: 1 } });
    // per_namespace is in the record of JSON logs (text logs carry the table instead).
    const json = await runInProcess({ namespaces: ['shop', 'blog'], workloads: WORKLOADS, images: IMAGES, ephor });
    const perNamespace = completed(json).per_namespace;
    const blogEntry = perNamespace.find((n) => n.namespace === 'blog')!;
    assert.deepEqual(blogEntry.findings, { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
    assert.deepEqual(blogEntry.findings_not_delivered, blogFound);
    assert.equal(blogEntry.containers_delivered, 0);
    assert.deepEqual(perNamespace.find((n) => n.namespace === 'shop')!.findings, shopFound);
    assert.equal(perNamespace.find((n) => n.namespace === 'shop')!.findings_not_delivered, undefined);

    // The metrics: the same figures again.
    const input = metricsInputFromSummary(run.summary, { startedAt: run.context.startedAt, scannerVersion: 'x' });
    assert.deepEqual(input.findings, [{ namespace: 'shop', bySeverity: shopFound }]);
    assert.deepEqual(input.containers, { delivered: 1, notDelivered: 1 });
  });

  test('the table alone: a row not delivered never adds to TOTAL, a delivered row always does', () => {
    const stats = (n: number) => ({
      workloads: 1,
      containersDelivered: n,
      containersNotDelivered: 0,
      findings: { CRITICAL: n, HIGH: 2 * n, MEDIUM: 0, LOW: 0, UNKNOWN: 1 },
    });
    const summary: RunSummary = {
      exitCode: 1,
      durationMs: 1000,
      interrupted: false,
      discoveryErrors: 0,
      namespaces: [
        { namespace: 'a', delivered: true, status: 'completed', stats: stats(3) },
        { namespace: 'b', delivered: false, status: 'completed', stats: stats(7), spooled: true },
        { namespace: 'c', delivered: true, status: 'failed', stats: stats(0) },
      ],
      images: { total: 0, scanned: 0, failed: 0, failedByReason: {} },
    };
    const table = rows(summaryTable(summary));
    assert.deepEqual(
      table.map((r) => r.join('|')),
      [
        'NAMESPACE|RESULT|WORKLOADS|CONTAINERS|NOT SCANNED|CRITICAL|HIGH|MEDIUM|LOW|UNKNOWN',
        'a|delivered|1|3|0|3|6|0|0|1',
        'b|NOT DELIVERED|1|-|0|-|-|-|-|-',
        'c|sent as failed|1|0|0|0|0|0|0|1',
        'TOTAL|2/3|3|3|0|3|6|0|0|2',
      ],
    );
  });
});

describe('permission gaps', () => {
  test('a partly forbidden namespace is delivered (exit 0), marked in the table with its rule, and carried in the record', async () => {
    const discovery = { errors: FORBIDDEN };
    const text = await runInProcess({
      namespaces: ['shop', 'blog'],
      workloads: WORKLOADS,
      images: IMAGES,
      discovery,
      env: { LOG_FORMAT: 'text' },
    });
    assert.equal(text.summary.exitCode, 0);
    const table = completed(text).table as string;
    assert.deepEqual(
      rows(table).map((r) => r.slice(0, 2).join('|')),
      ['NAMESPACE|RESULT', 'shop|delivered*', 'blog|delivered*', 'TOTAL|2/2'],
    );
    const footnote = table.slice(table.indexOf('* partly forbidden'));
    assert.equal(
      footnote.split('\n\n')[0],
      [
        '* partly forbidden: RBAC refused these lists, and the run went on without them:',
        '  the scanner may not list cronjobs in namespace "shop": its CronJobs are not scanned',
        `    fix: ${CRONJOBS_RULE}`,
        '  the scanner may not list pods in namespace "blog": images are scanned by the tags in the workload specs, not by the digests that run',
        `    fix: ${PODS_RULE}`,
      ].join('\n'),
    );

    const json = await runInProcess({ namespaces: ['shop', 'blog'], workloads: WORKLOADS, images: IMAGES, discovery });
    assert.equal(json.summary.exitCode, 0);
    const record = completed(json);
    assert.deepEqual(record.forbidden, [
      { namespace: 'shop', list: 'cronjobs', missing_rbac: CRONJOBS_RULE },
      { namespace: 'blog', list: 'pods', missing_rbac: PODS_RULE },
    ]);
    assert.deepEqual(
      record.per_namespace.map((n) => [n.namespace, n.forbidden]),
      [
        ['shop', [{ list: 'cronjobs', missing_rbac: CRONJOBS_RULE }]],
        ['blog', [{ list: 'pods', missing_rbac: PODS_RULE }]],
      ],
    );
  });

  test('without a refused list: no mark, no footnote, no field', async () => {
    const run = await runInProcess({
      namespaces: ['shop', 'blog'],
      workloads: WORKLOADS,
      images: IMAGES,
      discovery: { errors: [FORBIDDEN[2]!] },
      env: { LOG_FORMAT: 'text' },
    });
    const record = completed(run);
    assert.doesNotMatch(record.table as string, /\*|forbidden/);
    assert.equal(record.forbidden, undefined);
  });
});
