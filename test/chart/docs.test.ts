// Keeps the chart's documentation and packaging honest: the values table matches values.yaml, every
// documented `helm install` and values snippet renders, and the Dockerfile/chart versions match the interface.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/paths.js';
import { CHART, HELM, helmWorkspace, requireHelm } from '../support/helm.js';

const README = path.join(REPO_ROOT, 'README.md');
const { work: WORK, env: ENV } = helmWorkspace('ephor-docs-test-');

const read = (...p: string[]): string => readFileSync(path.join(REPO_ROOT, ...p), 'utf8');

/** values.yaml as `key -> JSON default`: nested maps are walked, lists and empty maps are leaves. */
function valueLeaves(values: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const [k, v] of Object.entries(values as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) valueLeaves(v, key, out);
    else out.set(key, JSON.stringify(v));
  }
  return out;
}

function codeBlocks(markdown: string, lang: string): string[] {
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm');
  return [...markdown.matchAll(re)].map((m) => m[1] ?? '');
}

describe('values reference table', () => {
  test('lists every key of values.yaml with its default, and nothing else', () => {
    const expected = valueLeaves(parse(read('deploy', 'helm', 'ephor-scanner', 'values.yaml')));
    const readme = read('deploy', 'helm', 'ephor-scanner', 'README.md');
    const block = readme.split('<!-- values-table:start -->')[1]?.split('<!-- values-table:end -->')[0];
    assert.ok(block, 'README.md lacks the <!-- values-table:start/end --> markers');
    const rows = new Map<string, string>();
    for (const line of block.split('\n')) {
      const m = /^\| `([^`]+)` \| `([^`]*)` \|(.*)\|$/.exec(line);
      if (!m) continue;
      assert.ok(!rows.has(m[1] as string), `duplicate row ${m[1]}`);
      rows.set(m[1] as string, m[2] as string);
    }
    const problems: string[] = [];
    for (const [key, def] of expected) {
      if (!rows.has(key)) problems.push(`missing row:    | \`${key}\` | \`${def}\` | <description> |`);
      else if (rows.get(key) !== def)
        problems.push(`wrong default:  | \`${key}\` | \`${def}\` | (table says \`${rows.get(key)}\`)`);
    }
    for (const key of rows.keys()) if (!expected.has(key)) problems.push(`not in values.yaml: ${key}`);
    assert.deepEqual(problems, [], `deploy/helm/ephor-scanner/README.md is out of date:\n${problems.join('\n')}`);
    assert.deepEqual([...rows.keys()], [...expected.keys()], 'rows are not in values.yaml order');
  });

  test('every documented value has a schema entry', () => {
    const schema = JSON.parse(read('deploy', 'helm', 'ephor-scanner', 'values.schema.json')) as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    const values = parse(read('deploy', 'helm', 'ephor-scanner', 'values.yaml')) as Record<string, unknown>;
    for (const [top, v] of Object.entries(values)) {
      const s = schema.properties[top];
      assert.ok(s, `values.schema.json has no entry for ${top}`);
      if (s.properties && v && typeof v === 'object' && !Array.isArray(v)) {
        for (const k of Object.keys(v)) assert.ok(k in s.properties, `values.schema.json has no entry for ${top}.${k}`);
      }
    }
  });
});

/** The README's "## Install on Kubernetes" section, up to the next level-2 heading. */
function installSection(): string {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf('## Install on Kubernetes\n');
  assert.ok(start >= 0, 'README.md has an "## Install on Kubernetes" section');
  const next = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, next < 0 ? undefined : next + 1);
}

