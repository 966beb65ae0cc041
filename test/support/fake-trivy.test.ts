// Tests of the stand-in `trivy` itself: it must look like real Trivy 0.58–0.69 to the scanner.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { readFileSync, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  envFingerprint,
  FAKE_TRIVY_BIN,
  linkFakeTrivy,
  readInvocations,
  reportPath,
  writeScenario,
  type FakeTrivyScenario,
} from './fake-trivy.js';
import { startEphorServer } from './ephor-server.js';
import { fixture } from './paths.js';
import { isAlive } from './processes.js';
import { SAFETY_NET_MS } from './wait.js';

interface ErrorEntry {
  id: string;
  args: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}
interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}
type Json = Record<string, any>;

const JUICE_SHOP = 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json';
const JUICE_SHOP_REF = 'bkimminich/juice-shop:v10.2.0';
const ERROR_ENTRIES = (JSON.parse(readFileSync(fixture('trivy', 'errors.json'), 'utf8')) as { entries: ErrorEntry[] })
  .entries;
const DIGEST = `sha256:${'ab'.repeat(32)}`;
// Hang guards, not time limits: each stand-in run has its own bound (runTrivy), and a test runs up to a dozen of them
// one after another. On the loaded machine one Node start of the stand-in took up to 2.5 s (26.7 s for the 11 runs of
// "what real convert refuses", against a former 30 s bound).
const TEST_TIMEOUT = { timeout: 90_000 };
const SLOW_TEST_TIMEOUT = { timeout: 180_000 };

function errorEntry(id: string): ErrorEntry {
  const entry = ERROR_ENTRIES.find((e) => e.id === id);
  assert.ok(entry, `errors.json has ${id}`);
  return entry;
}

/** Environment without TRIVY_* / DOCKER_CONFIG from the developer's shell. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('TRIVY_') && key !== 'DOCKER_CONFIG') env[key] = value;
  }
  return env;
}

function runTrivy(
  args: string[],
  env: Record<string, string>,
  bin = FAKE_TRIVY_BIN,
  timeoutMs = 15_000,
  cwd?: string,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fake trivy ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

interface Harness {
  dir: string;
  cacheDir: string;
  logPath: string;
  env: Record<string, string>;
  /** `cwd`: the stand-in's working directory (default: the test's). */
  run(args: string[], extraEnv?: Record<string, string>, cwd?: string): Promise<RunResult>;
}

async function setup(t: TestContext, scenario: FakeTrivyScenario): Promise<Harness> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fake-trivy-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const { scenarioPath, logPath } = await writeScenario(dir, scenario);
  const env = { ...cleanEnv(), FAKE_TRIVY_SCENARIO: scenarioPath, XDG_CACHE_HOME: path.join(dir, 'xdg-cache') };
  return {
    dir,
    cacheDir: path.join(dir, 'cache'),
    logPath,
    env,
    run: (args, extraEnv = {}, cwd) => runTrivy(args, { ...env, ...extraEnv }, FAKE_TRIVY_BIN, 15_000, cwd),
  };
}

const readJson = async (file: string): Promise<Json> => JSON.parse(await fs.readFile(file, 'utf8')) as Json;
const allVulns = (report: Json): Json[] =>
  (report.Results as Json[]).flatMap((r) => (r.Vulnerabilities as Json[] | undefined) ?? []);

/** Key structure of a JSON value (order-sensitive), for comparing shapes with real fixtures. */
function keyShape(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return typeof value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, keyShape(v)]));
}

/** Polls until `probe` gives a value; the bound is only a safety net (a Node start alone may take seconds). */
async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = SAFETY_NET_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('trivy version', () => {
  test('without a DB prints only {"Version"} as one compact line', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {});
    const result = await h.run(['version', '--format', 'json', '--cache-dir', h.cacheDir]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, '{"Version":"0.69.3"}\n');
    assert.equal(result.stderr, '');
    const realNoDb = await readJson(fixture('trivy', 'version', 'trivy-v0.69.3_app_test_version_no-db.json'));
    assert.deepEqual(keyShape(JSON.parse(result.stdout)), keyShape(realNoDb));
  });

  test('--version --format json, -f json and the scenario version', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { version: '0.63.0' });
    for (const args of [
      ['--version', '--format', 'json'],
      ['-v', '-f', 'json'],
      ['version', '--format=json'],
    ]) {
      const result = await h.run([...args, '--cache-dir', h.cacheDir]);
      assert.equal(result.code, 0, args.join(' '));
      assert.equal(result.stdout, '{"Version":"0.63.0"}\n', args.join(' '));
    }
    const text = await h.run(['version', '--cache-dir', h.cacheDir]);
    assert.equal(text.stdout, 'Version: 0.63.0\n');
  });

  test('versionFails exits 1 with a FATAL line', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { versionFails: true });
    const result = await h.run(['version', '--format', 'json']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tFATAL\tFatal error\t.+\n$/);
  });
});

describe('DB download', () => {
  test('--download-db-only fills the cache dir, then version shows VulnerabilityDB', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {});
    const download = await h.run(['image', '--download-db-only', '--cache-dir', h.cacheDir, '--no-progress']);
    assert.equal(download.code, 0, download.stderr);
    assert.equal(download.stdout, '');
    assert.match(download.stderr, /^\S+Z\tINFO\t\[vulndb\] Downloading vulnerability DB\.\.\.$/m);
    assert.match(
      download.stderr,
      /\tINFO\t\[vulndb\] Downloading artifact\.\.\.\trepo="mirror\.gcr\.io\/aquasec\/trivy-db:2"$/m,
    );
    assert.ok(existsSync(path.join(h.cacheDir, 'db', 'trivy.db')));
    const metadata = await readJson(path.join(h.cacheDir, 'db', 'metadata.json'));
    assert.deepEqual(Object.keys(metadata), ['Version', 'NextUpdate', 'UpdatedAt', 'DownloadedAt']);
    assert.equal(Date.parse(metadata.NextUpdate) - Date.parse(metadata.UpdatedAt), 24 * 3_600_000);
    assert.ok(Math.abs(Date.parse(metadata.DownloadedAt) - Date.now()) < 60_000);

    const version = await h.run(['version', '--format', 'json', '--cache-dir', h.cacheDir]);
    assert.equal(version.code, 0);
    assert.ok(version.stdout.endsWith('}\n') && !version.stdout.slice(0, -1).includes('\n'));
    const info = JSON.parse(version.stdout) as Json;
    const real = await readJson(fixture('trivy', 'version', 'real_trivy-0.63.0_version_vulndb-only.json'));
    assert.deepEqual(keyShape(info), keyShape(real));
    assert.deepEqual(info.VulnerabilityDB, metadata);
  });

  test('--download-java-db-only adds JavaDB; TRIVY_CACHE_DIR is the default cache dir', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { db: { updatedAt: '2026-01-01T00:00:00Z' } });
    const env = { TRIVY_CACHE_DIR: h.cacheDir };
    assert.equal((await h.run(['image', '--download-db-only', '--quiet'], env)).code, 0);
    const javaDownload = await h.run(['image', '--download-java-db-only'], env);
    assert.equal(javaDownload.code, 0, javaDownload.stderr);
    assert.match(javaDownload.stderr, /\tINFO\t\[javadb\] Downloading Java DB\.\.\.$/m);
    assert.ok(existsSync(path.join(h.cacheDir, 'java-db', 'trivy-java.db')));
    const info = JSON.parse((await h.run(['version', '--format', 'json'], env)).stdout) as Json;
    assert.deepEqual(Object.keys(info), ['Version', 'VulnerabilityDB', 'JavaDB']);
    assert.equal(info.VulnerabilityDB.UpdatedAt, '2026-01-01T00:00:00.000Z');
    const real = await readJson(fixture('trivy', 'version', 'trivy-v0.69.3_app_test_version_full.json'));
    assert.deepEqual(keyShape(info.JavaDB), keyShape(real.JavaDB));
    assert.equal(info.JavaDB.Version, 1);
  });

  test('a failing download replays the errors.json entry and leaves no DB', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { db: { download: 'db-toomanyrequests-real-2024' } });
    const entry = errorEntry('db-toomanyrequests-real-2024');
    const result = await h.run(['image', '--download-db-only', '--cache-dir', h.cacheDir]);
    assert.equal(result.code, entry.exitCode);
    assert.equal(result.stderr, entry.stderr);
    assert.equal(existsSync(path.join(h.cacheDir, 'db', 'metadata.json')), false);
    const scan = await h.run(['image', '--cache-dir', h.cacheDir, 'alpine:3.20']);
    assert.equal(scan.code, 1);
    assert.equal(scan.stderr, entry.stderr);
  });

  test('conflicting download flags are rejected', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {});
    const both = await h.run(['image', '--download-db-only', '--download-java-db-only', '--cache-dir', h.cacheDir]);
    assert.equal(both.code, 1);
    assert.match(
      both.stderr,
      /\tFATAL\tFatal error\tflag error: unable to convert flags to options: --download-db-only and --download-java-db-only options can not be specified both\n$/,
    );
    const skip = await h.run(['image', '--download-db-only', '--skip-db-update', '--cache-dir', h.cacheDir]);
    assert.equal(skip.code, 1);
    assert.match(skip.stderr, /--skip-db-update and --download-db-only options can not be specified both\n$/);
  });
});

