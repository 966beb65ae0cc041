// The chart's metrics parts with the real Helm: the METRICS_* settings in the ConfigMap, the PrometheusRule (checked
// against the prometheus-operator CRD schema, then by the real promtool: `check rules` and `test rules` with alert
// scenarios) and the Grafana dashboard ConfigMap (its PromQL checked by promtool, its metrics against the catalogue).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { METRICS, parseGroupingLabels, parseJobName, parsePushgatewayUrl } from '../../src/metrics/index.js';
import { CHART, HELM, helmWorkspace, runHelm } from '../support/helm.js';
import { REPO_ROOT } from '../support/paths.js';
import { promtool, requirePrometheusTools } from '../metrics/prometheus-tools.js';

type Obj = Record<string, any>;
const tools = requirePrometheusTools();
const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-metrics-chart-');
const BASE = ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces=default'];
const PUSH = ['--set', 'metrics.pushgateway.url=http://prometheus-pushgateway.monitoring:9091'];

function render(args: string[]): Obj[] {
  const r = runHelm(
    ['template', 'ephor-scanner', CHART, '--namespace', 'ephor', '--skip-tests', ...BASE, ...args],
    HELM_ENV,
  );
  assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

/** The one line Helm prints for a failed render, without its "Error: ... execution error at (...):" prefix. */
function renderError(args: string[]): string {
  const r = runHelm(['template', 'ephor-scanner', CHART, '--namespace', 'ephor', ...BASE, ...args], HELM_ENV);
  assert.notEqual(r.status, 0, `expected helm template ${args.join(' ')} to fail`);
  const first = r.stderr.trim().split('\n')[0] ?? '';
  return first.replace(/^Error: .*?execution error at \([^)]*\): /, '');
}

const find = (docs: Obj[], kind: string, name?: string) =>
  docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
const configData = (docs: Obj[]): Record<string, string> => find(docs, 'ConfigMap', 'ephor-scanner')[0]?.data ?? {};

let fileCount = 0;
function workFile(name: string, content: string): string {
  const file = path.join(WORK, `${++fileCount}-${name}`);
  writeFileSync(file, content);
  return file;
}

describe('metrics values: off by default', () => {
  test('no Pushgateway URL (so no metrics pushed), no PrometheusRule, no dashboard', () => {
    const docs = render([]);
    // The job name has a default like every other setting; without a URL the scanner pushes nothing.
    assert.deepEqual(
      Object.keys(configData(docs)).filter((k) => k.startsWith('METRICS_')),
      ['METRICS_PUSHGATEWAY_JOB'],
    );
    assert.deepEqual(find(docs, 'PrometheusRule'), []);
    assert.deepEqual(find(docs, 'ConfigMap', 'ephor-scanner-dashboard'), []);
  });
});

