// The Dockerfile's pins, and its Trivy download step run for real (under sh, with a stand-in wget that serves a
// local archive): it must refuse an archive whose SHA-256 is not the pinned one.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../support/paths.js';

const DOCKERFILE = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const WORK = mkdtempSync(path.join(tmpdir(), 'ephor-dockerfile-test-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});

/** SHA-256 of the release archives, as Trivy's release published them (docs/releasing.md: where they were checked). */
const TRIVY_CHECKSUMS: Record<string, { amd64: string; arm64: string }> = {
  '0.69.3': {
    amd64: '1816b632dfe529869c740c0913e36bd1629cb7688bd5634f4a858c1d57c88b75',
    arm64: '7e3924a974e912e57b4a99f65ece7931f8079584dae12eb7845024f97087bdfd',
  },
};

function arg(name: string): string {
  const m = new RegExp(`^ARG ${name}=(\\S+)$`, 'm').exec(DOCKERFILE);
  assert.ok(m, `the Dockerfile has no "ARG ${name}=" line`);
  return m[1]!;
}

/** The shell command of the first RUN after `FROM ... AS <stage>`, continuation lines joined as Docker joins them. */
function runOfStage(stage: string): string {
  const lines = DOCKERFILE.split('\n');
  const from = lines.findIndex((l) => l.startsWith('FROM ') && l.endsWith(` AS ${stage}`));
  assert.ok(from >= 0, `no stage ${stage}`);
  let i = lines.findIndex((l, n) => n > from && l.startsWith('RUN '));
  let cmd = lines[i]!.slice(4);
  while (cmd.endsWith('\\')) cmd = cmd.slice(0, -1) + lines[++i]!;
  return cmd;
}

describe('Dockerfile pins', () => {
  test('Trivy: a safe version, pinned by the SHA-256 its release published for each platform', () => {
    const version = arg('TRIVY_VERSION');
    const m = /^0\.69\.(\d+)$/.exec(version);
    assert.ok(
      !m || ![4, 5, 6].includes(Number(m[1])),
      `Trivy ${version} is a compromised release (GHSA-69fq-xp46-6x23)`,
    );
    const published = TRIVY_CHECKSUMS[version];
    assert.ok(published, `no recorded published checksums for Trivy ${version}: verify them (docs/releasing.md)`);
    assert.equal(arg('TRIVY_SHA256_AMD64'), published.amd64);
    assert.equal(arg('TRIVY_SHA256_ARM64'), published.arm64);
    assert.doesNotMatch(
      DOCKERFILE,
      /aquasec\/trivy|aquasecurity\/trivy:/,
      'Trivy comes from the verified archive only',
    );
  });

  test('Node: an exact Node 22 Alpine tag and its digest', () => {
    assert.match(arg('NODE_IMAGE'), /^node:22\.\d+\.\d+-alpine\d+\.\d+@sha256:[0-9a-f]{64}$/);
    for (const from of DOCKERFILE.split('\n').filter((l) => l.startsWith('FROM '))) {
      assert.match(from, /\$\{NODE_IMAGE\}/, `every stage starts from the pinned Node image: ${from}`);
    }
  });
});

describe('Dockerfile: the Trivy download step', () => {
  const version = arg('TRIVY_VERSION');
  const fakeTrivy = '#!/bin/sh\necho "Version: stand-in"\n';
  // A real gzip'd tar with a `trivy` file, like the release archive (whose other files are left out).
  const content = path.join(WORK, 'content');
  mkdirSync(content);
  writeFileSync(path.join(content, 'trivy'), fakeTrivy, { mode: 0o755 });
  writeFileSync(path.join(content, 'README.md'), 'stand-in\n');
  const archive = path.join(WORK, 'archive.tar.gz');
  const tar = spawnSync('tar', ['-czf', archive, '-C', content, 'trivy', 'README.md']);
  assert.equal(tar.status, 0, String(tar.stderr));
  const archiveSum = createHash('sha256').update(readFileSync(archive)).digest('hex');

  const bin = path.join(WORK, 'bin');
  mkdirSync(bin);
  // Stands in for busybox wget as the step calls it: wget -q -O FILE URL.
  writeFileSync(
    path.join(bin, 'wget'),
    '#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -q) shift;; -O) out=$2; shift 2;; *) url=$1; shift;; esac; done\n' +
      'echo "$url" >>"$WGET_LOG"; cp "$ARCHIVE" "$out"\n',
    { mode: 0o755 },
  );

  let runs = 0;
  /** Runs the step with /usr/local/bin and /tmp moved into a private folder. */
  function runStep(env: Record<string, string>): { status: number | null; stderr: string; dir: string; urls: string } {
    const dir = path.join(WORK, `run-${++runs}`);
    mkdirSync(path.join(dir, 'bin'), { recursive: true });
    mkdirSync(path.join(dir, 'tmp'));
    const step = runOfStage('trivy');
    const paths = new Set(step.match(/(?<=[\s"])\/[\w./-]*/g));
    assert.deepEqual(paths, new Set(['/tmp/', '/usr/local/bin']), 'the step uses other paths than those moved here');
    const cmd = step.replace(/\/usr\/local\/bin|\/tmp\//g, (p) => (p === '/tmp/' ? `${dir}/tmp/` : `${dir}/bin`));
    const log = path.join(dir, 'wget.log');
    writeFileSync(log, '');
    const r = spawnSync('sh', ['-c', cmd], {
      encoding: 'utf8',
      timeout: 30_000,
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        WGET_LOG: log,
        ARCHIVE: archive,
        TRIVY_VERSION: version,
        TRIVY_SHA256_AMD64: arg('TRIVY_SHA256_AMD64'),
        TRIVY_SHA256_ARM64: arg('TRIVY_SHA256_ARM64'),
        ...env,
      },
    });
    return { status: r.status, stderr: r.stderr, dir, urls: readFileSync(log, 'utf8') };
  }
  const release = `https://github.com/aquasecurity/trivy/releases/download/v${version}/trivy_${version}`;

  test('unpacks the binary when the archive has the pinned checksum, for amd64 and arm64', () => {
    for (const [arch, asset, sumVar] of [
      ['amd64', 'Linux-64bit', 'TRIVY_SHA256_AMD64'],
      ['arm64', 'Linux-ARM64', 'TRIVY_SHA256_ARM64'],
    ] as const) {
      const r = runStep({ TARGETARCH: arch, [sumVar]: archiveSum });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.urls, `${release}_${asset}.tar.gz\n`);
      assert.equal(readFileSync(path.join(r.dir, 'bin', 'trivy'), 'utf8'), fakeTrivy);
      assert.ok(!existsSync(path.join(r.dir, 'tmp', `trivy_${version}_${asset}.tar.gz`)), 'the archive is removed');
    }
  });

  test('refuses an archive whose checksum is not the pinned one, before unpacking it', () => {
    for (const arch of ['amd64', 'arm64']) {
      const r = runStep({ TARGETARCH: arch }); // the stand-in archive is not Trivy's: its sum differs from the pin
      assert.notEqual(r.status, 0, `${arch}: accepted an archive with another checksum`);
      assert.match(r.stderr, /sha256sum: WARNING: 1 computed checksum did NOT match|FAILED/);
      assert.ok(!existsSync(path.join(r.dir, 'bin', 'trivy')), `${arch}: unpacked anyway`);
    }
  });

  test('refuses an architecture it has no checksum for, naming the allowed ones', () => {
    const r = runStep({ TARGETARCH: 's390x' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no pinned Trivy checksum for architecture 's390x' \(allowed: amd64, arm64\)/);
    assert.equal(r.urls, '', 'nothing downloaded');
  });
});