describe('trivy image: reports', () => {
  const scenario: FakeTrivyScenario = { images: { [JUICE_SHOP_REF]: { report: reportPath(JUICE_SHOP) } } };

  test(
    'replaying without filters is byte-identical to the real report (captured with --list-all-pkgs=false)',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const out = path.join(h.dir, 'report.json');
      const result = await h.run([
        'image',
        '--format',
        'json',
        '--list-all-pkgs=false',
        '--output',
        out,
        '--cache-dir',
        h.cacheDir,
        JUICE_SHOP_REF,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, '');
      assert.equal(await fs.readFile(out, 'utf8'), await fs.readFile(reportPath(JUICE_SHOP), 'utf8'));
    },
  );

  test(
    '--severity filters to exactly the matching vulnerabilities (juice-shop counts)',
    SLOW_TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const expected = { CRITICAL: 25, HIGH: 128, MEDIUM: 67, LOW: 16 };
      for (const [severity, count] of Object.entries(expected)) {
        const out = path.join(h.dir, `${severity}.json`);
        const result = await h.run([
          'image',
          '-f',
          'json',
          '-o',
          out,
          '--severity',
          severity,
          '--cache-dir',
          h.cacheDir,
          JUICE_SHOP_REF,
        ]);
        assert.equal(result.code, 0, result.stderr);
        const vulns = allVulns(await readJson(out));
        assert.equal(vulns.length, count, severity);
        assert.ok(vulns.every((v) => v.Severity === severity));
      }
    },
  );

  test(
    'TRIVY_SEVERITY env and comma lists; Vulnerabilities key removed when none are left',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const out = path.join(h.dir, 'r.json');
      await h.run(['image', '--format=json', `--output=${out}`, '--cache-dir', h.cacheDir, JUICE_SHOP_REF], {
        TRIVY_SEVERITY: 'HIGH,CRITICAL',
      });
      assert.equal(allVulns(await readJson(out)).length, 153);
      await h.run(['image', '--format', 'json', '-o', out, '-s', 'UNKNOWN', '--cache-dir', h.cacheDir, JUICE_SHOP_REF]);
      const report = await readJson(out);
      assert.deepEqual(
        report.Results.map((r: Json) => r.Class),
        ['os-pkgs', 'lang-pkgs', 'secret'],
      );
      assert.ok(report.Results.every((r: Json) => !('Vulnerabilities' in r)));
    },
  );

  test(
    'ArtifactName is the ref, a configured digest becomes RepoDigests, stdout without --output',
    TEST_TIMEOUT,
    async (t) => {
      const ref = 'docker.io/bkimminich/juice-shop:v10.2.0';
      const h = await setup(t, { images: { [ref]: { report: JUICE_SHOP, digest: DIGEST } } });
      const result = await h.run(['image', '--format', 'json', '--quiet', '--cache-dir', h.cacheDir, ref]);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      const report = JSON.parse(result.stdout) as Json;
      assert.equal(report.ArtifactName, ref);
      assert.deepEqual(report.Metadata.RepoDigests, [`docker.io/bkimminich/juice-shop@${DIGEST}`]);
    },
  );

  test('a digest is inserted in Trivy field order when the fixture has no RepoDigests', TEST_TIMEOUT, async (t) => {
    const ref = 'ghcr.io/acme/app@sha256:' + 'cd'.repeat(32);
    const h = await setup(t, {
      images: { [ref]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json', digest: DIGEST } },
    });
    const report = JSON.parse(
      (await h.run(['image', '-f', 'json', '-q', '--cache-dir', h.cacheDir, ref])).stdout,
    ) as Json;
    assert.deepEqual(report.Metadata.RepoDigests, [`ghcr.io/acme/app@${DIGEST}`]);
    const keys = Object.keys(report.Metadata);
    assert.equal(keys.indexOf('RepoDigests'), keys.indexOf('RepoTags') + 1);
    assert.equal(report.Trivy.Version, '0.69.3');
  });

  test('--scanners vuln drops the secret result', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, scenario);
    const result = await h.run([
      'image',
      '-f',
      'json',
      '--scanners',
      'vuln',
      '-q',
      '--cache-dir',
      h.cacheDir,
      JUICE_SHOP_REF,
    ]);
    const report = JSON.parse(result.stdout) as Json;
    assert.deepEqual(
      report.Results.map((r: Json) => r.Class),
      ['os-pkgs', 'lang-pkgs'],
    );
    assert.equal(allVulns(report).length, 236);
  });

  test(
    'Packages: dropped by default before 0.67 and with --list-all-pkgs=false, kept by default since 0.67',
    SLOW_TEST_TIMEOUT,
    async (t) => {
      const npm = { images: { 'app:1': { report: 'trivy-v0.69.3_npm-repository_with-Packages-list.json' } } };
      const cases: Array<[string, string[], boolean]> = [
        ['0.66.0', [], false],
        ['0.69.3', [], true],
        ['0.69.3', ['--list-all-pkgs=false'], false],
        ['0.58.0', ['--list-all-pkgs'], true],
      ];
      for (const [version, flags, hasPackages] of cases) {
        const h = await setup(t, { ...npm, version });
        const result = await h.run(['image', '-f', 'json', '-q', ...flags, '--cache-dir', h.cacheDir, 'app:1']);
        assert.equal(result.code, 0, result.stderr);
        const report = JSON.parse(result.stdout) as Json;
        assert.equal(
          report.Results.some((r: Json) => 'Packages' in r),
          hasPackages,
          `${version} ${flags.join(' ')}`,
        );
      }
    },
  );

  test('--format cyclonedx prints a real CycloneDX document', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, scenario);
    const result = await h.run(['image', '--format', 'cyclonedx', '--cache-dir', h.cacheDir, JUICE_SHOP_REF]);
    assert.equal(result.code, 0);
    assert.equal((JSON.parse(result.stdout) as Json).bomFormat, 'CycloneDX');
    assert.match(result.stderr, /"--format cyclonedx" disables security scanning/);
  });

  test(
    '--skip-db-update on an empty cache fails like Trivy; with a DB it does not download',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const out = path.join(h.dir, 'r.json');
      const first = await h.run([
        'image',
        '--skip-db-update',
        '-f',
        'json',
        '-o',
        out,
        '--cache-dir',
        h.cacheDir,
        JUICE_SHOP_REF,
      ]);
      assert.equal(first.code, 1);
      assert.equal(first.stderr, errorEntry('db-skip-update-first-run').stderr);
      assert.equal(existsSync(out), false);
      assert.equal((await h.run(['image', '--download-db-only', '--cache-dir', h.cacheDir])).code, 0);
      const second = await h.run(
        ['image', '--skip-db-update', '-f', 'json', '-o', out, '--cache-dir', h.cacheDir, JUICE_SHOP_REF],
        { TRIVY_SKIP_DB_UPDATE: 'true' },
      );
      assert.equal(second.code, 0, second.stderr);
      assert.doesNotMatch(second.stderr, /Downloading/);
    },
  );

  test('a scan without a DB downloads it into --cache-dir first', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, scenario);
    const result = await h.run([
      'image',
      '-f',
      'json',
      '-o',
      path.join(h.dir, 'r.json'),
      '--cache-dir',
      h.cacheDir,
      JUICE_SHOP_REF,
    ]);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /\[vulndb\] Need to update DB/);
    assert.ok(existsSync(path.join(h.cacheDir, 'db', 'metadata.json')));
  });
});

