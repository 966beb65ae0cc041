// CLI habits people bring from kubectl and other tools, run as the built CLI: LOG_FORMAT=auto (text at a terminal,
// JSON when piped, as in a CronJob), --kubeconfig and --context, every form of a switch, and a `check` that never
// contradicts itself and reports what a run reports, in the run's own words.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { logsWith, runScanner, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';
import { deployment } from '../support/k8s-objects.js';
import { CLI_BUNDLE } from '../support/paths.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';

async function shopStandIns(t: TestContext): Promise<StandIns> {
  const standIns = await startStandIns({
    cluster: {
      objects: [deployment({ namespace: 'shop', name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] })],
    },
    trivy: { images: { 'docker.io/library/alpine:3.10': { report: ALPINE } } },
  });
  t.after(() => standIns.close());
  return standIns;
}

/** The built CLI with stdout on a pseudo-terminal (util-linux `script`), as a person at a shell runs it. */
async function runInTerminal(env: Record<string, string>, args: string[] = []): Promise<{ code: number; out: string }> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, CLI_BUNDLE, ...args].map(quote).join(' ');
  // -q: no "Script started" lines; -e: script exits with the command's code; -c: run it; /dev/null: no typescript.
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  // Safety net only: killing script hangs up the terminal, which ends the scanner (SIGHUP).
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  assert.notEqual(code, null, `the scanner under script did not finish:\n${out}`);
  return { code: code!, out: out.replaceAll('\r\n', '\n') };
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The stand-in's kubeconfig with a second cluster and context "dead" (a closed loopback port) made the current one:
 * only --context ephor-stand-in (or KUBE_CONTEXT) reaches the stand-in.
 */
async function kubeconfigWithDeadCurrent(standIns: StandIns): Promise<string> {
  const config = YAML.parse(await readFile(standIns.env.KUBECONFIG!, 'utf8')) as {
    clusters: unknown[];
    contexts: unknown[];
    'current-context': string;
  };
  config.clusters.push({ name: 'dead', cluster: { server: `http://127.0.0.1:${await closedPort()}` } });
  config.contexts.push({ name: 'dead', context: { cluster: 'dead', user: 'ephor-scanner' } });
  config['current-context'] = 'dead';
  const file = path.join(standIns.dir, 'two-contexts.kubeconfig');
  await writeFile(file, YAML.stringify(config), { mode: 0o600 });
  return file;
}

/** The check's one rule about itself: "valid" and "invalid" never in the same report, and exit 2 iff invalid. */
function assertConsistent(run: ScannerRun): void {
  const valid = /^✓ configuration: valid/m.test(run.stdout);
  const invalid = /^✗ the configuration is invalid/m.test(run.stdout);
  assert.ok(!(valid && invalid), `the check contradicts itself:\n${run.stdout}`);
  assert.equal(run.exitCode === 2, invalid, `exit ${run.exitCode} with this verdict:\n${run.stdout}`);
  assert.equal(invalid, /^✗ configuration: /m.test(run.stdout), `verdict without its reason:\n${run.stdout}`);
}

