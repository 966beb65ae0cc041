// The Helm chart against the settings table (src/config/settings.ts), rendered by the real Helm: every setting the
// table binds to a value is set from that value (ConfigMap, or Secret for what the table marks so), the chart sets no
// scanner variable the table does not know, values.yaml has the table's defaults, the values reference names each
// variable at its value, and what the chart renders is a configuration the scanner accepts.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { SETTINGS, settingOf } from '../../src/config/settings.js';
import { CHART_BOUND, chartDefaultEnv, exampleValues } from '../support/chart-settings.js';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';

type Obj = Record<string, any>;
type Source = 'configmap' | 'secret' | 'secretKeyRef' | 'env';

const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-chart-settings-');
/** Variables the chart sets that are not the scanner's: Trivy's own names of the DB mirrors, and the pod's paths. */
const NOT_SETTINGS = new Set(['TRIVY_DB_REPOSITORY', 'TRIVY_JAVA_DB_REPOSITORY', 'TMPDIR', 'HOME']);

function render(values: Obj, extra: string[] = []): Obj[] {
  const file = path.join(WORK, `values-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(values));
  const r = runHelm(
    ['template', 'ephor-scanner', CHART, '-n', 'ephor', '--skip-tests', '-f', file, ...extra],
    HELM_ENV,
  );
  assert.equal(r.status, 0, `helm template failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

/** The scanner container's environment as the kubelet builds it (envFrom, then env), with where each came from. */
function containerEnv(docs: Obj[]): Map<string, { value?: string; from: Source }> {
  const byName = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);
  const cronJob = docs.find((d) => d.kind === 'CronJob')!;
  const container = cronJob.spec.jobTemplate.spec.template.spec.containers[0] as Obj;
  const env = new Map<string, { value?: string; from: Source }>();
  for (const source of (container.envFrom ?? []) as Obj[]) {
    if (source.configMapRef) {
      for (const [k, v] of Object.entries(byName('ConfigMap', source.configMapRef.name)!.data as Obj))
        env.set(k, { value: v as string, from: 'configmap' });
    } else {
      for (const [k, v] of Object.entries(byName('Secret', source.secretRef.name)!.stringData as Obj))
        env.set(k, { value: v as string, from: 'secret' });
    }
  }
  for (const e of (container.env ?? []) as Obj[])
    env.set(e.name, e.valueFrom?.secretKeyRef ? { from: 'secretKeyRef' } : { value: e.value, from: 'env' });
  return env;
}

const values = (docs: Obj[]) => Object.fromEntries([...containerEnv(docs)].map(([name, { value }]) => [name, value]));

/** The scanner's own check of a rendered environment (Trivy is not installed here, so any name resolves). */
function scannerAccepts(env: Record<string, string | undefined>): void {
  assert.doesNotThrow(() => loadConfig(env, { resolveExecutable: (name) => name, stdoutIsTerminal: false }));
}

describe('chart ↔ settings table', () => {
  const examples = exampleValues();
  const docs = render(examples);
  const env = containerEnv(docs);

  test('the table binds settings to chart values, among them the ones check used to get wrong', () => {
    assert.ok(CHART_BOUND.length >= 25);
    assert.equal(settingOf('EPHOR_MAX_PAYLOAD_BYTES')?.chart?.value, 'ephor.maxPayloadBytes');
  });

  test('every bound setting is set from its value: the example put there comes out unchanged', () => {
    const problems: string[] = [];
    for (const s of CHART_BOUND) {
      const got = env.get(s.env);
      const where = s.chart!.inSecret ? 'secret' : 'configmap';
      if (got?.value !== s.example) problems.push(`${s.env}: ${s.chart!.value}=${s.example} gave ${got?.value}`);
      else if (got.from !== where) problems.push(`${s.env} comes from the ${got.from}, not the ${where}`);
    }
    assert.deepEqual(problems, []);
  });

  test('the chart sets no scanner variable the table does not bind to a value', () => {
    const bound = new Set(SETTINGS.filter((s) => s.chart).map((s) => s.env));
    const unbound = [...env.keys()].filter((name) => !bound.has(name) && !NOT_SETTINGS.has(name));
    assert.deepEqual(unbound, [], 'add these to the settings table with their chart value, or remove them');
  });

  test('secrets never land in the ConfigMap', () => {
    const configMap = docs.find((d) => d.kind === 'ConfigMap')!.data as Obj;
    for (const s of SETTINGS.filter((setting) => setting.secret)) assert.ok(!(s.env in configMap), s.env);
  });

  test('SCAN_DEADLINE is computed from activeDeadlineSeconds and scan.deadlineMargin, as its hint says', () => {
    const deadline = settingOf('SCAN_DEADLINE')!;
    assert.equal(deadline.chart?.computed, true);
    assert.equal(env.get('SCAN_DEADLINE')?.value, '3300s');
    const other = values(
      render({ ...examples, activeDeadlineSeconds: 4000, scan: { ...(examples.scan as Obj), deadlineMargin: 600 } }),
    );
    assert.equal(other.SCAN_DEADLINE, '3400s');
  });

  test('EPHOR_AUTH_VALUE may also come from ephor.existingSecret, as its hint says', () => {
    assert.match(settingOf('EPHOR_AUTH_VALUE')!.chart!.hint!, /ephor\.existingSecret/);
    const ephor = { ...(examples.ephor as Obj), authValue: '', existingSecret: 'ephor-auth' };
    assert.equal(containerEnv(render({ ...examples, ephor })).get('EPHOR_AUTH_VALUE')?.from, 'secretKeyRef');
  });

  test('what the chart renders, from every example and from the defaults, is a configuration the scanner accepts', () => {
    scannerAccepts(values(docs));
    const install = render({ ephor: { apiUrl: 'http://ephor-api:8080' }, scan: { namespaces: 'default' } });
    scannerAccepts(values(install));
  });

  test("a default install sets exactly the table's chart defaults (plus what the install and the chart compute)", () => {
    const install = render({
      ephor: { apiUrl: 'http://ephor-api:8080' },
      scan: { namespaces: ['default', 'production'] },
    });
    assert.deepEqual(values(install), {
      ...chartDefaultEnv(),
      EPHOR_API_URL: 'http://ephor-api:8080',
      SCAN_NAMESPACES: 'default,production',
      SCAN_DEADLINE: '3300s',
      RUN_LOCK_WAIT: '1650s',
      // half of cache.size (5Gi): server mode keeps its layer cache on the volume
      TRIVY_SCAN_CACHE_MAX_SIZE: String((5 * 1024 ** 3) / 2),
      TMPDIR: '/tmp',
      HOME: '/tmp',
    });
  });
});

describe('values.yaml and the values reference against the table', () => {
  const chartValues = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as Obj;
  const valueAt = (key: string): unknown =>
    key.split('.').reduce<unknown>((node, k) => (node as Obj | undefined)?.[k], chartValues);
  /** A values.yaml default as the text the chart renders: lists joined, empty = unset. */
  const asText = (value: unknown): string | undefined => {
    const text = Array.isArray(value) ? value.join(',') : String(value);
    return text === '' ? undefined : text;
  };

  test("every bound value's default in values.yaml is the scanner's default, or the chart default the table names", () => {
    const problems: string[] = [];
    for (const s of CHART_BOUND) {
      const expected = s.chart!.default ?? s.default;
      const actual = asText(valueAt(s.chart!.value));
      if (actual !== expected) problems.push(`${s.chart!.value}: values.yaml ${actual}, table ${expected} (${s.env})`);
    }
    assert.deepEqual(problems, []);
  });

  test('the chart README names each bound variable on its value row ("→ `VAR`"), and on no other', () => {
    const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const m of readme.matchAll(/^\| `([^`]+)` \| `[^`]*` \|(.*)\|$/gm)) rows.set(m[1]!, m[2]!);
    const problems: string[] = [];
    for (const s of SETTINGS.filter((setting) => setting.chart)) {
      const row = rows.get(s.chart!.value);
      if (!row) problems.push(`no row for ${s.chart!.value}`);
      else if (!row.includes(`→ \`${s.env}\``)) problems.push(`row ${s.chart!.value} lacks "→ \`${s.env}\`"`);
    }
    for (const [key, row] of rows) {
      for (const [, name] of row.matchAll(/→ `(\w+)`/g)) {
        const setting = settingOf(name!);
        if (setting && setting.chart?.value !== key)
          problems.push(`row ${key} names ${name}, which the table binds to ${setting.chart?.value ?? 'no value'}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