describe('trivy image: flags', () => {
  test('an unknown flag prints help on stdout and the FATAL line on stderr, exit 1', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {});
    const result = await h.run(['image', '--bogus', 'alpine:3.20']);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^Scan a container image\n\nUsage:\n {2}trivy image \[flags\] IMAGE_NAME\n/);
    assert.match(result.stderr, /^\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tFATAL\tFatal error\tunknown flag: --bogus\n$/);
  });

  test(
    '--skip-version-check / --disable-telemetry are unknown before 0.63 and accepted since',
    TEST_TIMEOUT,
    async (t) => {
      const images = { 'alpine:3.10': { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' } };
      const old = await setup(t, { version: '0.58.0', images });
      const rejected = await old.run([
        'image',
        '--skip-version-check',
        '--disable-telemetry',
        '--cache-dir',
        old.cacheDir,
        'alpine:3.10',
      ]);
      assert.equal(rejected.code, 1);
      assert.match(rejected.stderr, /\tFATAL\tFatal error\tunknown flag: --skip-version-check\n$/);
      const telemetry = await old.run(['image', '--disable-telemetry', 'alpine:3.10']);
      assert.match(telemetry.stderr, /unknown flag: --disable-telemetry\n$/);
      const current = await setup(t, { version: '0.63.0', images });
      const accepted = await current.run([
        'image',
        '--skip-version-check',
        '--disable-telemetry=true',
        '-f',
        'json',
        '-q',
        '--cache-dir',
        current.cacheDir,
        'alpine:3.10',
      ]);
      assert.equal(accepted.code, 0, accepted.stderr);
    },
  );

  test('bad values, a missing REF and unknown subcommands are errors', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {});
    const timeout = await h.run(['image', '--timeout', 'abc', 'alpine:3.20']);
    assert.equal(timeout.code, 1);
    assert.match(
      timeout.stderr,
      /\tFatal error\tinvalid argument "abc" for "--timeout" flag: time: invalid duration "abc"\n$/,
    );
    const bool = await h.run(['image', '--quiet=maybe', 'alpine:3.20']);
    assert.match(
      bool.stderr,
      /invalid argument "maybe" for "-q, --quiet" flag: strconv\.ParseBool: parsing "maybe": invalid syntax\n$/,
    );
    const needsValue = await h.run(['image', 'alpine:3.20', '--output']);
    assert.match(needsValue.stderr, /flag needs an argument: --output\n$/);
    const noRef = await h.run(['image', '--format', 'json']);
    assert.equal(noRef.code, 1);
    assert.match(noRef.stderr, /\tFATAL\tFatal error\tRequire at least 1 argument or --input option\n$/);
    const format = await h.run(['image', '--format', 'xml', 'alpine:3.20']);
    assert.match(format.stderr, /invalid argument "xml" for "--format" flag: must be one of \["table" "json"/);
    const command = await h.run(['scan', 'alpine:3.20']);
    assert.equal(command.code, 1);
    assert.match(command.stderr, /^Error: unknown command "scan" for "trivy"\n/);
  });
});

describe('trivy image: failures', () => {
  const ref = 'registry.example.com:5000/team/app:2.1';
  const newUrl = 'https://registry.example.com:5000/v2/team/app/manifests/2.1';
  // image and registry URL named by each errors.json entry, written out here independently of the stand-in
  const mentioned: Record<string, { image: string; url: string }> = {
    'nginx:no-such-tag': {
      image: 'nginx:no-such-tag',
      url: 'https://index.docker.io/v2/library/nginx/manifests/no-such-tag',
    },
    'mookas/junk:latest': {
      image: 'mookas/junk:latest',
      url: 'https://index.docker.io/v2/mookas/junk/manifests/latest',
    },
    'nginx:1.27': { image: 'nginx:1.27', url: 'https://index.docker.io/v2/library/nginx/manifests/1.27' },
  };

  function expectedStderr(entry: ErrorEntry): string {
    const named = mentioned[entry.args.split(' ').at(-1) ?? ''];
    if (!named) return entry.stderr;
    return entry.stderr
      .replaceAll(named.url, newUrl)
      .replaceAll(`"${named.image}"`, `"${ref}"`)
      .replaceAll(`(${named.image})`, `(${ref})`)
      .replaceAll('Name:mookas/junk ', 'Name:team/app ')
      .replaceAll('unknown tag=no-such-tag', 'unknown tag=2.1');
  }

  test('every errors.json failure is replayed with the ref substituted', SLOW_TEST_TIMEOUT, async (t) => {
    const failures = ERROR_ENTRIES.filter((e) => e.exitCode === 1);
    assert.ok(failures.length >= 9);
    for (const entry of failures) {
      const h = await setup(t, { images: { [ref]: { fail: entry.id } } });
      const result = await h.run([
        'image',
        '--image-src',
        'remote',
        '-f',
        'json',
        '--cache-dir',
        h.cacheDir,
        '-q',
        ref,
      ]);
      assert.equal(result.code, entry.exitCode, entry.id);
      assert.equal(result.stdout, '', entry.id);
      // --quiet keeps only the FATAL part, as real Trivy does
      const expected = expectedStderr(entry).replace(/^[^\t\n]+\t(INFO|WARN|ERROR)\t.*\n/gm, '');
      assert.equal(result.stderr, expected, entry.id);
      const named = mentioned[entry.args.split(' ').at(-1) ?? ''];
      if (named && entry.stderr.includes(named.url)) {
        assert.ok(result.stderr.includes(newUrl) && !result.stderr.includes(named.image), entry.id);
      }
    }
    const unauthorized = expectedStderr(errorEntry('unauthorized-remote'));
    assert.ok(
      unauthorized.includes(`"${ref}" in ["remote"]`) && unauthorized.includes('Name:team/app Type:repository'),
    );
  });

  test(
    'an image not in the scenario fails with MANIFEST_UNKNOWN shaped by version and --image-src',
    TEST_TIMEOUT,
    async (t) => {
      const cases: Array<[string, string[], string]> = [
        ['0.69.3', ['--image-src', 'remote'], 'image-not-found-remote-only'],
        ['0.69.3', [], 'image-not-found-default-sources'],
        ['0.58.0', ['--image-src=remote'], 'image-not-found-v058'],
      ];
      for (const [version, flags, entryId] of cases) {
        const h = await setup(t, { version });
        const result = await h.run(['image', ...flags, '-q', '--cache-dir', h.cacheDir, 'nginx:no-such-tag']);
        assert.equal(result.code, 1);
        assert.equal(result.stderr, errorEntry(entryId).stderr, `${version} ${flags.join(' ')}`);
      }
    },
  );

  test('--timeout shorter than the scan prints the real timeout texts', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { images: { 'big/image:tag': { report: JUICE_SHOP, delayMs: 10_000 } } });
    assert.equal((await h.run(['image', '--download-db-only', '--cache-dir', h.cacheDir])).code, 0);
    // Without the timeout the scan would end after 10 s with exit 0 and the report: the exit code and text tell.
    const result = await h.run(['image', '--timeout', '300ms', '--cache-dir', h.cacheDir, 'big/image:tag']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, errorEntry('timeout-v069').stderr);
    const old = await setup(t, {
      version: '0.60.0',
      images: { 'big/image:tag': { report: JUICE_SHOP, delayMs: 10_000 } },
    });
    const oldResult = await old.run(['image', '--skip-db-update', '--cache-dir', h.cacheDir, 'big/image:tag'], {
      TRIVY_TIMEOUT: '0.2s',
    });
    assert.equal(oldResult.code, 1);
    assert.match(
      oldResult.stderr,
      /\tWARN\tProvide a higher timeout value, see https:\/\/trivy\.dev\/v0\.60\/docs\/configuration\n/,
    );
    assert.match(
      oldResult.stderr,
      /\tFATAL\tFatal error\timage scan error: scan error: scan failed: .*context deadline exceeded\n$/,
    );
  });

  test('requireDockerConfigFor: UNAUTHORIZED without credentials, a report with them', TEST_TIMEOUT, async (t) => {
    const creds = { registry: 'registry.example.com:5000', username: 'robot', password: 's3cret' };
    const h = await setup(t, {
      images: { [ref]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json', digest: DIGEST } },
      requireDockerConfigFor: { [ref]: creds },
    });
    const args = ['image', '--image-src', 'remote', '-f', 'json', '-q', '--cache-dir', h.cacheDir, ref];
    const emptyConfigDir = path.join(h.dir, 'no-docker-config');
    await fs.mkdir(emptyConfigDir);
    const denied = await h.run(args, { DOCKER_CONFIG: emptyConfigDir });
    assert.equal(denied.code, 1);
    assert.equal(denied.stderr, expectedStderr(errorEntry('unauthorized-remote')));

    const wrongDir = path.join(h.dir, 'wrong-docker-config');
    await fs.mkdir(wrongDir);
    const wrongAuth = Buffer.from('robot:nope').toString('base64');
    await fs.writeFile(
      path.join(wrongDir, 'config.json'),
      JSON.stringify({ auths: { [creds.registry]: { auth: wrongAuth } } }),
    );
    assert.equal((await h.run(args, { DOCKER_CONFIG: wrongDir })).code, 1);

    const configDir = path.join(h.dir, 'docker-config');
    await fs.mkdir(configDir);
    const auth = Buffer.from('robot:s3cret').toString('base64');
    await fs.writeFile(path.join(configDir, 'config.json'), JSON.stringify({ auths: { [creds.registry]: { auth } } }));
    const allowed = await h.run(args, { DOCKER_CONFIG: configDir });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal((JSON.parse(allowed.stdout) as Json).ArtifactName, ref);
  });
});

