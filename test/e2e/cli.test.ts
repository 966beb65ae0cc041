// The command line as users and the container image use it: --help, --version, flags over variables, exit code 2
// for configuration errors with nothing contacted, and the bundle running alone (what the image ships).
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SETTINGS } from '../../src/config/settings.js';
import { deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, startStandIns } from '../support/harness.js';
import { CLI_BUNDLE, REPO_ROOT } from '../support/paths.js';

const PKG_VERSION = (await import('../../package.json', { with: { type: 'json' } })).default.version;

describe('command line', { timeout: 120_000 }, () => {
  test('--help lists every variable and the exit codes; --version prints the version', async () => {
    const help = await runScanner({ PATH: process.env.PATH }, { args: ['--help'] });
    assert.equal(help.exitCode, 0);
    for (const setting of SETTINGS) {
      assert.ok(help.stdout.includes(setting.env), `--help mentions ${setting.env}`);
      if (setting.flag) assert.ok(help.stdout.includes(setting.flag), `--help mentions ${setting.flag}`);
    }
    assert.match(help.stdout, /Exit codes: 0 every namespace delivered/);
    assert.match(
      help.stdout,
      /Switches \(true\/false settings\) take every form: --dry-run, --no-dry-run, --dry-run=false or --dry-run false/,
    );
    assert.match(help.stdout, /--dry-run \[true\|false\]/);
    assert.match(help.stdout, /--context <value> +The kubeconfig context to use/);
    const version = await runScanner({ PATH: process.env.PATH }, { args: ['--version'] });
    assert.equal(version.exitCode, 0);
    assert.equal(version.stdout.trim(), PKG_VERSION);
  });

  test('configuration errors: exit 2, every problem named, nothing contacted', async () => {
    const standIns = await startStandIns({ cluster: { objects: [] } });
    try {
      const run = await runScanner({
        ...standIns.env,
        SCAN_NAMESPACES: 'Bad_Name',
        SCAN_CONCURRENCY: '0',
        EPHOR_AUTH_VALUE: 'lonely-secret-xyz',
      });
      assert.equal(run.exitCode, 2);
      const [error] = logsWith(run, 'invalid configuration: nothing was contacted');
      assert.deepEqual(error!.errors, [
        'EPHOR_AUTH_VALUE is set but EPHOR_AUTH_HEADER is not; set both (the header is sent only with its value) or neither',
        'SCAN_NAMESPACES="Bad_Name" contains "Bad_Name", which is not a namespace name (lowercase letters, digits and \'-\', at most 63 characters, starting and ending with a letter or digit)',
        'SCAN_CONCURRENCY="0" must be an integer from 1 to 64',
      ]);
      assert.ok(!run.stdout.includes('lonely-secret-xyz'));
      assert.equal(standIns.kube.requests.length, 0);
      assert.equal(standIns.ephor.requests.length, 0);
      assert.deepEqual(await standIns.invocations(), []);
    } finally {
      await standIns.close();
    }
  });

  test('an unknown flag is a configuration error (exit 2)', async () => {
    const run = await runScanner({ PATH: process.env.PATH }, { args: ['--namespace', 'default'] });
    assert.equal(run.exitCode, 2);
    assert.match(run.stderr, /unknown option '--namespace'/);
  });

  test('flags override their variables; LOG_FORMAT=text gives readable lines', async () => {
    const standIns = await startStandIns({
      cluster: {
        objects: [
          deployment({ namespace: 'from-flag', name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] }),
        ],
      },
      trivy: { images: { 'docker.io/library/alpine:3.10': { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' } } },
    });
    try {
      const run = await runScanner(
        { ...standIns.env, SCAN_NAMESPACES: 'from-env', LOG_FORMAT: 'json' },
        { args: ['--namespaces', 'from-flag', '--log-format', 'text', '--severity', 'medium'] },
      );
      assert.equal(run.exitCode, 0, run.stdout);
      const [payload] = standIns.ephor.scanIngests();
      assert.equal((payload!.body as { namespace: string }).namespace, 'from-flag');
      assert.match(run.stdout, /^\S+Z INFO {2}ephor-scanner starting /m);
      assert.match(run.stdout, /^NAMESPACE +RESULT +WORKLOADS/m, 'text logs end with the summary table');
      const [scan] = await standIns.scans();
      assert.ok(scan!.argv.join(' ').includes('--severity MEDIUM'));
    } finally {
      await standIns.close();
    }
  });

  test('the bundle and its launcher, copied to an empty folder without node_modules (as in the image), run --help and a complete scan; the bundle alone too', async () => {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'ephor-bundle-'));
    const standIns = await startStandIns({
      cluster: {
        objects: [
          deployment({
            namespace: 'shop',
            name: 'web',
            containers: [{ name: 'app', image: 'bkimminich/juice-shop:v10.2.0' }],
          }),
        ],
      },
      trivy: {
        images: {
          'docker.io/bkimminich/juice-shop:v10.2.0': {
            report: 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json',
          },
        },
      },
    });
    try {
      const bundle = path.join(folder, 'ephor-scanner.mjs');
      const launcher = path.join(folder, 'trivy-launcher.mjs');
      await copyFile(CLI_BUNDLE, bundle);
      await copyFile(path.join(path.dirname(CLI_BUNDLE), 'trivy-launcher.mjs'), launcher);
      assert.deepEqual((await readdir(folder)).sort(), ['ephor-scanner.mjs', 'trivy-launcher.mjs']);
      assert.ok(!bundle.startsWith(REPO_ROOT));
      const help = await runScanner({ PATH: process.env.PATH }, { args: ['--help'], bundle });
      assert.equal(help.exitCode, 0);
      assert.match(help.stdout, /Usage: ephor-scanner/);
      const findingsSent = () =>
        standIns.ephor.scanIngests().map((r) => {
          assert.deepEqual(r.contractErrors, []);
          return (r.body as { workloads: Array<{ containers: Array<{ vulnerabilities: unknown[] }> }> }).workloads[0]!
            .containers[0]!.vulnerabilities.length;
        });
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'shop' }, { bundle });
      assert.equal(run.exitCode, 0, run.stdout + run.stderr);
      assert.deepEqual(findingsSent(), [197]);
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.ok(
        (summary!.resources as { launcher?: { cpu_user_s: number } }).launcher,
        'Trivy was started by the launcher',
      );

      // Without the launcher file the scanner starts Trivy itself: the same result.
      await rm(launcher);
      const alone = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'shop' }, { bundle });
      assert.equal(alone.exitCode, 0, alone.stdout + alone.stderr);
      assert.deepEqual(findingsSent(), [197, 197]);
      const [aloneSummary] = logsWith(alone, 'ephor-scanner completed');
      assert.equal((aloneSummary!.resources as { launcher?: unknown }).launcher, undefined, 'no launcher ran');
    } finally {
      await standIns.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
