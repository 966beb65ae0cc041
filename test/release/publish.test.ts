// What the release workflow publishes is what the chart installs by default and what the README tells users to
// install and verify. The release gate (.github/scripts/release-check.sh) runs here with the real Helm binary.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CLI_BUNDLE, REPO_ROOT } from '../support/paths.js';
import { CHART, HELM, helmWorkspace, requireHelm } from '../support/helm.js';

const read = (...p: string[]): string => readFileSync(path.join(REPO_ROOT, ...p), 'utf8');
const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-release-test-');

const wf = parse(read('.github', 'workflows', 'release.yml'));
const values = parse(read('deploy', 'helm', 'ephor-scanner', 'values.yaml'));
const chart = parse(read('deploy', 'helm', 'ephor-scanner', 'Chart.yaml'));
const pkg = JSON.parse(read('package.json')) as { version: string };
const IMAGE: string = wf.env.IMAGE;
const CHART_REF = `${String(wf.env.CHART_REPOSITORY).replace(/^oci:\/\//, '')}/${String(chart.name)}`;

const step = (job: string, id: string): any => wf.jobs[job].steps.find((s: any) => s.id === id);

/** Runs release-check.sh from the repository (or from a copy at `root`). */
function releaseCheck(tag: string, image = IMAGE, root = REPO_ROOT): { status: number | null; out: string } {
  requireHelm();
  const outputFile = path.join(WORK, 'github-output');
  writeFileSync(outputFile, '');
  const r = spawnSync('bash', [path.join(root, '.github', 'scripts', 'release-check.sh'), tag], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...HELM_ENV, HELM, IMAGE: image, GITHUB_OUTPUT: outputFile },
  });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout + r.stderr + readFileSync(outputFile, 'utf8') };
}

describe('the release publishes what the chart installs', () => {
  test('one version: package.json, Chart.yaml version and appVersion', () => {
    assert.equal(chart.version, pkg.version, 'Chart.yaml version = package.json version');
    assert.equal(chart.appVersion, pkg.version, 'Chart.yaml appVersion = package.json version');
  });

  test("the workflow pushes the chart's default image, tagged with the tag's version", () => {
    assert.deepEqual(wf.on.push.tags, ['v*.*.*']);
    assert.equal(IMAGE, values.image.repository, 'workflow env.IMAGE = values.yaml image.repository');
    assert.equal(values.image.tag, '', 'image.tag empty: the chart then installs its appVersion');
    const push = step('image', 'push');
    assert.equal(push.with.tags, '${{ env.IMAGE }}:${{ env.VERSION }}');
    assert.equal(push.with.platforms, 'linux/amd64,linux/arm64');
    assert.equal(push.with.push, true);
    assert.equal(wf.jobs.image.env.VERSION, '${{ needs.check.outputs.version }}');
    assert.equal(wf.jobs.chart.env.VERSION, '${{ needs.check.outputs.version }}');
    assert.equal(wf.jobs.check.outputs.version, '${{ steps.check.outputs.version }}');
    const check = step('check', 'check');
    assert.equal(check.env.TAG, '${{ github.ref_name }}');
    assert.equal(check.run, 'bash .github/scripts/release-check.sh "$TAG"');
    assert.deepEqual(wf.jobs.image.needs, 'check');
    assert.deepEqual(wf.jobs.chart.needs, ['check', 'image'], 'the chart is published only after its image');
  });

  test('the workflow pushes the chart to oci://ghcr.io/ephor-scanner/charts', () => {
    assert.equal(wf.env.CHART_REPOSITORY, 'oci://ghcr.io/ephor-scanner/charts');
    assert.equal(wf.env.CHART_DIR, 'deploy/helm/ephor-scanner');
    assert.equal(chart.name, 'ephor-scanner');
  });

  test('release-check passes for the tag of the current version and hands the version on', () => {
    const r = releaseCheck(`v${pkg.version}`);
    assert.equal(r.status, 0, r.out);
    assert.equal(r.out, `version=${pkg.version}\nversion=${pkg.version}\n`);
  });

  test('release-check refuses a tag whose version differs from package.json and Chart.yaml', () => {
    const r = releaseCheck('v99.0.0');
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /tag v99\.0\.0 names version 99\.0\.0, but package\.json version is /);
    assert.match(r.out, /Chart\.yaml version is .*Chart\.yaml appVersion is /);
  });

  test('release-check refuses a tag that is not a version', () => {
    for (const tag of ['latest', '0.1.0', 'v1.2', 'v01.2.3']) {
      const r = releaseCheck(tag);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, new RegExp(`tag '${tag}' is not a version tag`));
    }
  });

  test('release-check refuses when the chart would install another image than the one published', () => {
    const r = releaseCheck(`v${pkg.version}`, 'ghcr.io/someone-else/ephor-scanner');
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /the chart installs ghcr\.io\/ephor-scanner\/ephor-scanner:\S+ by default, but this release/);

    // A copy of what the gate reads, with a chart whose default tag is pinned to something else.
    const root = path.join(WORK, 'copy');
    mkdirSync(path.join(root, '.github'), { recursive: true });
    cpSync(path.join(REPO_ROOT, '.github', 'scripts'), path.join(root, '.github', 'scripts'), { recursive: true });
    cpSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
    const copied = path.join(root, 'deploy', 'helm', 'ephor-scanner');
    cpSync(CHART, copied, { recursive: true });
    const valuesFile = path.join(copied, 'values.yaml');
    const edited = readFileSync(valuesFile, 'utf8').replace(/^ {2}tag: ""$/m, '  tag: "0.0.9"');
    assert.match(edited, /tag: "0\.0\.9"/);
    writeFileSync(valuesFile, edited);
    const pinned = releaseCheck(`v${pkg.version}`, IMAGE, root);
    assert.equal(pinned.status, 1, pinned.out);
    assert.match(pinned.out, new RegExp(`installs ${IMAGE}:0\\.0\\.9 by default, but this release publishes`));
  });
});

