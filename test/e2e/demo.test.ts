// `npm run demo` from a clean copy of the repository with no ../shared beside it, as a new user runs it after
// `npm ci`: the working tree's files (tracked, plus new ones not ignored) are copied to a temporary directory, the
// installed node_modules is linked in (npm ci needs the network), and the demo must build, scan, print the summary
// and leave one valid payload per namespace in demo-output/. One image of the sample cluster cannot be scanned (its
// registry refuses the pull): it shows in the summary and in its namespace's ledger, and the rest is delivered.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { assertValid } from '../support/contract.js';
import { REPO_ROOT } from '../support/paths.js';

const DEMO_TIMEOUT_MS = 120_000;

interface Payload {
  namespace: string;
  status: string;
  scan_config: {
    scanned_by_tag: Array<{ workload: string; reason: string }>;
    not_delivered: Array<{
      workload: string;
      kind: string;
      container: string;
      image: string;
      reason: string;
      detail: string;
    }>;
  };
  workloads: Array<{
    kind: string;
    name: string;
    containers: Array<{ name: string; image_name: string; repo_digests?: string[]; vulnerabilities: unknown[] }>;
  }>;
}

async function cleanCopy(): Promise<{ root: string; clone: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'ephor-demo-test-'));
  const clone = path.join(root, 'ephor-scanner');
  const { stdout } = await promisify(execFile)(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 },
  );
  for (const file of stdout.split('\0').filter(Boolean)) {
    const from = path.join(REPO_ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree, not yet in the index
    await mkdir(path.dirname(path.join(clone, file)), { recursive: true });
    await copyFile(from, path.join(clone, file));
  }
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  return { root, clone };
}