describe('helm lint', () => {
  test('passes --strict with every metrics option switched on', () => {
    const r = runHelm(
      [
        'lint',
        '--strict',
        CHART,
        ...BASE,
        ...PUSH,
        '--set',
        'metrics.pushgateway.groupingLabels.cluster=prod-eu',
        '--set',
        'metrics.prometheusRule.enabled=true',
        '--set',
        'metrics.grafanaDashboard.enabled=true',
      ],
      HELM_ENV,
    );
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});

describe('metrics.pushgateway → METRICS_* in the ConfigMap', () => {
  test('URL, job and grouping labels, in the form the scanner parses', () => {
    const data = configData(
      render([
        ...PUSH,
        '--set',
        'metrics.pushgateway.job=scanners',
        '--set',
        'metrics.pushgateway.groupingLabels.region=eu-west-1',
        '--set',
        'metrics.pushgateway.groupingLabels.cluster=prod-eu',
      ]),
    );
    assert.equal(data.METRICS_PUSHGATEWAY_URL, 'http://prometheus-pushgateway.monitoring:9091');
    assert.equal(data.METRICS_PUSHGATEWAY_JOB, 'scanners');
    assert.equal(data.METRICS_PUSHGATEWAY_GROUPING, 'cluster=prod-eu,region=eu-west-1');
    assert.equal(parsePushgatewayUrl(data.METRICS_PUSHGATEWAY_URL), data.METRICS_PUSHGATEWAY_URL);
    assert.equal(parseJobName(data.METRICS_PUSHGATEWAY_JOB), 'scanners');
    assert.deepEqual(parseGroupingLabels(data.METRICS_PUSHGATEWAY_GROUPING), {
      cluster: 'prod-eu',
      region: 'eu-west-1',
    });
  });

  test('the default job, and no grouping variable without grouping labels', () => {
    const data = configData(render(PUSH));
    assert.equal(data.METRICS_PUSHGATEWAY_JOB, 'ephor-scanner');
    assert.equal(data.METRICS_PUSHGATEWAY_GROUPING, undefined);
  });

  test('mistakes fail the install with a sentence naming the key', () => {
    const cases: Array<[string[], string]> = [
      [
        ['--set', 'metrics.pushgateway.url=pushgateway:9091'],
        'metrics.pushgateway.url must be an http:// or https:// URL without credentials, query or fragment, e.g. http://prometheus-pushgateway.monitoring:9091, not "pushgateway:9091"',
      ],
      [
        [...PUSH, '--set', 'metrics.pushgateway.job='],
        'metrics.pushgateway.job must not be empty: it is the job label of the pushed metrics (default ephor-scanner)',
      ],
      [
        [...PUSH, '--set', 'metrics.pushgateway.groupingLabels.namespace=x'],
        'metrics.pushgateway.groupingLabels: "namespace" is taken (the job has metrics.pushgateway.job; the scanner\'s metrics use namespace, severity, result, reason, version, trivy_version); choose another name, e.g. cluster',
      ],
      [
        [...PUSH, '--set', 'metrics.pushgateway.groupingLabels.my-cluster=x'],
        'metrics.pushgateway.groupingLabels: "my-cluster" is not a Prometheus label name (letters, digits and _, not starting with a digit or __)',
      ],
      [
        [...PUSH, '--set', 'metrics.pushgateway.groupingLabels.cluster=a\\,b'],
        'metrics.pushgateway.groupingLabels.cluster must be a non-empty value without commas, not "a,b"',
      ],
      [
        ['--set', 'metrics.prometheusRule.enabled=true'],
        'metrics.prometheusRule.enabled needs metrics.pushgateway.url: the alerts read the metrics the scanner pushes there',
      ],
      [
        [
          ...PUSH,
          '--set',
          'metrics.prometheusRule.enabled=true',
          '--set',
          'metrics.prometheusRule.staleAfter=13 hours',
        ],
        'metrics.prometheusRule.staleAfter must be a duration such as 13h, 1d12h or 90m (units s, m, h, d, w), not "13 hours"',
      ],
      [
        [...PUSH, '--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.dbMaxAge=0h'],
        'metrics.prometheusRule.dbMaxAge must be longer than 0, not "0h"',
      ],
    ];
    for (const [args, message] of cases) assert.equal(renderError(args), message, args.join(' '));
  });
});

function ruleDocs(extra: string[] = []): Obj {
  const docs = render([
    ...PUSH,
    '--set',
    'metrics.pushgateway.groupingLabels.cluster=prod-eu',
    '--set',
    'metrics.prometheusRule.enabled=true',
    ...extra,
  ]);
  const rules = find(docs, 'PrometheusRule');
  assert.equal(rules.length, 1);
  return rules[0] as Obj;
}

describe('PrometheusRule', () => {
  test('a valid prometheus-operator object with the release labels and the ruleSelector labels', () => {
    const rule = ruleDocs(['--set', 'metrics.prometheusRule.labels.release=kube-prometheus-stack']);
    assert.doesNotThrow(() => new PrometheusRule(rule as any).validate());
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(rule.metadata.name, 'ephor-scanner');
    assert.equal(rule.metadata.namespace, 'ephor');
    assert.equal(rule.metadata.labels.release, 'kube-prometheus-stack');
    assert.equal(rule.metadata.labels['app.kubernetes.io/instance'], 'ephor-scanner');
    assert.deepEqual(
      rule.spec.groups[0].rules.map((r: Obj) => r.alert),
      [
        'EphorScannerNoRecentSuccess',
        'EphorScannerNoSuccessReported',
        'EphorScannerRunFailing',
        'EphorScannerVulnerabilityDbStale',
      ],
    );
  });

  test('staleAfter and dbMaxAge are converted to seconds', () => {
    const rule = ruleDocs([
      '--set',
      'metrics.prometheusRule.staleAfter=1d12h',
      '--set',
      'metrics.prometheusRule.dbMaxAge=1w',
    ]);
    const rules = rule.spec.groups[0].rules as Obj[];
    assert.match(rules[0]?.expr, / > 129600$/);
    assert.equal(rules[1]?.for, '129600s');
    assert.match(rules[3]?.expr, / > 604800$/);
  });

  test('promtool check rules accepts the rule groups', () => {
    const file = workFile('rules.yaml', stringify({ groups: ruleDocs().spec.groups }));
    const r = promtool(tools.promtool, ['check', 'rules', file]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS: 4 rules found/);
  });

  test('promtool test rules: the alerts fire when they should and stay silent while runs succeed', () => {
    const rule = ruleDocs();
    const rulesFile = workFile('alerts.yaml', stringify({ groups: rule.spec.groups }));
    const testFile = workFile('alerts.test.yaml', stringify(alertTests(rule, rulesFile), { lineWidth: 0 }));
    const r = promtool(tools.promtool, ['test', 'rules', path.basename(testFile)], { cwd: WORK });
    assert.equal(r.status, 0, `${r.output}\n${testFile}`);
    assert.match(r.output, /SUCCESS/);
  });

  test('promtool test rules fails when an alert is expected but silent (the check can fail)', () => {
    const rule = ruleDocs();
    const rulesFile = workFile('alerts.yaml', stringify({ groups: rule.spec.groups }));
    const tests = alertTests(rule, rulesFile);
    // Claim the stale alert fires an hour before staleAfter has passed: promtool must reject that.
    const scenario = tests.tests[1]!;
    scenario.alert_rule_test = scenario.alert_rule_test.map((t) =>
      t.eval_time === '19h01m' ? { ...t, eval_time: '18h' } : t,
    );
    const testFile = workFile('alerts-wrong.test.yaml', stringify(tests, { lineWidth: 0 }));
    const r = promtool(tools.promtool, ['test', 'rules', path.basename(testFile)], { cwd: WORK });
    assert.equal(r.status, 1, r.output);
    assert.match(r.output, /alertname: EphorScannerNoRecentSuccess, time: 18h/);
  });
});

const HOUR = 3600;
const GROUP = 'job="ephor-scanner",cluster="prod-eu",instance=""';
// The Pushgateway's instance="" is no label at all to Prometheus.
const JOB_LABELS = { job: 'ephor-scanner', cluster: 'prod-eu' };

/** One sample a minute for `hours` hours, each the value of `at(hour)` (promtool's expanding notation per hour). */
function hourly(hours: number, at: (hour: number) => number): string {
  return Array.from({ length: hours }, (_, h) => `${at(h)}+0x59`).join(' ');
}

/** What Prometheus makes of an alert's annotations for these labels and value (the rule's own templates). */
function annotations(rule: Obj, index: number, value = ''): Record<string, string> {
  const raw = rule.spec.groups[0].rules[index].annotations as Record<string, string>;
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [
      k,
      v.replaceAll('{{ $labels.job }}', 'ephor-scanner').replaceAll('{{ $value }}', value),
    ]),
  );
}

