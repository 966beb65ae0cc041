// What Trivy is allowed to see, and which Trivy the scanner runs at all, with the built CLI against the stand-ins:
// TRIVY_* filters of the scanner's environment, a .trivyignore and a trivy.yaml in its working directory must not
// remove findings (Ephor would mark them resolved), and a known-malicious Trivy release is refused before any scan.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ScanIngestRequest, WorkloadPayload } from '../../src/types.js';
import { FAKE_TRIVY_BIN, type FakeTrivyInvocation } from '../support/fake-trivy.js';
import { runScanner, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';
import { deployment } from '../support/k8s-objects.js';

const BUSTER = 'ghcr.io/acme/buster:1';
const DISTROLESS = 'ghcr.io/acme/distroless:1';
/** The fixed CRITICAL finding of the buster report, listed in the .trivyignore beside the scanner. */
const IGNORED_CVE = 'CVE-2019-18224';
const PASSWORD = 'registry-pw-4b1e9';
const WITHHELD = ['TRIVY_CONFIG', 'TRIVY_IGNORE_UNFIXED', 'TRIVY_PASSWORD', 'TRIVY_SEVERITY'];

function exitedWith(run: ScannerRun, code: number): void {
  assert.equal(run.exitCode, code, `exit code\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
}

function workloadsOf(standIns: StandIns, scanGroupId?: string): WorkloadPayload[] {
  const payloads = standIns.ephor
    .scanIngests()
    .map((r) => r.body as ScanIngestRequest)
    .filter((p) => scanGroupId === undefined || p.scan_group_id === scanGroupId);
  assert.equal(payloads.length, 1);
  return payloads[0]!.workloads;
}

const cves = (workloads: WorkloadPayload[]) =>
  workloads
    .flatMap((w) =>
      w.containers.flatMap((c) => c.vulnerabilities.map((v) => `${c.name} ${v.cve_id} ${v.package_name}`)),
    )
    .sort();

/** Runs the stand-in `trivy` itself, as the scanner would have without the rule: in `cwd`, with `env`. */
function trivyDirectly(args: string[], env: Record<string, string>, cwd: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(FAKE_TRIVY_BIN, args, { env, cwd, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', resolve);
  });
}

describe('no hidden filters: TRIVY_* variables, .trivyignore, trivy.yaml', { timeout: 120_000 }, () => {
  let standIns: StandIns;
  let baseline: ScannerRun;
  let filtered: ScannerRun;
  let invocations: FakeTrivyInvocation[];
  let check: ScannerRun;
  let scannerCwd: string;
  let userEnv: Record<string, string>;

  before(async () => {
    standIns = await startStandIns({
      cluster: {
        objects: [
          deployment({ namespace: 'shop', name: 'buster', containers: [{ name: 'buster', image: BUSTER }] }),
          deployment({
            namespace: 'shop',
            name: 'distroless',
            containers: [{ name: 'distroless', image: DISTROLESS }],
          }),
        ],
      },
      trivy: {
        images: {
          [BUSTER]: { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json' },
          [DISTROLESS]: { report: 'trivy-v0.69.3_distroless-base_debian.json' },
        },
      },
    });
    const env = { ...standIns.env, SCAN_NAMESPACES: 'shop' };
    baseline = await runScanner(env, { timeoutMs: 60_000 });

    // What a user may have around the scanner: each of these alone would remove findings from Trivy's report.
    scannerCwd = path.join(standIns.dir, 'scanner-cwd');
    await mkdir(scannerCwd);
    await writeFile(path.join(scannerCwd, '.trivyignore'), `${IGNORED_CVE}\n`);
    await writeFile(path.join(scannerCwd, 'trivy.yaml'), 'vulnerability:\n  ignore-status:\n    - fixed\n');
    const teamConfig = path.join(standIns.dir, 'team-trivy.yaml');
    await writeFile(teamConfig, 'vulnerability:\n  ignore-unfixed: true\n');
    userEnv = {
      TRIVY_IGNORE_UNFIXED: 'true',
      TRIVY_SEVERITY: 'CRITICAL',
      TRIVY_CONFIG: teamConfig,
      TRIVY_PASSWORD: PASSWORD,
      TRIVY_INSECURE: 'true',
    };
    const before = (await standIns.invocations()).length;
    filtered = await runScanner({ ...env, ...userEnv }, { timeoutMs: 60_000, cwd: scannerCwd });
    invocations = (await standIns.invocations()).slice(before);
    check = await runScanner({ ...env, ...userEnv }, { args: ['check'], timeoutMs: 60_000, cwd: scannerCwd });
  });
  after(() => standIns?.close());

  test('both runs deliver, and the findings are those of a run without the filters', () => {
    exitedWith(baseline, 0);
    exitedWith(filtered, 0);
    const [first, second] = standIns.ephor.scanIngests().map((r) => (r.body as ScanIngestRequest).scan_group_id);
    const withFilters = workloadsOf(standIns, second);
    assert.deepEqual(withFilters, workloadsOf(standIns, first));
    assert.deepEqual(cves(withFilters), [
      `buster ${IGNORED_CVE} libidn2-0`,
      'buster CVE-2019-18276 bash',
      'distroless CVE-2019-1551 libssl1.1',
      'distroless CVE-2019-1551 openssl',
      'distroless CVE-2019-1563 libssl1.1',
      'distroless CVE-2019-1563 openssl',
    ]);
  });

  test('without the rule those findings would have vanished: Trivy in that directory with that environment drops them', async () => {
    const report = path.join(standIns.dir, 'direct.json');
    const { TRIVY_BINARY: _binary, ...scannerEnv } = standIns.env;
    const code = await trivyDirectly(
      ['image', '--format', 'json', '--output', report, '--scanners', 'vuln', '--skip-db-update', BUSTER],
      { ...scannerEnv, ...userEnv },
      scannerCwd,
    );
    assert.equal(code, 0);
    const direct = JSON.parse(await readFile(report, 'utf8')) as { Results?: Array<{ Vulnerabilities?: unknown[] }> };
    assert.deepEqual(
      (direct.Results ?? []).flatMap((r) => r.Vulnerabilities ?? []),
      [],
      'ignore-unfixed drops the affected finding, .trivyignore the fixed one',
    );
  });

  test('no withheld variable reaches Trivy; an allowed one does; the scanner passes its own settings as flags', () => {
    assert.ok(invocations.length >= 4, `version, two DB downloads and two scans: ${invocations.length}`);
    for (const invocation of invocations) {
      for (const name of WITHHELD) assert.ok(!(name in invocation.env), `${invocation.argv.join(' ')} got ${name}`);
      assert.equal(invocation.env.TRIVY_INSECURE, 'true', invocation.argv.join(' '));
      assert.ok(!('TRIVY_CACHE_DIR' in invocation.env));
    }
  });

  test('every Trivy process runs in an empty directory of its own, removed when the scanner exits', () => {
    const dirs = new Set(invocations.map((i) => i.cwd));
    assert.equal(dirs.size, 1);
    const [dir] = dirs;
    assert.notEqual(dir, scannerCwd);
    assert.equal(path.dirname(dir!), path.join(standIns.dir, 'tmp'), "in the scanner's TMPDIR");
    for (const invocation of invocations) assert.deepEqual(invocation.cwdEntries, [], invocation.argv.join(' '));
    assert.ok(!existsSync(dir!));
  });

  test('one warning per withheld variable, naming it and why, never its value; none for allowed variables or settings', () => {
    const warnings = filtered.logs.filter((l) => l.level === 'warn' && typeof l.variable === 'string');
    assert.deepEqual(
      warnings.map((l) => l.variable),
      WITHHELD,
    );
    for (const warning of warnings) {
      assert.equal(warning.msg, `${warning.variable as string} is not passed to Trivy`);
      assert.ok(typeof warning.reason === 'string' && warning.reason.length > 20);
    }
    assert.match(
      String(warnings.find((w) => w.variable === 'TRIVY_IGNORE_UNFIXED')!.reason),
      /triage findings in Ephor/,
    );
    for (const value of [PASSWORD, userEnv.TRIVY_CONFIG!]) {
      assert.ok(!filtered.stdout.includes(value) && !filtered.stderr.includes(value), `${value} is never logged`);
    }
    assert.equal(baseline.logs.filter((l) => typeof l.variable === 'string').length, 0);
  });

  test('check warns about each withheld variable with the reason and the fix', () => {
    const lines = check.stdout.split('\n');
    for (const name of WITHHELD) {
      const index = lines.findIndex((l) => l.startsWith(`! trivy: ${name} is set but not passed to Trivy: `));
      assert.ok(index >= 0, `${name}:\n${check.stdout}`);
      assert.equal(lines[index + 1], "    fix: remove it from the scanner's environment (chart: extraEnv)");
    }
    assert.ok(!check.stdout.includes('TRIVY_INSECURE'), check.stdout);
    assert.ok(!check.stdout.includes(PASSWORD));
  });
});

describe('a known-malicious Trivy release', { timeout: 120_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  let check: ScannerRun;
  let requestsOfRun: unknown[];
  let invocationsOfRun: FakeTrivyInvocation[];
  before(async () => {
    standIns = await startStandIns({
      cluster: {
        objects: [deployment({ namespace: 'shop', name: 'web', containers: [{ name: 'web', image: BUSTER }] })],
      },
      trivy: { version: '0.69.4', images: { [BUSTER]: { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json' } } },
    });
    const env = { ...standIns.env, SCAN_NAMESPACES: 'shop' };
    run = await runScanner(env, { timeoutMs: 60_000 });
    requestsOfRun = [...standIns.ephor.requests];
    invocationsOfRun = await standIns.invocations();
    check = await runScanner(env, { args: ['check'], timeoutMs: 60_000 });
  });
  after(() => standIns?.close());

  test('a run exits 1 naming the advisory, having run nothing but `trivy version` and posted nothing', () => {
    exitedWith(run, 1);
    const error = run.logs.find((l) => l.level === 'error' && String(l.error).includes('GHSA-69fq-xp46-6x23'));
    assert.ok(error, run.stdout);
    assert.match(String(error.error), /^Trivy 0\.69\.4 is a malicious release/);
    assert.match(String(error.error), /install Trivy 0\.69\.3/);
    assert.deepEqual(
      invocationsOfRun.map((i) => i.argv.join(' ')),
      ['version --format json'],
      'no DB download and no scan',
    );
    assert.deepEqual(requestsOfRun, []);
  });

  test('check reports it as a blocker with the fix', () => {
    exitedWith(check, 1);
    const lines = check.stdout.split('\n');
    const index = lines.findIndex((l) => l.startsWith('✗ trivy: ') && l.includes('GHSA-69fq-xp46-6x23'));
    assert.ok(index >= 0, check.stdout);
    assert.match(lines[index]!, /Trivy 0\.69\.4 is a malicious release/);
    assert.match(lines[index + 1]!, /^ {4}fix: install Trivy 0\.69\.3 .*checksum/);
  });
});