describe('process behaviours', () => {
  test('hang: logs both pids, ignores SIGTERM, and the process group dies with SIGKILL', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { images: { 'slow:1': { hang: true } } });
    await fs.mkdir(h.cacheDir, { recursive: true });
    const child = spawn(FAKE_TRIVY_BIN, ['image', '--cache-dir', h.cacheDir, 'slow:1'], {
      env: h.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.resume();
    child.stderr.resume();
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => {
        resolve({ code, signal });
      }),
    );
    const pid = child.pid!;
    try {
      const line = await waitFor(
        async () => (await readInvocations(h.logPath)).find((i) => i.behaviour === 'hang'),
        'the hang log line',
      );
      assert.equal(line.pid, pid);
      const [mainPid, grandchildPid] = line.pids ?? [];
      assert.equal(mainPid, pid);
      assert.ok(grandchildPid && isAlive(grandchildPid));
      process.kill(pid, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(isAlive(pid), 'SIGTERM is ignored');
      process.kill(-pid, 'SIGKILL');
      assert.deepEqual(await closed, { code: null, signal: 'SIGKILL' });
      await waitFor(() => (isAlive(grandchildPid) ? undefined : true), 'the grandchild to die');
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });

  test('signal: the process dies by the configured signal', TEST_TIMEOUT, async (t) => {
    for (const signal of ['SIGKILL', 'SIGSEGV', 'SIGTERM'] as const) {
      const h = await setup(t, { images: { 'oom:1': { signal, delayMs: 50 } } });
      const result = await h.run(['image', '-q', '--cache-dir', h.cacheDir, 'oom:1']);
      assert.deepEqual([result.code, result.signal], [null, signal]);
      const [invocation] = await readInvocations(h.logPath);
      assert.equal(invocation?.behaviour, `signal:${signal}`);
    }
  });

  test('garbage, truncated and empty outputs exit 0 with unusable reports', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {
      images: { 'g:1': { garbage: true }, 't:1': { truncated: true }, 'e:1': { empty: true } },
    });
    for (const ref of ['g:1', 't:1', 'e:1']) {
      const out = path.join(h.dir, `${ref.replace(':', '_')}.json`);
      const result = await h.run(['image', '-f', 'json', '-o', out, '-q', '--cache-dir', h.cacheDir, ref]);
      assert.equal(result.code, 0, ref);
      const text = await fs.readFile(out, 'utf8');
      assert.throws(() => JSON.parse(text), SyntaxError, ref);
      if (ref === 'e:1') assert.equal(text, '');
      if (ref === 't:1') assert.ok(text.startsWith('{\n  "SchemaVersion": 2,') && text.length > 100_000);
    }
  });

  test('hugeMB 5 streams a valid report of about 5 MB', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { images: { 'huge:1': { hugeMB: 5 } } });
    const out = path.join(h.dir, 'huge.json');
    const result = await h.run([
      'image',
      '-f',
      'json',
      '-o',
      out,
      '--severity',
      'HIGH,CRITICAL',
      '-q',
      '--cache-dir',
      h.cacheDir,
      'huge:1',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const { size } = await fs.stat(out);
    assert.ok(size >= 5 * 1024 * 1024 && size < 5.5 * 1024 * 1024, `size ${size}`);
    const report = await readJson(out);
    assert.equal(report.ArtifactName, 'huge:1');
    const vulns = allVulns(report);
    assert.ok(vulns.length > 1000);
    assert.ok(vulns.every((v) => v.Severity === 'HIGH' || v.Severity === 'CRITICAL'));
    assert.equal(new Set(vulns.map((v) => v.VulnerabilityID)).size, vulns.length);
    const template = (await readJson(reportPath('trivy-v0.69.3_alpine-3.10_os-pkgs.json'))).Results[0]
      .Vulnerabilities[0] as Json;
    assert.deepEqual(Object.keys(vulns[0]!), Object.keys(template));
  });

  test(
    'the invocation log records argv, every variable (secret-looking values as fingerprints), cwd and its entries, and the outcome',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, {});
      const binDir = path.join(h.dir, 'bin');
      await linkFakeTrivy(binDir);
      const cwd = path.join(h.dir, 'work');
      await fs.mkdir(cwd);
      await fs.writeFile(path.join(cwd, '.trivyignore'), '');
      const env = {
        ...h.env,
        PATH: `${binDir}:${h.env.PATH ?? ''}`,
        TEST_MARKER: 'x1',
        TRIVY_INSECURE: 'true',
        TRIVY_PASSWORD: 'pw-in-the-env',
        EPHOR_AUTH_VALUE: 'Bearer not-for-trivy',
      };
      const result = await runTrivy(['version', '--format', 'json'], env, 'trivy', 15_000, cwd);
      assert.equal(result.stdout, '{"Version":"0.69.3"}\n');
      const [first] = await readInvocations(h.logPath);
      assert.ok(first);
      assert.deepEqual(first.argv, ['version', '--format', 'json']);
      assert.deepEqual(Object.keys(first.env).sort(), Object.keys(env).sort());
      assert.equal(first.env.TEST_MARKER, 'x1');
      assert.equal(first.env.TRIVY_INSECURE, 'true');
      assert.equal(first.env.FAKE_TRIVY_SCENARIO, h.env.FAKE_TRIVY_SCENARIO);
      assert.equal(first.env.TRIVY_PASSWORD, envFingerprint('pw-in-the-env'));
      assert.equal(first.env.EPHOR_AUTH_VALUE, envFingerprint('Bearer not-for-trivy'));
      const log = await fs.readFile(h.logPath, 'utf8');
      assert.ok(!log.includes('pw-in-the-env') && !log.includes('not-for-trivy'), 'no secret value in the log');
      assert.equal(first.cwd, cwd);
      assert.deepEqual(first.cwdEntries, ['.trivyignore']);
      assert.equal(first.exitCode, 0);
      assert.equal(first.behaviour, 'version');
      assert.ok(Date.parse(first.endedAt!) >= Date.parse(first.startedAt));
    },
  );
});

// ---------------------------------------------------------------- filters Trivy reads from its surroundings