/** The scenarios, with the CronJob's default schedule (every 6 hours) and staleAfter 13h. */
function alertTests(rule: Obj, rulesFile: string) {
  const lastSuccess = (everySixHours: (h: number) => boolean) =>
    hourly(50, (h) => {
      let last = 0;
      for (let run = 0; run <= h; run += 6) if (everySixHours(run)) last = run * HOUR;
      return last;
    });
  const stale = (at: string) => ({
    eval_time: at,
    alertname: 'EphorScannerNoRecentSuccess',
    exp_alerts: [{ exp_labels: { ...JOB_LABELS, severity: 'critical' }, exp_annotations: annotations(rule, 0) }],
  });
  const silent = (at: string, alertname: string) => ({ eval_time: at, alertname, exp_alerts: [] });
  return {
    rule_files: [path.basename(rulesFile)],
    evaluation_interval: '1m',
    tests: [
      {
        // Every run succeeds, the DB is rebuilt before each: nothing fires. Another cluster's stale scanner is not
        // this release's business.
        interval: '1m',
        input_series: [
          { series: `ephor_scanner_last_success_timestamp_seconds{${GROUP}}`, values: lastSuccess(() => true) },
          { series: `ephor_scanner_last_run_exit_code{${GROUP}}`, values: hourly(50, () => 0) },
          {
            series: `ephor_scanner_vulnerability_db_updated_timestamp_seconds{${GROUP}}`,
            values: hourly(50, (h) => Math.floor(h / 6) * 6 * HOUR),
          },
          {
            series: 'ephor_scanner_last_success_timestamp_seconds{job="ephor-scanner",cluster="other",instance=""}',
            values: hourly(50, () => 0),
          },
        ],
        alert_rule_test: ['13h30m', '25h', '47h'].flatMap((at) => [
          silent(at, 'EphorScannerNoRecentSuccess'),
          silent(at, 'EphorScannerNoSuccessReported'),
          silent(at, 'EphorScannerRunFailing'),
          silent(at, 'EphorScannerVulnerabilityDbStale'),
        ]),
      },
      {
        // Runs succeed at 0h and 6h, then fail at 12h and 18h: after two missed schedules (13h after the last
        // success, 19h) the stale alert fires; the failing-run alert from the first failure on.
        interval: '1m',
        input_series: [
          { series: `ephor_scanner_last_success_timestamp_seconds{${GROUP}}`, values: lastSuccess((run) => run < 12) },
          { series: `ephor_scanner_last_run_exit_code{${GROUP}}`, values: hourly(50, (h) => (h < 12 ? 0 : 1)) },
        ],
        alert_rule_test: [
          silent('17h', 'EphorScannerNoRecentSuccess'),
          silent('18h59m', 'EphorScannerNoRecentSuccess'),
          stale('19h01m'),
          stale('30h'),
          silent('11h59m', 'EphorScannerRunFailing'),
          {
            eval_time: '12h01m',
            alertname: 'EphorScannerRunFailing',
            exp_alerts: [
              { exp_labels: { ...JOB_LABELS, severity: 'warning' }, exp_annotations: annotations(rule, 2, '1') },
            ],
          },
        ],
      },
      {
        // Nothing ever reported for this release (only another cluster's metrics): the absent() rule fires once
        // that has lasted staleAfter; the timestamp rule has nothing to compare.
        interval: '1m',
        input_series: [
          {
            series: 'ephor_scanner_last_success_timestamp_seconds{job="ephor-scanner",cluster="other",instance=""}',
            values: hourly(20, (h) => h * HOUR),
          },
        ],
        alert_rule_test: [
          silent('12h50m', 'EphorScannerNoSuccessReported'),
          silent('13h05m', 'EphorScannerNoRecentSuccess'),
          {
            eval_time: '13h05m',
            alertname: 'EphorScannerNoSuccessReported',
            exp_alerts: [
              {
                exp_labels: { job: 'ephor-scanner', cluster: 'prod-eu', severity: 'critical' },
                exp_annotations: annotations(rule, 1),
              },
            ],
          },
        ],
      },
      {
        // Runs succeed but the DB is never updated (e.g. TRIVY_SKIP_DB_UPDATE with a mirror that stopped).
        interval: '1m',
        input_series: [
          { series: `ephor_scanner_last_success_timestamp_seconds{${GROUP}}`, values: lastSuccess(() => true) },
          { series: `ephor_scanner_vulnerability_db_updated_timestamp_seconds{${GROUP}}`, values: hourly(50, () => 0) },
        ],
        alert_rule_test: [
          silent('47h59m', 'EphorScannerVulnerabilityDbStale'),
          {
            eval_time: '48h01m',
            alertname: 'EphorScannerVulnerabilityDbStale',
            exp_alerts: [{ exp_labels: { ...JOB_LABELS, severity: 'warning' }, exp_annotations: annotations(rule, 3) }],
          },
        ],
      },
    ],
  };
}

