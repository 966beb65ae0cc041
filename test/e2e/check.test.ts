// `ephor-scanner check`, the read-only preflight, run as the built CLI against the stand-ins in every state a first
// install typically fails in. Each failure must say what to fix, in one exact line; nothing may be written or posted.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { deployment, imagePullSecret, serviceAccount } from '../support/k8s-objects.js';
import { runScanner, startStandIns, type ScannerRun, type StandIns, type StandInOptions } from '../support/harness.js';
import type { KubeServerOptions } from '../support/k8s-server.js';

const USER = 'system:serviceaccount:ephor:ephor-scanner';
const HOUR = 3_600_000;
const SECRET = 'check-secret-value-5f2c';

interface CheckJson {
  version: string;
  result: 'pass' | 'fail';
  exit_code: number;
  summary: { pass: number; warn: number; fail: number };
  checks: Array<{ group: string; status: 'pass' | 'warn' | 'fail'; message: string; fix?: string }>;
}

function cluster(extra: KubeServerOptions = {}): KubeServerOptions {
  return {
    objects: [
      deployment({
        namespace: 'shop',
        name: 'web',
        containers: [{ name: 'app', image: 'nginx:1.25' }],
        imagePullSecrets: ['regcred'],
      }),
      deployment({
        namespace: 'payments',
        name: 'api',
        containers: [{ name: 'app', image: 'registry.example.com/payments/api:2.1' }],
      }),
      imagePullSecret({
        namespace: 'shop',
        name: 'regcred',
        auths: { 'registry.example.com': { username: 'robot', password: SECRET } },
      }),
      serviceAccount({ namespace: 'shop', name: 'default' }),
      serviceAccount({ namespace: 'payments', name: 'default' }),
    ],
    ...extra,
  };
}

async function standIns(t: TestContext, options: StandInOptions = {}): Promise<StandIns> {
  const started = await startStandIns({ cluster: cluster(), ...options });
  t.after(() => started.close());
  return started;
}

/** A vulnerability DB in the cache as Trivy leaves it (metadata.json + trivy.db), updated `hoursAgo`. */
async function seedDb(cacheDir: string, hoursAgo: number): Promise<void> {
  const updated = new Date(Date.now() - hoursAgo * HOUR);
  for (const [dir, file, version, nextMs] of [
    ['db', 'trivy.db', 2, 24 * HOUR],
    ['java-db', 'trivy-java.db', 1, 72 * HOUR],
  ] as const) {
    await mkdir(path.join(cacheDir, dir), { recursive: true });
    await writeFile(path.join(cacheDir, dir, file), 'db\n');
    await writeFile(
      path.join(cacheDir, dir, 'metadata.json'),
      JSON.stringify({
        Version: version,
        NextUpdate: new Date(updated.getTime() + nextMs).toISOString(),
        UpdatedAt: updated.toISOString(),
        DownloadedAt: updated.toISOString(),
      }),
    );
  }
}

async function check(env: Record<string, string | undefined>, args: string[] = []): Promise<ScannerRun> {
  return runScanner(env, { args: ['check', ...args], timeoutMs: 30_000 });
}

function baseEnv(s: StandIns): Record<string, string> {
  return { ...s.env, SCAN_NAMESPACES: 'shop,payments' };
}