describe('trivy image: filters from flags, TRIVY_* variables, .trivyignore and trivy.yaml', () => {
  const STATUS_REPORT = 'edited_debian_all-status-values.json';
  const REF = 'ghcr.io/acme/statuses:1';
  const scenario: FakeTrivyScenario = { images: { [REF]: { report: STATUS_REPORT } } };

  /** Scans REF in `cwd` and returns the vulnerabilities' IDs and statuses, sorted. */
  async function scan(h: Harness, args: string[] = [], env: Record<string, string> = {}, cwd?: string) {
    const out = path.join(h.dir, `report-${Math.random().toString(16).slice(2)}.json`);
    const result = await h.run(
      ['image', '--format', 'json', '--output', out, '--cache-dir', h.cacheDir, ...args, REF],
      env,
      cwd,
    );
    assert.equal(result.code, 0, result.stderr);
    const vulns = allVulns(await readJson(out)).map((v) => `${v.VulnerabilityID as string} ${v.Status as string}`);
    return { vulns: vulns.sort(), stderr: result.stderr };
  }

  async function workDir(h: Harness, files: Record<string, string>): Promise<string> {
    const dir = await fs.mkdtemp(path.join(h.dir, 'cwd-'));
    for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
    return dir;
  }

  const statusOf = (line: string) => line.split(' ')[1];

  test('the fixture has one vulnerability of each status, all kept without filters', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, scenario);
    const { vulns } = await scan(h);
    assert.deepEqual(vulns.map(statusOf).sort(), [
      'affected',
      'end_of_life',
      'fix_deferred',
      'fixed',
      'not_affected',
      'under_investigation',
      'unknown',
      'will_not_fix',
    ]);
  });

  test('--ignore-unfixed and TRIVY_IGNORE_UNFIXED keep only fixed vulnerabilities', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, scenario);
    assert.deepEqual((await scan(h, ['--ignore-unfixed'])).vulns.map(statusOf), ['fixed']);
    assert.deepEqual((await scan(h, [], { TRIVY_IGNORE_UNFIXED: 'true' })).vulns.map(statusOf), ['fixed']);
    assert.equal((await scan(h, ['--ignore-unfixed=false'], { TRIVY_IGNORE_UNFIXED: 'true' })).vulns.length, 8);
  });

  test(
    "--ignore-status drops those statuses and wins over --ignore-unfixed, with Trivy's warning",
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const { vulns, stderr } = await scan(h, ['--ignore-unfixed'], { TRIVY_IGNORE_STATUS: 'affected,will_not_fix' });
      assert.equal(vulns.length, 6);
      assert.ok(!vulns.some((v) => ['affected', 'will_not_fix'].includes(statusOf(v)!)));
      assert.match(stderr, /\tWARN\t'--ignore-unfixed' is ignored because '--ignore-status' is specified/);
    },
  );

  test(
    '.trivyignore in the working directory drops its IDs; expired and malformed lines do not',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const all = (await scan(h)).vulns.map((v) => v.split(' ')[0]!);
      const [first, second, third] = all;
      const ignore = ['# accepted risks', `${first}`, `${second} exp:2000-01-01`, `${third} exp:someday`, ''].join(
        '\n',
      );
      const cwd = await workDir(h, { '.trivyignore': ignore });
      const { vulns, stderr } = await scan(h, [], {}, cwd);
      assert.deepEqual(
        vulns.map((v) => v.split(' ')[0]),
        all.filter((id) => id !== first),
      );
      assert.match(stderr, /\tWARN\tError while parsing expiration date in \.trivyignore file/);
      const elsewhere = await workDir(h, { 'accepted.txt': `${second}\n` });
      const byVariable = await scan(h, [], { TRIVY_IGNOREFILE: path.join(elsewhere, 'accepted.txt') }, cwd);
      assert.deepEqual(
        byVariable.vulns.map((v) => v.split(' ')[0]),
        all.filter((id) => id !== second),
        'TRIVY_IGNOREFILE replaces the default .trivyignore',
      );
    },
  );

  test(
    'trivy.yaml in the working directory and $TRIVY_CONFIG set filters; flags and variables win over them',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const yaml = ['# team defaults', 'vulnerability:', '  ignore-unfixed: true', 'severity:', '- LOW', ''].join('\n');
      const cwd = await workDir(h, { 'trivy.yaml': yaml });
      const fromCwd = await scan(h, [], {}, cwd);
      assert.deepEqual(fromCwd.vulns.map(statusOf), ['fixed']);
      assert.match(fromCwd.stderr, /\tINFO\tLoaded\tfile_path="trivy\.yaml"/);
      assert.equal((await scan(h, ['--severity', 'CRITICAL'], {}, cwd)).vulns.length, 0, 'the flag wins');
      assert.equal((await scan(h, [], { TRIVY_IGNORE_UNFIXED: 'false' }, cwd)).vulns.length, 8, 'the variable wins');

      const other = await workDir(h, { 'other.yaml': 'vulnerability:\n  ignore-status: [affected, "fixed"]\n' });
      const byVariable = await scan(h, [], { TRIVY_CONFIG: path.join(other, 'other.yaml') }, cwd);
      assert.equal(byVariable.vulns.length, 6, '$TRIVY_CONFIG is read instead of ./trivy.yaml');
      const missing = await scan(h, [], { TRIVY_CONFIG: path.join(other, 'missing.yaml') });
      assert.equal(missing.vulns.length, 8, 'a missing $TRIVY_CONFIG is ignored, as a missing ./trivy.yaml is');
    },
  );

  test(
    '--config naming a missing file is a FATAL error; YAML the stand-in cannot read stops it',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, scenario);
      const missing = await h.run(['--config', 'nope.yaml', 'image', '--cache-dir', h.cacheDir, REF]);
      assert.equal(missing.code, 1);
      assert.match(
        missing.stderr,
        /\tFATAL\tFatal error\tconfig file "nope\.yaml" loading error: open nope\.yaml: no such file or directory\n$/,
      );
      const cwd = await workDir(h, { 'trivy.yaml': 'severity: &anchor [LOW]\n' });
      const unreadable = await h.run(['image', '--cache-dir', h.cacheDir, REF], {}, cwd);
      assert.equal(unreadable.code, 99);
      assert.match(unreadable.stderr, /YAML the stand-in does not read/);
    },
  );
});

// ---------------------------------------------------------------- SBOM-ready reports, trivy convert

/** pkg/fanal/types Package field order (the subset a report can carry). */
const PACKAGE_FIELD_ORDER = [
  'ID',
  'Name',
  'Identifier',
  'Version',
  'Release',
  'Epoch',
  'Arch',
  'Dev',
  'SrcName',
  'SrcVersion',
  'SrcRelease',
  'SrcEpoch',
  'Licenses',
  'Maintainer',
  'ExternalReferences',
  'Modularitylabel',
  'BuildInfo',
  'Indirect',
  'Relationship',
  'DependsOn',
  'Layer',
  'FilePath',
  'Digest',
  'Locations',
  'InstalledFiles',
  'AnalyzedBy',
];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SBOM_ONLY_FIXTURE = fixture('trivy', 'sbom', 'trivy-v0.69.3_fluentd-image_cyclonedx-sbom-only.cdx.json');

function isInOrder(keys: string[], order: string[]): boolean {
  const positions = keys.map((key) => order.indexOf(key));
  return positions.every((position, i) => position >= 0 && (i === 0 || position > positions[i - 1]!));
}

/** Unique (PkgID, PkgPath) of a Result's vulnerabilities: what a real --list-all-pkgs report lists at least. */
function vulnerablePackages(result: Json): string[] {
  return [
    ...new Set(((result.Vulnerabilities as Json[] | undefined) ?? []).map((v) => `${v.PkgID}|${v.PkgPath ?? ''}`)),
  ].sort();
}

async function scanToFile(h: Harness, ref: string, extra: string[] = []): Promise<string> {
  const out = path.join(h.dir, `${ref.replace(/[/:@]/g, '_')}${extra.join('')}.json`);
  const result = await h.run(['image', '-f', 'json', '-q', '-o', out, '--cache-dir', h.cacheDir, ...extra, ref]);
  assert.equal(result.code, 0, result.stderr);
  return out;
}

describe('trivy image: SBOM-ready reports (--list-all-pkgs)', () => {
  const images = {
    [JUICE_SHOP_REF]: { report: JUICE_SHOP, digest: DIGEST },
    'debian:10': { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json' },
    'app:1': { report: 'trivy-v0.69.3_npm-repository_with-Packages-list.json' },
  };

  test(
    "Packages are listed from the vulnerabilities' packages, in Trivy's field and Result order, severity-independent",
    SLOW_TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const report = await readJson(await scanToFile(h, JUICE_SHOP_REF));
      const critical = await readJson(await scanToFile(h, JUICE_SHOP_REF, ['--severity=CRITICAL']));
      const original = await readJson(reportPath(JUICE_SHOP));

      for (const [index, result] of (report.Results as Json[]).entries()) {
        if (result.Class === 'secret') {
          assert.equal(result.Packages, undefined);
          continue;
        }
        assert.deepEqual(Object.keys(result), ['Target', 'Class', 'Type', 'Packages', 'Vulnerabilities']);
        const listed = (result.Packages as Json[]).map((p) => `${p.ID}|${p.FilePath ?? ''}`).sort();
        assert.deepEqual(listed, vulnerablePackages(original.Results[index]), result.Target);
        for (const pkg of result.Packages as Json[])
          assert.ok(isInOrder(Object.keys(pkg), PACKAGE_FIELD_ORDER), JSON.stringify(Object.keys(pkg)));
        const names = (result.Packages as Json[]).map((p) => `${p.Name}\u0000${p.Version}\u0000${p.FilePath ?? ''}`);
        assert.deepEqual(names, [...names].sort(), 'sorted by name, version, path');
      }
      const [alpine, node] = report.Results as [Json, Json];
      assert.equal(alpine.Packages.length, 10);
      assert.deepEqual(alpine.Packages[0], {
        ID: 'apk-tools@2.10.4-r3',
        Name: 'apk-tools',
        Identifier: { PURL: 'pkg:apk/alpine/apk-tools@2.10.4-r3?arch=x86_64&distro=3.11.5', UID: '36a5b04d7612c890' },
        Version: '2.10.4-r3',
        Arch: 'x86_64',
        Layer: {
          Digest: 'sha256:aad63a9339440e7c3e1fff2b988991b9bfb81280042fa7f39a5e327023056819',
          DiffID: 'sha256:beee9f30bc1f711043e78d4a2be0668955d4b761d587d6f60c2c8dc081efb203',
        },
      });
      assert.ok(
        (node.Packages as Json[]).every((p) => typeof p.FilePath === 'string' && p.FilePath.endsWith('package.json')),
      );
      // --severity filters findings, not the package inventory
      assert.deepEqual(
        (critical.Results as Json[]).map((r) => r.Packages?.length),
        (report.Results as Json[]).map((r) => r.Packages?.length),
      );
      assert.ok(allVulns(critical).length < allVulns(report).length);
    },
  );

  test(
    'dpkg versions are split into Version, Release and Epoch; existing Packages are kept as captured; --list-all-pkgs=false strips',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const debian = await readJson(await scanToFile(h, 'debian:10'));
      const npm = await readJson(await scanToFile(h, 'app:1'));
      const without = await readJson(await scanToFile(h, 'debian:10', ['--list-all-pkgs=false']));
      const old = await readJson(await scanToFile(await setup(t, { images, version: '0.66.0' }), 'debian:10'));

      assert.deepEqual(
        (debian.Results[0].Packages as Json[]).map((p) => [p.ID, p.Version, p.Release, p.Arch]),
        [
          ['bash@5.0-4', '5.0', '4', 'amd64'],
          ['libidn2-0@2.0.5-1', '2.0.5', '1', 'amd64'],
        ],
      );
      const realNpm = await readJson(reportPath('trivy-v0.69.3_npm-repository_with-Packages-list.json'));
      assert.deepEqual(npm.Results[0].Packages, realNpm.Results[0].Packages);
      assert.ok((without.Results as Json[]).every((r) => !('Packages' in r)));
      assert.ok(
        (old.Results as Json[]).every((r) => !('Packages' in r)),
        'before 0.67 the default is false',
      );
    },
  );
});