describe('Grafana dashboard ConfigMap', () => {
  function dashboardConfigMap(extra: string[] = []): Obj {
    const docs = render([...PUSH, '--set', 'metrics.grafanaDashboard.enabled=true', ...extra]);
    const maps = find(docs, 'ConfigMap', 'ephor-scanner-dashboard');
    assert.equal(maps.length, 1);
    assert.doesNotThrow(() => new ConfigMap(maps[0]).validate());
    return maps[0] as Obj;
  }

  test("carries the sidecar's label by default; labels, annotations and namespace can be set", () => {
    const plain = dashboardConfigMap();
    assert.equal(plain.metadata.labels.grafana_dashboard, '1');
    assert.equal(plain.metadata.namespace, 'ephor');
    assert.equal(plain.metadata.annotations, undefined);
    const custom = dashboardConfigMap([
      '--set',
      'metrics.grafanaDashboard.labels.grafana_dashboard=null',
      '--set',
      'metrics.grafanaDashboard.labels.dashboards=security',
      '--set',
      'metrics.grafanaDashboard.annotations.grafana_folder=Security',
      '--set',
      'metrics.grafanaDashboard.namespace=monitoring',
    ]);
    assert.equal(custom.metadata.labels.grafana_dashboard, undefined);
    assert.equal(custom.metadata.labels.dashboards, 'security');
    assert.deepEqual(custom.metadata.annotations, { grafana_folder: 'Security' });
    assert.equal(custom.metadata.namespace, 'monitoring');
  });

  test('the dashboard queries only metrics the scanner pushes, in valid PromQL (promtool)', () => {
    const dashboard = JSON.parse(dashboardConfigMap().data['ephor-scanner.json']);
    assert.equal(dashboard.uid, 'ephor-scanner');
    const exprs: string[] = dashboard.panels.flatMap((p: Obj) => (p.targets as Obj[]).map((t) => t.expr as string));
    assert.ok(exprs.length >= 10);
    const known = new Set(Object.values(METRICS).map((m) => m.name));
    const used = new Set(exprs.flatMap((e) => e.match(/\bephor_scanner_[a-z_]+/g) ?? []));
    for (const name of used)
      assert.ok(known.has(name), `the dashboard queries ${name}, which the scanner does not push`);
    for (const name of ['ephor_scanner_findings', 'ephor_scanner_last_success_timestamp_seconds'])
      assert.ok(used.has(name));
    for (const panel of dashboard.panels as Obj[]) assert.equal(panel.datasource.uid, '${datasource}', panel.title);
    // Each query as a recording rule: promtool parses it (Grafana's $job variable replaced by a regex).
    const rules = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr: expr.replaceAll('$job', '.+') }));
    const file = workFile('dashboard-rules.yaml', stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = promtool(tools.promtool, ['check', 'rules', file]);
    assert.equal(r.status, 0, r.output);
  });
});

describe('README "Metrics" section', () => {
  test('its helm install command renders the PrometheusRule, the dashboard and the METRICS_* settings', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Metrics\n');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const blocks = [...section.matchAll(/^```bash\n([\s\S]*?)^```/gm)].map((m) => m[1] ?? '');
    assert.equal(blocks.length, 1);
    // helm install -> helm template (no cluster here).
    const script = ['set -euo pipefail', 'helm() { shift; "$HELM_BIN" template "$@"; }', blocks[0]].join('\n');
    const r = spawnSync('bash', ['-c', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...HELM_ENV, HELM_BIN: HELM },
    });
    assert.equal(r.status, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Obj | null)
      .filter((d): d is Obj => d !== null);
    assert.equal(find(docs, 'PrometheusRule')[0]?.metadata.labels.release, 'kube-prometheus-stack');
    assert.equal(find(docs, 'ConfigMap', 'ephor-scanner-dashboard').length, 1);
    assert.equal(configData(docs).METRICS_PUSHGATEWAY_GROUPING, 'cluster=prod-eu');
  });
});