/** The README's "## Install on Kubernetes" section. */
function installSection(): string {
  const readme = read('README.md');
  const start = readme.indexOf('## Install on Kubernetes\n');
  assert.ok(start >= 0);
  const next = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, next < 0 ? undefined : next + 1);
}

/** The ```sh blocks: the commands against the published chart and image (the ```bash blocks, which use the chart
 * folder, are rendered by test/chart/docs.test.ts). */
const shBlocks = (): string[] => [...installSection().matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1] ?? '');

describe('README: install from the published chart and verify it', () => {
  test('the OCI install command names the published chart and this version, and renders', () => {
    requireHelm();
    const block = shBlocks().find((b) => b.includes('helm install'));
    assert.ok(block, 'a ```sh block with helm install oci://...');
    assert.ok(block.includes(`helm install ephor-scanner oci://${CHART_REF} --version ${String(chart.version)} `));
    // What the release pushes: `helm package` of the chart folder. The documented command runs against that package
    // (helm install -> helm template: there is no cluster and no registry here).
    const packaged = path.join(WORK, 'package');
    const pack = spawnSync(HELM, ['package', CHART, '--destination', packaged], { encoding: 'utf8', env: HELM_ENV });
    assert.equal(pack.status, 0, pack.stderr);
    const tgz = path.join(packaged, `ephor-scanner-${String(chart.version)}.tgz`);
    const log = path.join(WORK, 'oci-calls.log');
    const script = [
      'set -euo pipefail',
      'helm() { local sub=$1; shift; [ "$sub" = install ] || return 1; local a=(); for x in "$@"; do',
      '  if [ "$x" = "oci://$CHART_REF" ]; then a+=("$TGZ"); else a+=("$x"); fi; done',
      '  echo "$*" >>"$CALL_LOG"; "$HELM_BIN" template "${a[@]}" >/dev/null; }',
      block,
    ].join('\n');
    const r = spawnSync('bash', ['-c', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...HELM_ENV, HELM_BIN: HELM, CHART_REF, TGZ: tgz, CALL_LOG: log },
    });
    assert.equal(r.status, 0, `the documented OCI install fails:\n${block}\n${r.stderr}`);
    assert.match(readFileSync(log, 'utf8'), new RegExp(`^ephor-scanner oci://${CHART_REF} --version `));
  });

  test('the cosign commands verify the published image and chart against the release workflow identity', () => {
    const source = /org\.opencontainers\.image\.source="https:\/\/github\.com\/([^"]+)"/.exec(read('Dockerfile'));
    assert.ok(source, 'the Dockerfile labels the image with its source repository');
    const repo = source[1]!;
    const identity = (r: string, file: string, ref: string): string => `https://github.com/${r}/${file}@${ref}`;
    const ours = identity(repo, '.github/workflows/release.yml', `refs/tags/v${pkg.version}`);
    const notOurs = [
      identity(`someone/${repo.split('/')[1]!}`, '.github/workflows/release.yml', `refs/tags/v${pkg.version}`),
      identity(repo, '.github/workflows/ci.yml', `refs/tags/v${pkg.version}`),
      identity(repo, '.github/workflows/release.yml', 'refs/heads/main'),
    ];
    const commands = shBlocks()
      .join('\n')
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((l) => l.startsWith('cosign verify '));
    const refs = commands.map((c) => c.split(' ')[2]);
    assert.deepEqual(refs.sort(), [`${CHART_REF}:${String(chart.version)}`, `${IMAGE}:${pkg.version}`].sort());
    for (const c of commands) {
      assert.match(c, / --certificate-oidc-issuer https:\/\/token\.actions\.githubusercontent\.com( |$)/);
      const re = / --certificate-identity-regexp '([^']+)'/.exec(c);
      assert.ok(re, c);
      const pattern = new RegExp(re[1]!);
      assert.ok(pattern.test(ours), `${re[1]!} must accept ${ours}`);
      for (const other of notOurs) assert.ok(!pattern.test(other), `${re[1]!} must refuse ${other}`);
    }
    // The workflow checks its own signatures with the identity a user's regexp must accept.
    for (const job of ['image', 'chart']) {
      const signing = wf.jobs[job].steps.find((s: any) => /cosign sign /.test(s.run ?? ''));
      assert.equal(signing.env.IDENTITY, '${{ github.server_url }}/${{ github.workflow_ref }}', job);
      assert.match(signing.run, /cosign verify "[^"]+" --certificate-identity "\$IDENTITY"/, job);
    }
  });
});