/** The line after the check line matching `line`: its fix. */
function fixAfter(run: ScannerRun, line: RegExp): string | undefined {
  const lines = run.stdout.split('\n');
  const index = lines.findIndex((l) => line.test(l));
  assert.ok(index >= 0, `no line matches ${line}:\n${run.stdout}`);
  return lines[index + 1];
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

/** A loopback HTTP server answering every request with `handler` (a proxy, a web page, a hanging service). */
async function serve(t: TestContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('ephor-scanner check', { timeout: 180_000 }, () => {
  test('everything in place: every line passes, exit 0; the auth header is sent but never shown; nothing is written or posted', async (t) => {
    const s = await standIns(t, { ephor: { requireHeader: { name: 'X-API-Key', value: SECRET } } });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 3);
    const run = await check({ ...baseEnv(s), EPHOR_AUTH_HEADER: 'X-API-Key', EPHOR_AUTH_VALUE: SECRET });
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'ephor-scanner 0.1.0 preflight check');
    assert.equal(lines.at(-1), '✓ ready to scan');
    assert.ok(
      lines.slice(1, -1).every((l) => l.startsWith('✓ ')),
      run.stdout,
    );
    assert.ok(
      lines.includes(
        '✓ configuration: valid: scans namespaces shop, payments (Deployment, StatefulSet, DaemonSet, CronJob)',
      ),
    );
    assert.ok(
      lines.includes(`✓ ephor: the Ephor API at ${s.ephor.url} is ready (readiness UP; header X-API-Key sent)`),
    );
    assert.ok(
      lines.includes(
        `✓ kubernetes: the API server at ${s.kube.url} answers (v1.32.3) as ${USER}; credentials from kubeconfig ${s.env.KUBECONFIG}`,
      ),
    );
    for (const ns of ['shop', 'payments']) {
      assert.ok(
        lines.includes(
          `✓ rbac: in namespace "${ns}" the scanner may list deployments, statefulsets, daemonsets, cronjobs, pods, replicasets, jobs and get secrets, serviceaccounts`,
        ),
      );
    }
    assert.ok(lines.includes('✓ registry: 1 pull secret named by the workloads can be used: shop/regcred'));
    assert.match(run.stdout, /^✓ trivy: \S+fake-trivy\.mjs is Trivy 0\.69\.3$/m);
    assert.match(run.stdout, /^✓ trivy: vulnerability DB in \S+\/cache\/db, updated 3 h ago$/m);
    assert.ok(
      !run.stdout.includes(SECRET) && !run.stderr.includes(SECRET),
      'the auth value and the pull secret password are never shown',
    );

    const readiness = s.ephor.requests.filter((r) => r.path === '/api/v1/actuator/health/readiness');
    assert.equal(readiness.length, 1);
    assert.equal(readiness[0]!.headers['x-api-key'], SECRET);
    assert.equal(readiness[0]!.response.status, 200);
    assert.equal(s.ephor.scanIngests().length, 0, 'nothing posted');
    assert.ok(
      s.kube.requests.every((r) => r.method === 'GET' || /selfsubject(access)?reviews$/.test(r.path)),
      'only reads and reviews',
    );
    const scans = await s.scans();
    assert.deepEqual(scans, [], 'no image scanned, no DB downloaded');
    assert.deepEqual(
      (await s.invocations()).map((i) => i.argv),
      [['version', '--format', 'json']],
    );
  });

  test('--output json: one document with every check, its status and fix, and the exit code', async (t) => {
    const s = await standIns(t, {
      cluster: cluster({ faults: [{ resource: 'daemonsets', namespace: 'payments', status: 403 }] }),
    });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check(baseEnv(s), ['--output', 'json']);
    assert.equal(run.exitCode, 1);
    const report = JSON.parse(run.stdout) as CheckJson;
    assert.equal(report.result, 'fail');
    assert.equal(report.exit_code, 1);
    assert.equal(report.version, '0.1.0');
    assert.deepEqual(report.summary, {
      pass: report.checks.filter((c) => c.status === 'pass').length,
      warn: 0,
      fail: 1,
    });
    assert.deepEqual(
      new Set(report.checks.map((c) => c.group)),
      new Set(['configuration', 'ephor', 'kubernetes', 'rbac', 'lock', 'registry', 'trivy']),
    );
    const failed = report.checks.filter((c) => c.status === 'fail');
    assert.deepEqual(failed, [
      {
        group: 'rbac',
        status: 'fail',
        message: 'the scanner may not list daemonsets in namespace "payments": its DaemonSets are not scanned',
        fix: `allow verb "list" on resource "daemonsets" (apiGroup "apps") in namespace "payments" for ${USER}`,
      },
    ]);
    assert.ok(report.checks.filter((c) => c.status === 'pass').every((c) => c.fix === undefined));
  });

  test('Ephor API down: blocker with the address to check', async (t) => {
    const s = await standIns(t);
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const port = await closedPort();
    const run = await check({ ...baseEnv(s), EPHOR_API_URL: `http://127.0.0.1:${port}` });
    assert.equal(run.exitCode, 1);
    assert.match(
      run.stdout,
      new RegExp(
        `^✗ ephor: nothing answers at http://127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)$`,
        'm',
      ),
    );
    assert.equal(
      fixAfter(run, /^✗ ephor:/),
      `    fix: check EPHOR_API_URL=http://127.0.0.1:${port} (chart: ephor.apiUrl): is the Ephor API running, and is this its address and port?`,
    );
    assert.match(
      run.stdout,
      /^✗ 1 blocker: a scan would not deliver everything; fix the ✗ lines, then run "ephor-scanner check" again$/m,
    );
  });

  test("Ephor URL answering an HTML page with 200 (a web UI or a proxy's login page): blocker", async (t) => {
    const s = await standIns(t);
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const page = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html>\n<html><head><title>Ephor</title></head><body><div id="root"></div></body></html>\n');
    });
    const run = await check({ ...baseEnv(s), EPHOR_API_URL: page });
    assert.equal(run.exitCode, 1);
    assert.match(
      run.stdout,
      /^✗ ephor: GET \/api\/v1\/actuator\/health\/readiness answered 200 with an HTML page \("Ephor"\), not the Ephor API's JSON$/m,
    );
    assert.equal(
      fixAfter(run, /^✗ ephor:/),
      "    fix: set EPHOR_API_URL (chart: ephor.apiUrl) to the Ephor API's own base URL (the one that serves /api/v1/scans/ingest), not the web UI or a proxy's login page",
    );
  });

  test('an authenticating proxy answering 401 with its sign-in page: reported as such, without and with a wrong header', async (t) => {
    const s = await standIns(t, { ephor: { requireHeader: { name: 'X-API-Key', value: SECRET } } });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const none = await check(baseEnv(s));
    assert.equal(none.exitCode, 1);
    assert.match(
      none.stdout,
      /^✗ ephor: GET \/api\/v1\/actuator\/health\/readiness answered 401 with an HTML page \("Sign In"\): a proxy in front of the API asks for authentication$/m,
    );
    assert.equal(
      fixAfter(none, /^✗ ephor:/),
      '    fix: set EPHOR_AUTH_HEADER and EPHOR_AUTH_VALUE to the header the proxy expects (chart: ephor.authHeader and ephor.authValue, or the key in ephor.existingSecret)',
    );
    const wrong = await check({
      ...baseEnv(s),
      EPHOR_AUTH_HEADER: 'X-API-Key',
      EPHOR_AUTH_VALUE: 'not-the-right-value-81x',
    });
    assert.equal(wrong.exitCode, 1);
    assert.equal(
      fixAfter(wrong, /^✗ ephor:/),
      '    fix: the X-API-Key header was sent and refused: check EPHOR_AUTH_VALUE (chart: ephor.authValue, or the key in ephor.existingSecret) and that the proxy expects the header X-API-Key',
    );
    assert.ok(!wrong.stdout.includes('not-the-right-value-81x'));
    assert.equal(s.ephor.requests.at(-1)!.headers['x-api-key'], 'not-the-right-value-81x', 'the header was sent');
  });

  test('EPHOR_API_URL with /api/v1 at its end: the 404 says to remove it', async (t) => {
    const s = await standIns(t);
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check({ ...baseEnv(s), EPHOR_API_URL: `${s.ephor.url}/api/v1` });
    assert.equal(run.exitCode, 1);
    assert.equal(
      fixAfter(run, /^✗ ephor:/),
      '    fix: remove "/api/v1" from EPHOR_API_URL (chart: ephor.apiUrl): it is the base URL, the scanner adds /api/v1/… itself',
    );
  });

  test('403 on one kind in one namespace: a blocker naming the exact missing rule; the others still pass', async (t) => {
    const s = await standIns(t, {
      cluster: cluster({ faults: [{ resource: 'cronjobs', namespace: 'payments', status: 403 }] }),
    });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check(baseEnv(s));
    assert.equal(run.exitCode, 1);
    assert.match(
      run.stdout,
      /^✓ rbac: in namespace "payments" \(partly forbidden: see below\) the scanner may list deployments, statefulsets, daemonsets, pods, replicasets, jobs and get secrets, serviceaccounts$/m,
    );
    assert.match(
      run.stdout,
      /^✗ rbac: the scanner may not list cronjobs in namespace "payments": its CronJobs are not scanned$/m,
    );
    assert.equal(
      fixAfter(run, /^✗ rbac:/),
      `    fix: allow verb "list" on resource "cronjobs" (apiGroup "batch") in namespace "payments" for ${USER}`,
    );
    assert.equal(run.stdout.match(/^✗ /gm)?.length, 2, 'one denial and the verdict');
  });

  test('RBAC: missing attribution and pull-secret rules are warnings (exit 0); the subject falls back when the server cannot say who we are', async (t) => {
    const s = await standIns(t, {
      cluster: cluster({
        selfSubjectReview: false,
        faults: [
          { resource: 'replicasets', status: 403 },
          {
            resource: 'secrets',
            namespace: 'shop',
            status: 403,
            reviewReason: 'RBAC: clusterrole.rbac.authorization.k8s.io "ephor-scanner-secrets" not found',
          },
          { resource: 'serviceaccounts', namespace: 'shop', status: 403 },
        ],
      }),
    });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check(baseEnv(s));
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(
      run.stdout,
      /^✓ kubernetes: the API server at \S+ answers \(v1\.32\.3\); credentials from kubeconfig/m,
    );
    assert.match(
      run.stdout,
      /^! rbac: the scanner may not list replicasets in namespace "shop": running Pods are matched to their Deployments by name only$/m,
    );
    assert.equal(
      fixAfter(run, /^! rbac: the scanner may not list replicasets in namespace "shop"/),
      '    fix: allow verb "list" on resource "replicasets" (apiGroup "apps") in namespace "shop" for the scanner\'s service account',
    );
    assert.match(
      run.stdout,
      /^! rbac: the scanner may not get secrets and serviceaccounts in namespace "shop" \(RBAC: clusterrole\.rbac\.authorization\.k8s\.io "ephor-scanner-secrets" not found\): private images are pulled without the workloads' pull secrets$/m,
    );
    assert.equal(
      fixAfter(run, /^! rbac: the scanner may not get secrets/),
      '    fix: allow verb "get" on resources "secrets" and "serviceaccounts" (apiGroup "") in namespace "shop" for the scanner\'s service account',
    );
    assert.match(run.stdout, /^✓ ready to scan \(\d+ warnings: the scan runs, with less\)$/m);
  });

  test('SCAN_NAMESPACES=*: namespaces and every kind are checked cluster-wide', async (t) => {
    const s = await standIns(t, { cluster: cluster({ faults: [{ resource: 'namespaces', status: 403 }] }) });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check({ ...baseEnv(s), SCAN_NAMESPACES: '*' });
    assert.equal(run.exitCode, 1);
    assert.match(
      run.stdout,
      /^✓ rbac: in every namespace the scanner may list deployments, statefulsets, daemonsets, cronjobs, pods, replicasets, jobs and get secrets, serviceaccounts$/m,
    );
    assert.match(
      run.stdout,
      /^✗ rbac: the scanner may not list namespaces cluster-wide: the namespaces to scan cannot be found, so nothing is scanned$/m,
    );
    assert.equal(
      fixAfter(run, /^✗ rbac:/),
      `    fix: allow verb "list" on resource "namespaces" (apiGroup "") cluster-wide for ${USER}`,
    );
  });

  test('Trivy missing: a configuration error as for a run, with how to install it; the other checks still run', async (t) => {
    const s = await standIns(t);
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check({ ...baseEnv(s), TRIVY_BINARY: 'trivy', PATH: '/nonexistent-bin' });
    assert.equal(run.exitCode, 2);
    assert.match(
      run.stdout,
      /^✗ configuration: TRIVY_BINARY="trivy" was not found on PATH \(\/nonexistent-bin\); install Trivy or set TRIVY_BINARY to its path$/m,
    );
    assert.equal(
      fixAfter(run, /^✗ configuration:/),
      '    fix: install Trivy (https://trivy.dev), or set TRIVY_BINARY (chart: trivy.binary; the ephor-scanner image has it at /usr/local/bin/trivy) to its path',
    );
    assert.doesNotMatch(run.stdout, /^✓ configuration/m);
    assert.match(run.stdout, /^✓ ephor: /m);
    assert.match(run.stdout, /^✓ trivy: vulnerability DB in /m);
  });

  test('no vulnerability DB and TRIVY_SKIP_DB_UPDATE=true: blocker; without the skip it is only a warning (the run downloads it)', async (t) => {
    const s = await standIns(t);
    const cache = s.env.TRIVY_CACHE_DIR!;
    const blocked = await check({ ...baseEnv(s), TRIVY_SKIP_DB_UPDATE: 'true' });
    assert.equal(blocked.exitCode, 1);
    assert.equal(
      blocked.stdout.split('\n').find((l) => l.startsWith('✗ trivy:')),
      `✗ trivy: no vulnerability DB in ${cache}/db, and TRIVY_SKIP_DB_UPDATE=true forbids downloading one: every scan would fail`,
    );
    assert.equal(
      fixAfter(blocked, /^✗ trivy:/),
      `    fix: run once without TRIVY_SKIP_DB_UPDATE (chart: trivy.skipDbUpdate=false) so that the DB is downloaded into ${cache}, or copy a DB into ${cache}/db`,
    );
    const first = await check(baseEnv(s));
    assert.equal(first.exitCode, 0, first.stdout);
    assert.match(
      first.stdout,
      new RegExp(
        `^! trivy: no vulnerability DB in ${cache}/db yet: each run downloads it first \\(from mirror\\.gcr\\.io/aquasec/trivy-db:2, ghcr\\.io/aquasecurity/trivy-db:2\\)$`,
        'm',
      ),
    );
    assert.equal(
      fixAfter(first, /^! trivy: no vulnerability DB/),
      '    fix: nothing to do if mirror.gcr.io/aquasec/trivy-db:2, ghcr.io/aquasecurity/trivy-db:2 is reachable from the scanner; otherwise set TRIVY_DB_REPO to a mirror (chart: trivy.dbRepo)',
    );
  });

  test('stale DB (3 days): a warning with its age, exit 0', async (t) => {
    const s = await standIns(t);
    const cache = s.env.TRIVY_CACHE_DIR!;
    await seedDb(cache, 72.2);
    const run = await check(baseEnv(s));
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(
      run.stdout,
      new RegExp(
        `^! trivy: the vulnerability DB in ${cache}/db is 3 days old \\(updated 72 h ago\\), older than 2 days: findings miss what was published since$`,
        'm',
      ),
    );
    assert.equal(
      fixAfter(run, /^! trivy: the vulnerability DB/),
      '    fix: the next run downloads a fresh one; if the DB stays old, that download fails: check that the scanner can reach mirror.gcr.io/aquasec/trivy-db:2, ghcr.io/aquasecurity/trivy-db:2, or set TRIVY_DB_REPO to a mirror (chart: trivy.dbRepo)',
    );
    const skipping = await check({ ...baseEnv(s), TRIVY_SKIP_DB_UPDATE: 'true' });
    assert.equal(
      fixAfter(skipping, /^! trivy: the vulnerability DB/),
      `    fix: refresh it: run once without TRIVY_SKIP_DB_UPDATE (chart: trivy.skipDbUpdate=false), or replace ${cache}/db with a current copy`,
    );
  });

  test('DB mirror: an unreachable one blocks when there is no DB; a registry with the DB passes', async (t) => {
    const s = await standIns(t);
    const port = await closedPort();
    const down = await check({ ...baseEnv(s), TRIVY_DB_REPO: `127.0.0.1:${port}/aquasec/trivy-db:2` });
    assert.equal(down.exitCode, 1);
    assert.match(
      down.stdout,
      new RegExp(
        `^✗ trivy: DB mirror 127\\.0\\.0\\.1:${port}/aquasec/trivy-db:2 is not usable: http://127\\.0\\.0\\.1:${port} does not answer \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)$`,
        'm',
      ),
    );
    assert.equal(
      fixAfter(down, /^✗ trivy: DB mirror/),
      '    fix: check TRIVY_DB_REPO (chart: trivy.dbRepo) and that the scanner may reach that registry (NetworkPolicy, firewall, HTTPS_PROXY/NO_PROXY in extraEnv)',
    );
    const registry = await serve(t, (req, res) => {
      const ok = req.url === '/v2/' || req.url === '/v2/aquasec/trivy-db/manifests/2';
      res.writeHead(ok ? 200 : 404, {
        'content-type': 'application/json',
        'docker-distribution-api-version': 'registry/2.0',
      });
      res.end(req.method === 'HEAD' ? undefined : '{}');
    });
    const host = new URL(registry).host;
    const up = await check({ ...baseEnv(s), TRIVY_DB_REPO: `${host}/aquasec/trivy-db:2,${host}/aquasec/missing-db:2` });
    assert.equal(up.exitCode, 0, up.stdout);
    assert.match(
      up.stdout,
      new RegExp(`^✓ trivy: DB mirror ${host}/aquasec/trivy-db:2 is reachable and has the DB$`, 'm'),
    );
    assert.equal(
      fixAfter(up, /^! trivy: DB mirror/),
      `    fix: copy the DB there (e.g. oras cp mirror.gcr.io/aquasec/trivy-db:2 ${host}/aquasec/missing-db:2), or fix TRIVY_DB_REPO (chart: trivy.dbRepo)`,
    );
  });

  test('a pull secret named by a workload that does not exist: a warning naming it and its workload', async (t) => {
    const s = await standIns(t, {
      cluster: cluster({
        objects: [
          deployment({
            namespace: 'shop',
            name: 'web',
            containers: [{ name: 'app', image: 'registry.example.com/shop/web:1' }],
            imagePullSecrets: ['regcred-old'],
          }),
        ],
      }),
    });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const run = await check({ ...baseEnv(s), SCAN_NAMESPACES: 'shop' });
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(
      run.stdout,
      /^! registry: pull secret shop\/regcred-old, named by Deployment shop\/web, does not exist: its private images are pulled anonymously$/m,
    );
    assert.equal(
      fixAfter(run, /^! registry:/),
      '    fix: create it (kubectl create secret docker-registry regcred-old -n shop --docker-server=REGISTRY --docker-username=USER --docker-password=PASSWORD), or remove it from the imagePullSecrets of Deployment shop/web',
    );
  });

  test('invalid configuration: exit 2 with the variable to correct, nothing contacted', async (t) => {
    const s = await standIns(t);
    const run = await check({ ...baseEnv(s), SCAN_CONCURRENCY: '0', EPHOR_AUTH_HEADER: 'X-API-Key' });
    assert.equal(run.exitCode, 2);
    assert.match(run.stdout, /^✗ configuration: SCAN_CONCURRENCY="0" must be an integer from 1 to 64$/m);
    assert.equal(
      fixAfter(run, /^✗ configuration: SCAN_CONCURRENCY/),
      '    fix: correct SCAN_CONCURRENCY (chart: scan.concurrency); "ephor-scanner --help" lists what every variable allows',
    );
    assert.match(run.stdout, /^✗ configuration: EPHOR_AUTH_HEADER is set but EPHOR_AUTH_VALUE is not/m);
    assert.match(
      run.stdout,
      /^✗ the configuration is invalid \(2 blockers\): fix it, then run "ephor-scanner check" again$/m,
    );
    assert.equal(s.kube.requests.length, 0);
    assert.equal(s.ephor.requests.length, 0);
    const flagged = await check({ ...baseEnv(s), SCAN_NAMESPACES: undefined }, [
      '--namespaces',
      'shop',
      '--output',
      'json',
    ]);
    assert.equal(flagged.exitCode, 0, 'flags work after "check" as they do for a scan');
    assert.match((JSON.parse(flagged.stdout) as CheckJson).checks[0]!.message, /scans namespaces shop \(/);
    const badOutput = await check(baseEnv(s), ['--output', 'xml']);
    assert.equal(badOutput.exitCode, 2);
    const noCluster = await check({ ...baseEnv(s), KUBECONFIG: '/nonexistent/kubeconfig' });
    assert.equal(noCluster.exitCode, 2, 'no Kubernetes configuration is a configuration error, as for a run');
    assert.match(noCluster.stdout, /^✗ configuration: KUBECONFIG=\/nonexistent\/kubeconfig: no such file$/m);
    assert.doesNotMatch(noCluster.stdout, /^✓ configuration/m);
    assert.equal(
      fixAfter(noCluster, /^✗ configuration:/),
      "    fix: run the scanner in the cluster with the chart's service account, or set KUBECONFIG to a kubeconfig file whose current context names the cluster",
    );
    assert.match(noCluster.stdout, /^✓ ephor: /m, 'the other groups are still checked');
  });

  test('services that accept connections but never answer: the check still ends within seconds', async (t) => {
    const s = await standIns(t, { cluster: cluster({ faults: [{ resource: 'deployments', stallMs: 600_000 }] }) });
    await seedDb(s.env.TRIVY_CACHE_DIR!, 1);
    const hanging = await serve(t, () => undefined); // reads the request, never answers
    const run = await check({ ...baseEnv(s), EPHOR_API_URL: hanging });
    assert.equal(run.exitCode, 1);
    const port = new URL(hanging).port;
    assert.match(
      run.stdout,
      new RegExp(
        `^✗ ephor: no answer from 127\\.0\\.0\\.1:${port} within 5 s \\(EPHOR_API_URL=${hanging.replaceAll('.', '\\.')}\\)$`,
        'm',
      ),
    );
    assert.equal(
      fixAfter(run, /^✗ ephor:/),
      `    fix: let the scanner reach 127.0.0.1:${port}: a NetworkPolicy or firewall may drop the traffic; a proxy goes in HTTPS_PROXY/NO_PROXY (chart: extraEnv)`,
    );
    // It ended: the services never answer, so only the check's own timeouts (the 5 s named above) can end it before
    // check()'s bound does. How long it took is not asserted: that depends on the load of the machine.
  });
});