describe('trivy convert', () => {
  const images = {
    [JUICE_SHOP_REF]: { report: JUICE_SHOP, digest: DIGEST },
    'debian:10': { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json' },
    'app:1': { report: 'trivy-v0.69.3_npm-repository_with-Packages-list.json' },
  };

  test(
    "--format cyclonedx writes CycloneDX 1.6 in the shape of Trivy 0.69's, one component per package",
    SLOW_TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const reportFile = await scanToFile(h, JUICE_SHOP_REF);
      const report = await readJson(reportFile);
      const bomFile = path.join(h.dir, 'bom.cdx.json');

      const result = await h.run(['convert', '--format', 'cyclonedx', '--output', bomFile, reportFile]);

      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(
        result.stderr,
        /\tINFO\t"--format cyclonedx" disables security scanning\. Specify "--scanners vuln" explicitly/,
      );
      const bom = await readJson(bomFile);
      const real = await readJson(SBOM_ONLY_FIXTURE);
      assert.deepEqual(Object.keys(bom), Object.keys(real));
      assert.equal(bom.$schema, 'http://cyclonedx.org/schema/bom-1.6.schema.json');
      assert.deepEqual([bom.bomFormat, bom.specVersion, bom.version], ['CycloneDX', '1.6', 1]);
      assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f-]{36}$/);
      assert.match(bom.metadata.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
      assert.deepEqual(keyShape(bom.metadata.tools), keyShape(real.metadata.tools));
      assert.equal(bom.metadata.tools.components[0].version, '0.69.3');

      const root = bom.metadata.component;
      assert.deepEqual(Object.keys(root), ['bom-ref', 'type', 'name', 'purl', 'properties']);
      assert.deepEqual([root.type, root.name], ['container', JUICE_SHOP_REF]);
      assert.equal(
        root.purl,
        `pkg:oci/juice-shop@sha256%3A${'ab'.repeat(32)}?arch=amd64&repository_url=index.docker.io%2Fbkimminich%2Fjuice-shop`,
      );
      assert.equal(root['bom-ref'], root.purl);
      const props = (root.properties as Json[]).map((p) => p.name.replace('aquasecurity:trivy:', ''));
      assert.deepEqual([...new Set(props)], ['DiffID', 'ImageID', 'RepoDigest', 'RepoTag', 'SchemaVersion']);
      assert.ok(
        (root.properties as Json[]).some(
          (p) => p.name === 'aquasecurity:trivy:RepoDigest' && p.value === `bkimminich/juice-shop@${DIGEST}`,
        ),
      );

      const packages = (report.Results as Json[]).flatMap((r) => (r.Packages as Json[] | undefined) ?? []);
      const libraries = (bom.components as Json[]).filter((c) => c.type === 'library');
      const os = (bom.components as Json[]).find((c) => c.type === 'operating-system')!;
      assert.equal(libraries.length, packages.length);
      assert.equal(bom.components.length, packages.length + 1, 'node-pkg aggregates: no application component');
      assert.deepEqual(os, {
        'bom-ref': os['bom-ref'],
        type: 'operating-system',
        name: 'alpine',
        version: '3.11.5',
        properties: [
          { name: 'aquasecurity:trivy:Class', value: 'os-pkgs' },
          { name: 'aquasecurity:trivy:Type', value: 'alpine' },
        ],
      });
      assert.match(os['bom-ref'], UUID);
      const realLibraryKeys = [
        'bom-ref',
        'type',
        'supplier',
        'group',
        'name',
        'version',
        'hashes',
        'licenses',
        'purl',
        'properties',
      ];
      for (const library of libraries) {
        assert.ok(isInOrder(Object.keys(library), realLibraryKeys), JSON.stringify(Object.keys(library)));
        assert.ok(library['bom-ref'] === library.purl || UUID.test(library['bom-ref']), library['bom-ref']);
        assert.ok((library.properties as Json[]).some((p) => p.name === 'aquasecurity:trivy:PkgType'));
      }
      const apk = libraries.find((c) => c.name === 'apk-tools')!;
      assert.deepEqual(apk, {
        'bom-ref': 'pkg:apk/alpine/apk-tools@2.10.4-r3?arch=x86_64&distro=3.11.5',
        type: 'library',
        name: 'apk-tools',
        version: '2.10.4-r3',
        purl: 'pkg:apk/alpine/apk-tools@2.10.4-r3?arch=x86_64&distro=3.11.5',
        properties: [
          {
            name: 'aquasecurity:trivy:LayerDiffID',
            value: 'sha256:beee9f30bc1f711043e78d4a2be0668955d4b761d587d6f60c2c8dc081efb203',
          },
          {
            name: 'aquasecurity:trivy:LayerDigest',
            value: 'sha256:aad63a9339440e7c3e1fff2b988991b9bfb81280042fa7f39a5e327023056819',
          },
          { name: 'aquasecurity:trivy:PkgID', value: 'apk-tools@2.10.4-r3' },
          { name: 'aquasecurity:trivy:PkgType', value: 'alpine' },
        ],
      });
      // PURLs used by several packages (the same npm module in two places) get UUID bom-refs, all of them
      const purlCounts = new Map<string, number>();
      for (const library of libraries) purlCounts.set(library.purl, (purlCounts.get(library.purl) ?? 0) + 1);
      for (const library of libraries) assert.equal(UUID.test(library['bom-ref']), purlCounts.get(library.purl)! > 1);

      const refs = (bom.dependencies as Json[]).map((d) => d.ref);
      assert.deepEqual(refs, [...refs].sort(), 'sorted like the fixture');
      assert.equal(bom.dependencies.length, Number(bom.components.length) + 1);
      const byRef = new Map((bom.dependencies as Json[]).map((d) => [d.ref, d.dependsOn as string[]]));
      assert.equal(byRef.get(os['bom-ref'])!.length, 10);
      assert.equal(byRef.get(root['bom-ref'])!.length, 1 + Number(report.Results[1].Packages.length));
      assert.deepEqual(bom.vulnerabilities, []);
      const componentRefs = (bom.components as Json[]).map((c) => c['bom-ref']);
      assert.deepEqual(componentRefs, [...componentRefs].sort());
      assert.equal(new Set(componentRefs).size, componentRefs.length);

      const [invocation] = (await readInvocations(h.logPath)).filter((i) => i.argv[0] === 'convert');
      assert.deepEqual([invocation?.behaviour, invocation?.exitCode], ['convert', 0]);
      assert.deepEqual(invocation?.argv, ['convert', '--format', 'cyclonedx', '--output', bomFile, reportFile]);
    },
  );

  test(
    'the SBOMs it writes are accepted by the Ephor stand-in (gzip; cyclonedx and spdx)',
    SLOW_TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const reportFile = await scanToFile(h, JUICE_SHOP_REF);
      const cdx = await h.run(['convert', '-f', 'cyclonedx', '-q', reportFile]);
      const spdx = await h.run(['conv', '-f', 'spdx-json', '-q', reportFile]);
      assert.deepEqual([cdx.code, spdx.code], [0, 0], cdx.stderr + spdx.stderr);
      const ephor = await startEphorServer();
      t.after(() => ephor.close());
      const post = (format: string, sbom: unknown) =>
        fetch(`${ephor.url}/api/v1/sbom/ingest`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: gzipSync(JSON.stringify({ image_reference: JUICE_SHOP_REF, image_digest: DIGEST, format, sbom })),
        });

      const created = await post('cyclonedx', JSON.parse(cdx.stdout));
      const createdSpdx = await post('spdx', JSON.parse(spdx.stdout));
      const again = await post(
        'cyclonedx',
        JSON.parse((await h.run(['convert', '-f', 'cyclonedx', '-q', reportFile])).stdout),
      );

      assert.deepEqual(
        [created.status, createdSpdx.status, again.status],
        [201, 201, 200],
        'new serialNumber and UUIDs, same packages: a dedup hit',
      );
      const [stored] = ephor.sboms();
      assert.equal(stored?.imageDigest, DIGEST);
      assert.equal((stored?.document.components as Json[]).length, 134);
    },
  );

  test(
    'a report scanned with --list-all-pkgs=false converts without complaint into an SBOM with no packages',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const reportFile = await scanToFile(h, 'debian:10', ['--list-all-pkgs=false']);
      const result = await h.run(['convert', '--format', 'cyclonedx', '--quiet', reportFile]);
      assert.equal(result.code, 0);
      assert.equal(result.stderr, '');
      const bom = JSON.parse(result.stdout) as Json;
      assert.deepEqual(
        (bom.components as Json[]).map((c) => c.type),
        ['operating-system'],
      );
      assert.equal(bom.metadata.component['bom-ref'].length, 36, 'no RepoDigests: a UUID, no purl');
      assert.equal(bom.metadata.component.purl, undefined);
    },
  );

  test(
    'lockfile results become application components; --scanners vuln adds vulnerabilities with ratings and affects',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const npm = JSON.parse(
        (await h.run(['convert', '-f', 'cyclonedx', '-q', await scanToFile(h, 'app:1')])).stdout,
      ) as Json;
      const app = (npm.components as Json[]).find((c) => c.type === 'application')!;
      assert.deepEqual(
        [app.name, app.properties],
        [
          'package-lock.json',
          [
            { name: 'aquasecurity:trivy:Class', value: 'lang-pkgs' },
            { name: 'aquasecurity:trivy:Type', value: 'npm' },
          ],
        ],
      );
      assert.equal(npm.metadata.component.type, 'application', 'ArtifactType repository');
      const dependsOn = new Map((npm.dependencies as Json[]).map((d) => [d.ref, d.dependsOn as string[]]));
      assert.deepEqual(dependsOn.get(npm.metadata.component['bom-ref']), [app['bom-ref']]);
      assert.ok(dependsOn.get(app['bom-ref'])!.length > 0);

      const debianReport = await scanToFile(h, 'debian:10');
      const bov = JSON.parse(
        (await h.run(['convert', '-f', 'cyclonedx', '--scanners', 'vuln', '-q', debianReport])).stdout,
      ) as Json;
      const realBov = await readJson(
        fixture('trivy', 'sbom', 'trivy-v0.69.3_fluentd-sbom-input_cyclonedx-with-vulns.cdx.json'),
      );
      assert.equal(bov.vulnerabilities.length, allVulns(await readJson(debianReport)).length);
      const refs = new Set((bov.components as Json[]).map((c) => c['bom-ref']));
      for (const vuln of bov.vulnerabilities as Json[]) {
        assert.ok(
          isInOrder(Object.keys(vuln), Object.keys(realBov.vulnerabilities[0])),
          JSON.stringify(Object.keys(vuln)),
        );
        assert.ok((vuln.affects as Json[]).every((a) => refs.has(a.ref)));
        assert.ok(
          (vuln.ratings as Json[]).every((r) =>
            ['low', 'medium', 'high', 'critical', 'none', 'unknown'].includes(r.severity),
          ),
        );
      }
      const nvd31 = (bov.vulnerabilities[0].ratings as Json[]).find(
        (r) => r.source.name === 'nvd' && r.method === 'CVSSv31',
      );
      assert.ok(nvd31 && typeof nvd31.score === 'number' && nvd31.vector.startsWith('CVSS:3.1/'));
    },
  );

  test(
    '--format spdx-json: SPDX 2.3 with purls and DESCRIBES/CONTAINS relationships; json and table pass through',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images });
      const reportFile = await scanToFile(h, 'debian:10');
      const doc = JSON.parse((await h.run(['convert', '-f', 'spdx-json', '-q', reportFile])).stdout) as Json;
      assert.deepEqual(Object.keys(doc), [
        'spdxVersion',
        'dataLicense',
        'SPDXID',
        'name',
        'documentNamespace',
        'creationInfo',
        'packages',
        'relationships',
      ]);
      assert.deepEqual(
        [doc.spdxVersion, doc.dataLicense, doc.SPDXID, doc.name],
        ['SPDX-2.3', 'CC0-1.0', 'SPDXRef-DOCUMENT', 'debian:10'],
      );
      assert.deepEqual(doc.creationInfo.creators, ['Organization: aquasecurity', 'Tool: trivy-0.69.3']);
      assert.deepEqual(
        (doc.packages as Json[]).map((p) => [p.name, p.versionInfo, p.primaryPackagePurpose]),
        [
          ['debian:10', undefined, 'CONTAINER'],
          ['debian', '10.1', 'OPERATING-SYSTEM'],
          ['bash', '5.0-4', 'LIBRARY'],
          ['libidn2-0', '2.0.5-1', 'LIBRARY'],
        ],
      );
      assert.equal(
        doc.packages[2].externalRefs[0].referenceLocator,
        'pkg:deb/debian/bash@5.0-4?arch=amd64&distro=debian-10.1',
      );
      assert.deepEqual(
        (doc.relationships as Json[]).map((r) => r.relationshipType),
        ['DESCRIBES', 'CONTAINS', 'CONTAINS', 'CONTAINS'],
      );

      const asJson = await h.run(['convert', '-f', 'json', '--severity', 'CRITICAL', '-q', reportFile]);
      assert.deepEqual(
        allVulns(JSON.parse(asJson.stdout) as Json).map((v) => v.Severity),
        ['CRITICAL'],
      );
      const asTable = await h.run(['convert', '-q', reportFile]);
      assert.match(asTable.stdout, /^\ndebian:10 \(debian 10\.1\) \(debian\)\n=+\nTotal: 2 /);
    },
  );

  test(
    'what real convert refuses: no or two arguments, a missing or unreadable file, not a report, AWS/k8s reports',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, {});
      const write = async (name: string, text: string) => {
        const file = path.join(h.dir, name);
        await fs.writeFile(file, text);
        return file;
      };
      const cases: Array<[string[], RegExp]> = [
        [['convert', '-f', 'cyclonedx'], /\tFATAL\tFatal error\tRequire at least 1 argument\n$/],
        [['convert', 'a.json', 'b.json'], /\tFatal error\tmultiple targets cannot be specified\n$/],
        [
          ['convert', path.join(h.dir, 'nope.json')],
          new RegExp(`\\tFatal error\\tfile open error: open ${h.dir}/nope\\.json: no such file or directory\\n$`),
        ],
        [['convert', await write('empty.json', '')], /\tFatal error\tjson decode error: EOF\n$/],
        [
          ['convert', await write('garbage.json', 'panic: oops')],
          /\tFatal error\tjson decode error: invalid character 'p' looking for beginning of value\n$/,
        ],
        [
          ['convert', await write('half.json', '{"SchemaVersion": 2, "ArtifactName": "x')],
          /\tFatal error\tjson decode error: unexpected EOF\n$/,
        ],
        [
          ['convert', await write('list.json', '[]')],
          /\tFatal error\tjson decode error: json: cannot unmarshal array into Go value of type types\.Report\n$/,
        ],
        [
          ['convert', await write('k8s.json', '{"ClusterName":"kind","Resources":[]}')],
          /\tFatal error\tAWS and Kubernetes scanning reports are not yet supported\n$/,
        ],
        [
          ['convert', '--format', 'xml', await write('ok.json', '{"ArtifactName":"x"}')],
          /invalid argument "xml" for "--format" flag/,
        ],
        [
          [
            'convert',
            '-o',
            path.join(h.dir, 'missing-dir', 'bom.json'),
            '-f',
            'cyclonedx',
            path.join(h.dir, 'ok.json'),
          ],
          new RegExp(
            `\\tFatal error\\tunable to write results: failed to create an output file: open ${h.dir}/missing-dir/bom\\.json: no such file or directory\\n$`,
          ),
        ],
      ];
      for (const [args, stderr] of cases) {
        const result = await h.run(args);
        assert.equal(result.code, 1, args.join(' '));
        assert.match(result.stderr, stderr, args.join(' '));
      }
      const noArgs = await h.run(['convert']);
      assert.match(
        noArgs.stdout,
        /^Convert Trivy JSON report into a different format\n\nUsage:\n {2}trivy convert \[flags\] RESULT_JSON\n/,
      );
    },
  );
});