describe('LOG_FORMAT=auto (the default)', { timeout: 180_000 }, () => {
  test('at a terminal a run logs readable text with the summary table; piped it logs JSON lines', async (t) => {
    const s = await shopStandIns(t);
    const env = { ...s.env, SCAN_NAMESPACES: 'shop' };
    const terminal = await runInTerminal(env);
    assert.equal(terminal.code, 0, terminal.out);
    assert.match(terminal.out, /^\S+Z INFO {2}ephor-scanner starting /m);
    assert.match(terminal.out, /^NAMESPACE +RESULT +WORKLOADS/m, 'the text summary table');
    assert.doesNotMatch(terminal.out, /^\{"level"/m, 'no JSON line at a terminal');

    const piped = await runScanner(env);
    assert.equal(piped.exitCode, 0, piped.stdout);
    assert.ok(piped.logs.length > 3);
    const lines = piped.stdout.trim().split('\n');
    assert.deepEqual(
      lines.filter((line) => !line.startsWith('{')),
      [],
      'every line is a JSON log line when stdout is a pipe',
    );
    assert.equal(logsWith(piped, 'ephor-scanner completed').length, 1);
  });

  test('an explicit LOG_FORMAT wins: json at a terminal, text in a pipe; a configuration error follows auto too', async (t) => {
    const s = await shopStandIns(t);
    const json = await runInTerminal({ ...s.env, SCAN_NAMESPACES: 'shop', LOG_FORMAT: 'json' });
    assert.equal(json.code, 0, json.out);
    assert.match(json.out, /^\{"level":"info".*"msg":"ephor-scanner starting"/m);
    const text = await runScanner({ ...s.env, SCAN_NAMESPACES: 'shop', LOG_FORMAT: 'text' });
    assert.match(text.stdout, /^\S+Z INFO {2}ephor-scanner starting /m);

    const invalid = await runInTerminal({ ...s.env, SCAN_NAMESPACES: 'shop', SCAN_CONCURRENCY: '0' });
    assert.equal(invalid.code, 2);
    assert.match(invalid.out, /^\S+Z ERROR invalid configuration: nothing was contacted .*errors=\["SCAN_CONCURRENCY/m);
    const invalidPiped = await runScanner({ ...s.env, SCAN_NAMESPACES: 'shop', SCAN_CONCURRENCY: '0' });
    assert.equal(logsWith(invalidPiped, 'invalid configuration: nothing was contacted').length, 1);
  });
});

describe('--kubeconfig and --context, as with kubectl', { timeout: 180_000 }, () => {
  test('the chosen context is used although the current one points at a dead server; flag or variable', async (t) => {
    const s = await shopStandIns(t);
    const kubeconfig = await kubeconfigWithDeadCurrent(s);
    const env = { ...s.env, KUBECONFIG: undefined, SCAN_NAMESPACES: 'shop' };

    const viaFlags = await runScanner(env, { args: ['--kubeconfig', kubeconfig, '--context', 'ephor-stand-in'] });
    assert.equal(viaFlags.exitCode, 0, viaFlags.stdout);
    assert.equal(s.ephor.scanIngests().length, 1);

    const viaEnv = await runScanner({ ...env, KUBECONFIG: kubeconfig, KUBE_CONTEXT: 'ephor-stand-in' });
    assert.equal(viaEnv.exitCode, 0, viaEnv.stdout);
    assert.equal(s.ephor.scanIngests().length, 2);

    // Without a context the current one is used, as kubectl does: the dead server, so nothing is delivered (the run
    // lock is retried on it for RUN_LOCK_WAIT, shortened here).
    const current = await runScanner({ ...env, RUN_LOCK_WAIT: '1s' }, { args: ['--kubeconfig', kubeconfig] });
    assert.equal(current.exitCode, 1, current.stdout);
    assert.equal(s.ephor.scanIngests().length, 2);
  });

  test('an unknown context is a configuration error (exit 2) naming the contexts there are; nothing contacted', async (t) => {
    const s = await shopStandIns(t);
    const kubeconfig = await kubeconfigWithDeadCurrent(s);
    const before = s.kube.requests.length;
    const run = await runScanner(
      { ...s.env, SCAN_NAMESPACES: 'shop' },
      { args: ['--kubeconfig', kubeconfig, '--context', 'prod'] },
    );
    assert.equal(run.exitCode, 2, run.stdout);
    const [error] = logsWith(run, 'invalid Kubernetes configuration: nothing was contacted');
    assert.equal(
      error?.error,
      `kubeconfig ${kubeconfig} has no context "prod" (KUBE_CONTEXT, --context); its contexts: ephor-stand-in, dead`,
    );
    assert.equal(s.kube.requests.length, before);
    assert.equal(s.ephor.requests.length, 0);
  });

  test('check uses the chosen context and says so; an unknown one is its configuration error', async (t) => {
    const s = await shopStandIns(t);
    const kubeconfig = await kubeconfigWithDeadCurrent(s);
    const env = { ...s.env, KUBECONFIG: kubeconfig, SCAN_NAMESPACES: 'shop' };
    const chosen = await runScanner(env, { args: ['check', '--context', 'ephor-stand-in'], timeoutMs: 30_000 });
    assertConsistent(chosen);
    assert.match(
      chosen.stdout,
      new RegExp(
        `^✓ kubernetes: the API server at ${s.kube.url} answers .*; credentials from kubeconfig ${kubeconfig}, context ephor-stand-in$`,
        'm',
      ),
    );
    const unknown = await runScanner({ ...env, KUBE_CONTEXT: 'prod' }, { args: ['check'], timeoutMs: 30_000 });
    assertConsistent(unknown);
    assert.equal(unknown.exitCode, 2);
    assert.match(
      unknown.stdout,
      /^✗ configuration: kubeconfig \S+ has no context "prod" \(KUBE_CONTEXT, --context\); its contexts: ephor-stand-in, dead$/m,
    );
    assert.match(
      unknown.stdout,
      /^ {4}fix: set KUBE_CONTEXT \(--context\) to a context of the kubeconfig, or unset it/m,
    );
  });
});

describe('switches: the same forms for every true/false setting', { timeout: 180_000 }, () => {
  // Without EPHOR_API_URL and without any Kubernetes configuration, the dry run decides which error a run stops at:
  // a dry run needs no API (so it stops at the missing cluster), a real run stops at the missing URL.
  const bare = {
    PATH: process.env.PATH,
    HOME: '/nonexistent-home',
    SCAN_NAMESPACES: 'shop',
    TRIVY_BINARY: process.execPath,
  };
  async function dryRunOf(args: string[], env: Record<string, string | undefined> = {}): Promise<boolean> {
    const run = await runScanner({ ...bare, ...env }, { args });
    assert.equal(run.exitCode, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    if (logsWith(run, 'invalid Kubernetes configuration: nothing was contacted').length === 1) return true;
    const [error] = logsWith(run, 'invalid configuration: nothing was contacted');
    assert.deepEqual(
      error?.errors,
      ['EPHOR_API_URL is required (e.g. EPHOR_API_URL=http://ephor-api:8080)'],
      args.join(' '),
    );
    return false;
  }

  test('--dry-run, --dry-run=true, --dry-run true, --dry-run=yes, --dry-run 1 mean true', async () => {
    for (const args of [
      ['--dry-run'],
      ['--dry-run=true'],
      ['--dry-run', 'true'],
      ['--dry-run=yes'],
      ['--dry-run', '1'],
    ])
      assert.equal(await dryRunOf(args), true, args.join(' '));
  });

  test('--no-dry-run, --dry-run=false, --dry-run false, --dry-run off mean false, also over the variable', async () => {
    for (const args of [['--no-dry-run'], ['--dry-run=false'], ['--dry-run', 'false'], ['--dry-run', 'off']])
      assert.equal(await dryRunOf(args, { EPHOR_DRY_RUN: 'true' }), false, args.join(' '));
    assert.equal(await dryRunOf([], { EPHOR_DRY_RUN: 'yes' }), true);
    assert.equal(await dryRunOf([], { EPHOR_DRY_RUN: '0' }), false);
  });

  test('a bare switch needs no value; a wrong value is a configuration error naming what is allowed', async () => {
    assert.equal(await dryRunOf(['--registry-auth-enabled', '--sbom-enabled', '--dry-run']), true);
    const wrong = await runScanner(bare, { args: ['--sbom-enabled', 'maybe', '--no-registry-auth-enabled=x'] });
    assert.equal(wrong.exitCode, 2);
    const wrongValue = await runScanner(bare, { args: ['--sbom-enabled', 'maybe'] });
    assert.equal(wrongValue.exitCode, 2);
    const [error] = logsWith(wrongValue, 'invalid configuration: nothing was contacted');
    assert.ok((error?.errors as string[]).includes('SBOM_ENABLED="maybe" must be true or false'), wrongValue.stdout);
  });

  test('a switch before "check" does not take "check" for its value', async () => {
    const run = await runScanner(bare, { args: ['--dry-run', 'check'], timeoutMs: 30_000 });
    assert.match(run.stdout, /preflight check/);
    assertConsistent(run);
  });
});

describe('check never contradicts itself and reports what a run reports', { timeout: 180_000 }, () => {
  test('Trivy missing: the run and the check stop on the same configuration error; the other checks still run', async (t) => {
    const s = await shopStandIns(t);
    const env = { ...s.env, SCAN_NAMESPACES: 'shop', TRIVY_BINARY: 'trivy', PATH: '/nonexistent-bin' };
    const run = await runScanner(env);
    assert.equal(run.exitCode, 2);
    const [error] = logsWith(run, 'invalid configuration: nothing was contacted');
    const message =
      'TRIVY_BINARY="trivy" was not found on PATH (/nonexistent-bin); install Trivy or set TRIVY_BINARY to its path';
    assert.deepEqual(error?.errors, [message]);

    const check = await runScanner(env, { args: ['check'], timeoutMs: 30_000 });
    assertConsistent(check);
    assert.equal(check.exitCode, 2);
    assert.ok(check.stdout.split('\n').includes(`✗ configuration: ${message}`), check.stdout);
    assert.match(check.stdout, /^✓ ephor: /m);
    assert.match(check.stdout, /^✓ kubernetes: /m);
    assert.equal(check.stdout.match(/not found on PATH/g)?.length, 1, 'said once, not again by the trivy group');
  });

  test('no Kubernetes configuration: the same message as a run, in the configuration group, never after "valid"', async (t) => {
    const s = await shopStandIns(t);
    const env = { ...s.env, SCAN_NAMESPACES: 'shop', KUBECONFIG: '/nonexistent/kubeconfig' };
    const run = await runScanner(env);
    assert.equal(run.exitCode, 2);
    const [error] = logsWith(run, 'invalid Kubernetes configuration: nothing was contacted');
    const check = await runScanner(env, { args: ['check'], timeoutMs: 30_000 });
    assertConsistent(check);
    assert.ok(check.stdout.split('\n').includes(`✗ configuration: ${String(error?.error)}`), check.stdout);
    assert.match(check.stdout, /^✓ ephor: /m, 'the other groups are still checked');
  });

  test('a valid configuration: "valid" and no invalid verdict, whatever else blocks', async (t) => {
    const s = await shopStandIns(t);
    const check = await runScanner(
      { ...s.env, SCAN_NAMESPACES: 'shop', EPHOR_API_URL: `http://127.0.0.1:${await closedPort()}` },
      { args: ['check'], timeoutMs: 30_000 },
    );
    assertConsistent(check);
    assert.equal(check.exitCode, 1);
    assert.match(check.stdout, /^✓ configuration: valid/m);
  });
});