describe('smoke-image.sh (the image check before the push), with a stand-in docker', () => {
  const bin = path.join(WORK, 'docker-bin');
  mkdirSync(bin, { recursive: true });
  // `docker buildx build` is logged; `docker run IMAGE --version` answers as the built bundle does (node
  // dist/ephor-scanner.mjs --version) unless SCANNER_SAYS is set; the trivy entrypoint answers TRIVY_SAYS.
  writeFileSync(
    path.join(bin, 'docker'),
    [
      '#!/bin/bash',
      'echo "$*" >>"$DOCKER_LOG"',
      '[ "$1" = buildx ] && exit 0',
      'if [[ " $* " == *" --entrypoint /usr/local/bin/trivy "* ]]; then printf "%s\\n" "$TRIVY_SAYS"; exit 0; fi',
      'if [ -n "${SCANNER_SAYS:-}" ]; then echo "$SCANNER_SAYS"; else node "$BUNDLE" --version; fi',
    ].join('\n'),
    { mode: 0o755 },
  );
  const trivyVersion = /^ARG TRIVY_VERSION=(\S+)$/m.exec(read('Dockerfile'))?.[1];

  function smoke(env: Record<string, string>): { status: number | null; out: string; calls: string } {
    const log = path.join(WORK, 'docker.log');
    writeFileSync(log, '');
    const r = spawnSync('bash', [path.join(REPO_ROOT, '.github', 'scripts', 'smoke-image.sh'), pkg.version], {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        DOCKER_LOG: log,
        BUNDLE: CLI_BUNDLE,
        REVISION: 'abc123',
        TRIVY_SAYS: `Version: ${trivyVersion ?? '?'}\nVulnerability DB: none`,
        ...env,
      },
    });
    return { status: r.status, out: r.stdout + r.stderr, calls: readFileSync(log, 'utf8') };
  }

  test('passes when the bundle reports the release version and Trivy the pinned one, on both platforms', () => {
    assert.ok(trivyVersion);
    const r = smoke({});
    assert.equal(r.status, 0, r.out);
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      assert.ok(
        r.calls.includes(
          `buildx build --platform ${platform} --load --provenance=false --sbom=false --build-arg VERSION=${pkg.version} --build-arg REVISION=abc123`,
        ),
        r.calls,
      );
      assert.match(r.out, new RegExp(`${platform} ok \\(ephor-scanner ${pkg.version}, trivy ${trivyVersion}\\)`));
    }
  });

  test('fails when the scanner or Trivy in the image is not the expected version', () => {
    const scanner = smoke({ SCANNER_SAYS: '9.9.9' });
    assert.equal(scanner.status, 1);
    assert.match(scanner.out, /linux\/amd64: 'ephor-scanner --version' printed '9\.9\.9', expected '/);
    const trivy = smoke({ TRIVY_SAYS: 'Version: 0.69.4' });
    assert.equal(trivy.status, 1);
    assert.ok(trivy.out.includes(`'trivy --version' printed 'Version: 0.69.4', expected 'Version: ${trivyVersion!}'`));
  });
});