// ---------------------------------------------------------------- DB download per repository

describe('DB download: outcome per repository', () => {
  const MIRROR = 'mirror.gcr.io/aquasec/trivy-db:2';
  const GHCR = 'ghcr.io/aquasecurity/trivy-db:2';

  test(
    "a temporary failure on the default mirror falls back to ghcr.io, with Trivy's log lines",
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { db: { download: { [MIRROR]: 'db-toomanyrequests-real-2024' } } });
      const result = await h.run(['image', '--download-db-only', '--no-progress', '--cache-dir', h.cacheDir]);

      assert.equal(result.code, 0, result.stderr);
      const lines = result.stderr
        .trim()
        .split('\n')
        .map((line) => line.split('\t').slice(1).join('\t'));
      assert.deepEqual(lines, [
        'INFO\t[vulndb] Need to update DB',
        'INFO\t[vulndb] Downloading vulnerability DB...',
        `INFO\t[vulndb] Downloading artifact...\trepo="${MIRROR}"`,
        `ERROR\t[vulndb] Failed to download artifact\trepo="${MIRROR}" err="OCI repository error: 1 error occurred:\\n\\t* GET https://mirror.gcr.io/v2/aquasec/trivy-db/manifests/2: TOOMANYREQUESTS: retry-after: 571.072µs, allowed: 44000/minute\\n\\n"`,
        'INFO\t[vulndb] Trying to download artifact from other repository...',
        `INFO\t[vulndb] Downloading artifact...\trepo="${GHCR}"`,
        `INFO\t[vulndb] Artifact successfully downloaded\trepo="${GHCR}"`,
      ]);
      assert.ok(existsSync(path.join(h.cacheDir, 'db', 'metadata.json')));
      const [invocation] = await readInvocations(h.logPath);
      assert.deepEqual(invocation?.downloadedFrom, { vuln: GHCR });
    },
  );

  test(
    'a non-temporary failure stops at that repository; an untagged --db-repository gets :2 and matches its key',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, {
        db: { download: { 'bad.mirror/db:2': 'db-network-unreachable-real-2024', default: 'ok' } },
      });
      const result = await h.run([
        'image',
        '--download-db-only',
        '--db-repository',
        'bad.mirror/db',
        '--db-repository',
        GHCR,
        '--cache-dir',
        h.cacheDir,
      ]);

      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /\tINFO\t\[vulndb\] Adding schema version to the DB repository for backward compatibility\trepository="bad\.mirror\/db:2"\n/,
      );
      assert.match(result.stderr, /\tINFO\t\[vulndb\] Downloading artifact\.\.\.\trepo="bad\.mirror\/db:2"\n/);
      assert.ok(
        result.stderr.endsWith(
          '\tFATAL\tFatal error\trun error: init error: DB error: failed to download vulnerability DB: OCI artifact error: failed to download vulnerability DB: ' +
            'failed to download artifact from bad.mirror/db:2: OCI repository error: 1 error occurred:\n\t* Get "https://bad.mirror/v2/": dial tcp 74.125.197.82:443: connectex: ' +
            'A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond\n\n\n',
        ),
        result.stderr,
      );
      assert.doesNotMatch(result.stderr, /ghcr\.io/, 'the next repository is not tried');
      assert.equal(existsSync(path.join(h.cacheDir, 'db', 'metadata.json')), false);
      const [invocation] = await readInvocations(h.logPath);
      assert.equal(invocation?.behaviour, 'fail:db-network-unreachable-real-2024');
    },
  );

  test(
    'every repository failing temporarily ends in "any source" with the errors listed; a scan fails the same way',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, {
        db: { download: { default: 'db-toomanyrequests-real-2024' } },
        images: { 'alpine:3.10': { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' } },
      });
      for (const args of [
        ['image', '--download-db-only'],
        ['image', '-f', 'json', 'alpine:3.10'],
      ]) {
        const result = await h.run([...args, '--cache-dir', h.cacheDir]);
        assert.equal(result.code, 1, args.join(' '));
        assert.equal(result.stdout, '');
        const fatal = result.stderr.slice(result.stderr.indexOf('\tFATAL\t'));
        assert.equal(
          fatal,
          '\tFATAL\tFatal error\trun error: init error: DB error: failed to download vulnerability DB: OCI artifact error: failed to download vulnerability DB: ' +
            'failed to download artifact from any source: 2 errors occurred:\n' +
            '\t* OCI repository error: 1 error occurred:\n\t* GET https://mirror.gcr.io/v2/aquasec/trivy-db/manifests/2: TOOMANYREQUESTS: retry-after: 571.072µs, allowed: 44000/minute\n\n\n' +
            '\t* OCI repository error: 1 error occurred:\n\t* GET https://ghcr.io/v2/aquasecurity/trivy-db/manifests/2: TOOMANYREQUESTS: retry-after: 571.072µs, allowed: 44000/minute\n\n\n\n\n',
        );
        assert.equal((result.stderr.match(/Trying to download artifact from other repository/g) ?? []).length, 1);
      }
      const versions = await readInvocations(h.logPath);
      assert.deepEqual(
        versions.map((i) => i.behaviour),
        ['vuln-db-download-failed', 'vuln-db-download-failed'],
      );
    },
  );

  test('the Java DB has its own per-repository outcomes and default repositories', TEST_TIMEOUT, async (t) => {
    const h = await setup(t, {
      javaDb: { download: { 'mirror.gcr.io/aquasec/trivy-java-db:1': 'db-toomanyrequests-real-2024' } },
    });
    const result = await h.run(['image', '--download-java-db-only', '--quiet', '--cache-dir', h.cacheDir]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(path.join(h.cacheDir, 'java-db', 'metadata.json')));
    const [invocation] = await readInvocations(h.logPath);
    assert.deepEqual(invocation?.downloadedFrom, { java: 'ghcr.io/aquasecurity/trivy-java-db:1' });
    const loud = await h.run(['image', '--download-java-db-only', '--cache-dir', path.join(h.dir, 'other-cache')]);
    assert.match(
      loud.stderr,
      /\tERROR\t\[javadb\] Failed to download artifact\trepo="mirror\.gcr\.io\/aquasec\/trivy-java-db:1" err=".*https:\/\/mirror\.gcr\.io\/v2\/aquasec\/trivy-java-db\/manifests\/1: TOOMANYREQUESTS/,
    );
  });
});

