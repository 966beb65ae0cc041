// The stand-in `trivy` and multi-platform images: an image index gives the child for `--platform` (linux/amd64
// without it), a platform the index lacks fails with the error text real Trivy prints (go-containerregistry's
// "no child with platform … in index …" as the remote source's error), and a single-platform image ignores the flag.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { classifyFailure } from '../../src/trivy/failure.js';
import { FAKE_TRIVY_BIN, readInvocations, writeScenario, type FakeTrivyScenario } from './fake-trivy.js';

const TIMEOUT = { timeout: 30_000 };
const INDEX = `ghcr.io/acme/api@sha256:${'1'.repeat(64)}`;
const ARM_ONLY = `ghcr.io/acme/edge@sha256:${'2'.repeat(64)}`;
const SINGLE = `docker.io/library/alpine@sha256:${'3'.repeat(64)}`;
const AMD64_REPORT = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const ARM64_REPORT = 'trivy-v0.69.3_debian-buster_os-pkgs.json';

const scenario: FakeTrivyScenario = {
  images: {
    [INDEX]: { platforms: { 'linux/amd64': { report: AMD64_REPORT }, 'linux/arm64': { report: ARM64_REPORT } } },
    [ARM_ONLY]: { platforms: { 'linux/arm64': { report: ARM64_REPORT } } },
    [SINGLE]: { report: AMD64_REPORT },
  },
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function harness(t: TestContext, version?: string) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fake-trivy-platforms-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const { scenarioPath, logPath } = await writeScenario(dir, { ...scenario, version });
  const cacheDir = path.join(dir, 'cache');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, FAKE_TRIVY_SCENARIO: scenarioPath };
  const run = (args: string[]) =>
    new Promise<Run>((resolve, reject) => {
      const child = spawn(FAKE_TRIVY_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const scan = async (ref: string, ...flags: string[]) => {
    const output = path.join(dir, `report-${Math.random().toString(36).slice(2)}.json`);
    const result = await run([
      'image',
      '--image-src',
      'remote',
      '-q',
      '--cache-dir',
      cacheDir,
      ...flags,
      '-o',
      output,
      '-f',
      'json',
      ref,
    ]);
    const report =
      result.code === 0 ? (JSON.parse(await fs.readFile(output, 'utf8')) as Record<string, any>) : undefined;
    return { ...result, report };
  };
  return { scan, invocations: () => readInvocations(logPath) };
}

const vulnIds = (report: Record<string, any> | undefined): string[] =>
  (report?.Results ?? []).flatMap((r: any) => (r.Vulnerabilities ?? []).map((v: any) => v.VulnerabilityID)).sort();

test(
  'an image index: the child for --platform, linux/amd64 without it; the served child is logged',
  TIMEOUT,
  async (t) => {
    const h = await harness(t);
    const byDefault = await h.scan(INDEX);
    const amd64 = await h.scan(INDEX, '--platform', 'linux/amd64');
    const arm64 = await h.scan(INDEX, '--platform', 'linux/arm64');
    for (const run of [byDefault, amd64, arm64]) assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(vulnIds(byDefault.report), vulnIds(amd64.report));
    assert.notDeepEqual(vulnIds(arm64.report), vulnIds(amd64.report), 'another report for arm64');
    assert.equal(arm64.report!.Metadata.OS.Family, 'debian');
    assert.equal(amd64.report!.Metadata.OS.Family, 'alpine');
    const scans = (await h.invocations()).filter(
      (i) => i.argv[0] === 'image' && !i.argv.includes('--download-db-only'),
    );
    assert.deepEqual(
      scans.map((i) => i.platform),
      ['linux/amd64', 'linux/amd64', 'linux/arm64'],
    );
  },
);

test(
  'an arm64-only index without --platform fails as real Trivy does; with linux/arm64 it is scanned',
  TIMEOUT,
  async (t) => {
    const h = await harness(t);
    const failed = await h.scan(ARM_ONLY);
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\tFATAL\\tFatal error\\trun error: image scan error: scan error: unable to initialize a scan service: unable to initialize artifact: unable to initialize container image: unable to find the specified image "${ARM_ONLY}" in \\["remote"\\]: 1 error occurred:\\n\\t\\* remote error: no child with platform linux/amd64 in index ${ARM_ONLY}\\n\\n\\n$`,
      ),
    );
    // The scanner files it under `platform_not_found`, with the remote source's line as the detail.
    assert.deepEqual(classifyFailure({ exitCode: 1, signal: null, timedOut: false, stderr: failed.stderr }), {
      reason: 'platform_not_found',
      detail: `remote error: no child with platform linux/amd64 in index ${ARM_ONLY}`,
    });
    const other = await h.scan(ARM_ONLY, '--platform', 'linux/s390x');
    assert.match(other.stderr, /\* remote error: no child with platform linux\/s390x in index /);
    const scanned = await h.scan(ARM_ONLY, '--platform', 'linux/arm64');
    assert.equal(scanned.code, 0, scanned.stderr);
    assert.equal(scanned.report!.Metadata.OS.Family, 'debian');
  },
);

test('Trivy 0.58 words the same failure with its older chain', TIMEOUT, async (t) => {
  const h = await harness(t, '0.58.0');
  const failed = await h.scan(ARM_ONLY);
  assert.match(
    failed.stderr,
    /\tFATAL\tFatal error\timage scan error: scan error: unable to initialize a scanner: unable to initialize an image scanner: unable to find the specified image "[^"]+" in \["remote"\]: 1 error occurred:\n\t\* remote error: no child with platform linux\/amd64 in index /,
  );
});

test('a single-platform image ignores --platform, as Trivy does', TIMEOUT, async (t) => {
  const h = await harness(t);
  const withFlag = await h.scan(SINGLE, '--platform', 'linux/arm64');
  assert.equal(withFlag.code, 0, withFlag.stderr);
  assert.equal(withFlag.report!.Metadata.OS.Family, 'alpine');
});