function npmRunDemo(cwd: string, home: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      npm_config_update_notifier: 'false',
    };
    const child = spawn('npm', ['run', 'demo'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm run demo did not finish within ${DEMO_TIMEOUT_MS} ms\n${stdout}\n${stderr}`));
    }, DEMO_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test(
  'npm run demo works from a clean copy without ../shared: summary printed, one valid payload per namespace',
  { timeout: DEMO_TIMEOUT_MS + 60_000 },
  async (t) => {
    const { root, clone } = await cleanCopy();
    t.after(() => rm(root, { recursive: true, force: true }));
    assert.ok(!existsSync(path.join(root, 'shared')), 'no ../shared beside the copy');
    await mkdir(path.join(root, 'home'));

    const run = await npmRunDemo(clone, path.join(root, 'home'));
    assert.equal(run.code, 0, `npm run demo failed:\n${run.stdout}\n${run.stderr}`);

    // the preflight and the scanner's own text output, summary table included
    assert.match(run.stdout, /^✓ ready to scan/m);
    assert.match(run.stdout, /INFO {2}ephor-scanner completed .*exit_code=0/);
    // as the chart runs it: scans are clients of the run's own Trivy server, each for its nodes' platform
    assert.match(run.stdout, /INFO {2}Trivy server ready /);
    assert.match(run.stdout, /^Containers by platform: linux\/amd64 13$/m);
    assert.match(
      run.stdout,
      /^NAMESPACE +RESULT +WORKLOADS +CONTAINERS +NOT SCANNED +CRITICAL +HIGH +MEDIUM +LOW +UNKNOWN$/m,
    );
    // WORKLOADS, CONTAINERS (delivered), NOT SCANNED
    assert.match(run.stdout, /^shop +delivered +3 +5 +0 /m);
    assert.match(run.stdout, /^payments +delivered +4 +5 +1 /m);
    assert.match(run.stdout, /^platform +delivered +3 +3 +0 /m);
    assert.match(run.stdout, /^TOTAL +3\/3 +10 +13 +1 /m);
    assert.match(run.stdout, /^Images not scanned, by reason:\n {2}unauthorized \(1\): the registry refused the pull/m);
    assert.match(
      run.stdout,
      /^payments: Deployment\/fraud-scoring container scorer \(registry\.acme\.example\/payments\/fraud-scoring:3\.1\.0\): unauthorized$/m,
      'the demo shows the ledger',
    );
    assert.match(run.stdout, /^3 payloads accepted for 3 of 3 namespaces; they are in demo-output\/\.$/m);
    assert.doesNotMatch(run.stdout + run.stderr, /fake-trivy: |errors\.json|ENOENT/);

    const output = path.join(clone, 'demo-output');
    assert.deepEqual((await readdir(output)).sort(), ['payments.json', 'platform.json', 'shop.json']);
    const payloads = new Map<string, Payload>();
    for (const ns of ['shop', 'payments', 'platform']) {
      const body = JSON.parse(await readFile(path.join(output, `${ns}.json`), 'utf8')) as Payload;
      assertValid('ingest-request', body);
      assert.equal(body.namespace, ns);
      assert.equal(body.status, 'completed');
      if (ns !== 'payments') assert.deepEqual(body.scan_config.not_delivered, []);
      payloads.set(ns, body);
    }
    // The private image: its container is in the ledger with Trivy's reason, never sent with partial findings; its
    // workload is still delivered with the sidecar that could be scanned, and so is the rest of the namespace.
    const [refused, ...more] = payloads.get('payments')!.scan_config.not_delivered;
    assert.deepEqual(more, []);
    const { detail, ...entry } = refused!;
    assert.deepEqual(entry, {
      workload: 'fraud-scoring',
      kind: 'Deployment',
      container: 'scorer',
      image: 'registry.acme.example/payments/fraud-scoring:3.1.0',
      reason: 'unauthorized',
      platforms: ['linux/amd64'], // the platform of the nodes it runs on, which it was to be scanned for
    });
    assert.match(
      detail,
      /^registry registry\.acme\.example refused the pull \(the workloads name no pull secret\): .*UNAUTHORIZED: authentication required/,
    );
    const fraudScoring = payloads.get('payments')!.workloads.find((w) => w.name === 'fraud-scoring')!;
    assert.deepEqual(
      fraudScoring.containers.map((c) => c.name),
      ['istio-proxy'],
    );
    assert.deepEqual(
      payloads
        .get('payments')!
        .workloads.map((w) => w.name)
        .sort(),
      ['fraud-scoring', 'ledger-db', 'payments-gateway', 'settlement-report'],
    );
    const workloads = [...payloads.values()].flatMap((p) => p.workloads);
    assert.deepEqual(
      new Set(workloads.map((w) => w.kind)),
      new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'Pod']),
      'every kind',
    );
    assert.ok(
      workloads.every((w) => w.containers.every((c) => c.vulnerabilities.length > 0)),
      'every container has findings',
    );
    const storefront = payloads.get('shop')!.workloads.find((w) => w.name === 'storefront')!;
    assert.deepEqual(
      storefront.containers.map((c) => c.name),
      ['nginx', 'istio-proxy'],
      'the injected sidecar is reported under its workload',
    );
    const nginxDigest = (ns: string, name: string) =>
      payloads.get(ns)!.workloads.find((w) => w.name === name)!.containers[0]!.repo_digests;
    assert.deepEqual(
      nginxDigest('shop', 'storefront'),
      nginxDigest('payments', 'payments-gateway'),
      'one image shared by two namespaces',
    );
    assert.deepEqual(
      payloads.get('payments')!.scan_config.scanned_by_tag.map((e) => [e.workload, e.reason]),
      [['settlement-report', 'no_running_pod']],
      'the CronJob between runs',
    );

    // demo-output/ is ignored by git in the real repository
    const ignored = await promisify(execFile)('git', ['check-ignore', 'demo-output/shop.json'], { cwd: REPO_ROOT });
    assert.equal(ignored.stdout.trim(), 'demo-output/shop.json');
  },
);