describe('install documentation (README section)', () => {
  const doc = installSection();

  test("is a README section with the issue's commands", () => {
    assert.match(doc, /^## Install on Kubernetes\n/);
    assert.ok(doc.includes("--set ephor.apiUrl=http://ephor-api:8080 --set 'scan.namespaces={default,production}'"));
    assert.ok(doc.includes("--set scan.namespaces='default\\,production'"));
    assert.ok(doc.includes('kubectl get cronjobs -n ephor'));
    assert.ok(doc.includes('kubectl create job --from=cronjob/ephor-scanner ephor-scanner-manual -n ephor'));
    assert.ok(doc.includes('kubectl logs -f job/ephor-scanner-manual -n ephor'));
    for (const heading of [
      'Authentication',
      'Air-gapped',
      'Persistent cache',
      'RBAC',
      'Run a scan now',
      'Upgrading from the Go scanner',
    ]) {
      assert.match(doc, new RegExp(`^### .*${heading}`, 'm'), `section ${heading}`);
    }
  });

  test('every helm install command in it renders', () => {
    requireHelm();
    const log = path.join(WORK, 'helm-calls.log');
    const blocks = codeBlocks(doc, 'bash');
    assert.ok(blocks.length >= 4);
    for (const block of blocks) {
      // helm install -> helm template (no cluster here); other helm and kubectl commands are not run.
      const script = [
        'set -euo pipefail',
        'helm() { local sub=$1; shift; case "$sub" in install) echo "$*" >>"$CALL_LOG"; "$HELM_BIN" template "$@" >/dev/null ;; *) : ;; esac; }',
        'kubectl() { :; }',
        block,
      ].join('\n');
      const r = spawnSync('bash', ['-c', script], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...ENV, HELM_BIN: HELM, CALL_LOG: log },
      });
      assert.equal(r.status, 0, `this documented block fails:\n${block}\n${r.stderr}`);
    }
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    assert.ok(calls.length >= 6, `expected the documented installs to run, got ${calls.length}`);
  });

  test('every yaml snippet in it is a valid values file', () => {
    requireHelm();
    const blocks = codeBlocks(doc, 'yaml');
    assert.ok(blocks.length >= 4);
    blocks.forEach((block, i) => {
      const file = path.join(WORK, `snippet-${i}.yaml`);
      writeFileSync(file, block);
      const r = spawnSync(
        HELM,
        [
          'template',
          'ephor-scanner',
          CHART,
          '-n',
          'ephor',
          '--set',
          'ephor.apiUrl=http://ephor-api:8080',
          '--set',
          'scan.namespaces=default',
          '-f',
          file,
        ],
        { encoding: 'utf8', timeout: 30_000, env: ENV },
      );
      assert.equal(r.status, 0, `this documented values snippet fails:\n${block}\n${r.stderr}`);
    });
  });
});

describe('packaging', () => {
  test('Chart.yaml: version 0.1.0, appVersion = package.json version', () => {
    const chart = parse(read('deploy', 'helm', 'ephor-scanner', 'Chart.yaml')) as Record<string, unknown>;
    const pkg = JSON.parse(read('package.json')) as { version: string };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'ephor-scanner');
    assert.equal(chart.version, '0.1.0');
    assert.equal(chart.appVersion, pkg.version);
  });

  // The Trivy and Node pins (version, checksums, digest) are checked by test/release/dockerfile.test.ts.
  test('Dockerfile: Node 22, uid 10001, the agreed ENTRYPOINT', () => {
    const df = read('Dockerfile');
    assert.match(df, /^ARG NODE_IMAGE=node:22\.[0-9.]+-alpine/m);
    assert.match(df, /^COPY --from=trivy \/usr\/local\/bin\/trivy \/usr\/local\/bin\/trivy$/m);
    // The bundle and the Trivy launcher it forks must sit side by side (src/trivy/launcher/client.ts finds it there).
    assert.match(df, /^COPY --from=build \/src\/dist\/ephor-scanner\.mjs \/src\/dist\/trivy-launcher\.mjs \/app\/$/m);
    assert.match(df, /^USER 10001:10001$/m);
    assert.match(df, /^ENTRYPOINT \["node", "\/app\/ephor-scanner\.mjs"\]$/m);
    assert.doesNotMatch(df, /^CMD /m, 'no arguments: one scan run configured by environment variables');
  });

  test('.dockerignore admits exactly what the Dockerfile copies from the build context', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'allow-list: everything else (node_modules, .git, .cache, dist) stays out');
    const allowed = ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
    const sources = [...read('Dockerfile').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      (m[1] ?? '').split(/\s+/),
    );
    assert.ok(sources.length > 0);
    for (const s of sources) {
      const p = s.replace(/\/$/, '');
      assert.ok(
        allowed.some((a) => p === a || p.startsWith(`${a}/`)),
        `${s} is excluded by .dockerignore`,
      );
    }
  });
});