// ---------------------------------------------------------------- Docker config keychain

describe('requireDockerConfigFor: the Docker keychain lookup', () => {
  const PRIVATE = 'registry.example.com:5000/team/app:2.1';
  const HUB = 'acme/private:1';
  const creds = { username: 'robot', password: 's3cret' };
  const auth = Buffer.from('robot:s3cret').toString('base64');
  const images = {
    [PRIVATE]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
    [HUB]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
  };

  async function scanWith(h: Harness, ref: string, auths: Record<string, Json>): Promise<number | null> {
    const dir = await fs.mkdtemp(path.join(h.dir, 'docker-'));
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths }));
    return (
      await h.run(['image', '--image-src', 'remote', '-f', 'json', '-q', '--cache-dir', h.cacheDir, ref], {
        DOCKER_CONFIG: dir,
      })
    ).code;
  }

  test(
    'a private registry is found under host, scheme://host, host/v1/ and host/repository keys, with auth or username/password',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, {
        images,
        requireDockerConfigFor: { [PRIVATE]: { registry: 'registry.example.com:5000', ...creds } },
      });
      for (const key of [
        'registry.example.com:5000',
        'https://registry.example.com:5000',
        'http://registry.example.com:5000',
        'registry.example.com:5000/v1/',
        'https://registry.example.com:5000/v2/',
        'registry.example.com:5000/team/app',
      ]) {
        assert.equal(await scanWith(h, PRIVATE, { [key]: { auth } }), 0, key);
      }
      assert.equal(await scanWith(h, PRIVATE, { 'registry.example.com:5000': creds }), 0, 'username/password');
      assert.equal(await scanWith(h, PRIVATE, { 'registry.example.com': { auth } }), 1, 'another host (no port)');
      assert.equal(
        await scanWith(h, PRIVATE, {
          'registry.example.com:5000': { auth: Buffer.from('robot:wrong').toString('base64') },
        }),
        1,
      );
      // the repository key is looked up first, and the first non-empty entry is the one used
      assert.equal(
        await scanWith(h, PRIVATE, {
          'registry.example.com:5000/team/app': { username: 'robot', password: 'old' },
          'registry.example.com:5000': { auth },
        }),
        1,
      );
    },
  );

  test(
    'Docker Hub is found only under https://index.docker.io/v1/ (or its repository key), not docker.io or index.docker.io',
    TEST_TIMEOUT,
    async (t) => {
      const h = await setup(t, { images, requireDockerConfigFor: { [HUB]: { registry: 'docker.io', ...creds } } });
      assert.equal(await scanWith(h, HUB, { 'https://index.docker.io/v1/': { auth } }), 0);
      assert.equal(await scanWith(h, HUB, { 'index.docker.io/acme/private': { auth } }), 0);
      for (const key of [
        'docker.io',
        'index.docker.io',
        'https://index.docker.io',
        'https://docker.io/v1/',
        'registry-1.docker.io',
      ]) {
        assert.equal(await scanWith(h, HUB, { [key]: { auth } }), 1, key);
      }
      const denied = await h.run(['image', '--image-src', 'remote', '-q', '--cache-dir', h.cacheDir, HUB], {
        DOCKER_CONFIG: path.join(h.dir, 'none'),
      });
      assert.match(
        denied.stderr,
        /GET https:\/\/index\.docker\.io\/v2\/acme\/private\/manifests\/1: UNAUTHORIZED: authentication required/,
      );
    },
  );

  test("a requirement naming another registry than the image's is a stand-in error", TEST_TIMEOUT, async (t) => {
    const h = await setup(t, { images, requireDockerConfigFor: { [HUB]: { registry: 'ghcr.io', ...creds } } });
    const result = await h.run(['image', '-q', '--cache-dir', h.cacheDir, HUB]);
    assert.equal(result.code, 99);
    assert.match(result.stderr, /registry is "ghcr\.io", but the image's registry is "index\.docker\.io"/);
  });
});
