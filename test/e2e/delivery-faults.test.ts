// Delivery to Ephor when the API (or a proxy in front of it) misbehaves: retried only where a retry can help,
// one POST at a time, every other namespace still delivered, and the exit code says whether anything was lost.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';
import type { ScriptedResponse } from '../support/ephor-server.js';

const objects = ['alpha', 'beta'].map((namespace) =>
  deployment({ namespace, name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] }),
);
const trivy = { images: { 'docker.io/library/alpine:3.10': { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' } } };

async function scanWith(
  script: ScriptedResponse[],
  env: Record<string, string> = {},
  ephor: { requireHeader?: { name: string; value: string } } = {},
): Promise<{ run: ScannerRun; standIns: StandIns }> {
  const standIns = await startStandIns({ cluster: { objects }, trivy, ephor: { script, ...ephor } });
  try {
    const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'alpha,beta', ...env }, { timeoutMs: 60_000 });
    return { run, standIns };
  } catch (error) {
    await standIns.close();
    throw error;
  }
}

const ingestPosts = (standIns: StandIns) =>
  standIns.ephor.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/scans/ingest');
const delivered = (standIns: StandIns) =>
  standIns.ephor
    .scanIngests()
    .map((r) => (r.body as { namespace: string }).namespace)
    .sort();

describe('delivery faults', { timeout: 180_000 }, () => {
  test('503 three times, then accepted: retried with backoff, delivered, exit 0', async () => {
    const { run, standIns } = await scanWith([{ status: 503 }, { status: 503 }, { status: 503 }]);
    try {
      assert.equal(run.exitCode, 0, run.stdout);
      assert.equal(ingestPosts(standIns).length, 5);
      assert.deepEqual(delivered(standIns), ['alpha', 'beta']);
      const retries = logsWith(run, 'delivery attempt failed, retrying');
      assert.deepEqual(
        retries.map((l) => [l.attempt, l.status]),
        [
          [1, 503],
          [2, 503],
          [3, 503],
        ],
      );
      const ids = ingestPosts(standIns).map((r) => r.headers['x-request-id']);
      assert.equal(new Set(ids).size, ids.length, 'a fresh X-Request-Id per attempt');
      assert.equal(standIns.ephor.maxConcurrentIngests, 1);
    } finally {
      await standIns.close();
    }
  });

  test('429 with Retry-After is honoured', async () => {
    const { run, standIns } = await scanWith([{ status: 429, headers: { 'retry-after': '2' } }]);
    try {
      assert.equal(run.exitCode, 0);
      const [retry] = logsWith(run, 'delivery attempt failed, retrying');
      assert.equal(retry!.retry_in_ms, 2000);
      const [first, second] = ingestPosts(standIns);
      assert.ok(second!.receivedAt - first!.receivedAt >= 1900, 'waited as the server asked');
    } finally {
      await standIns.close();
    }
  });

  test('500 is not retried (the same body fails again): that namespace is lost, the other delivered, exit 1', async () => {
    const { run, standIns } = await scanWith([{ status: 500 }]);
    try {
      assert.equal(run.exitCode, 1);
      assert.equal(ingestPosts(standIns).length, 2);
      assert.equal(delivered(standIns).length, 1);
      const [failure] = logsWith(run, 'failed to deliver scan results');
      assert.equal(failure!.status, 500);
      assert.equal(failure!.attempts, 1);
      assert.match(
        String(failure!.error),
        /HTTP 500 Internal Server Error.*not retried because the same body fails again/,
      );
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.deepEqual(summary!.namespaces, { total: 2, delivered: 1, failed: 1 });
    } finally {
      await standIns.close();
    }
  });

  test('400 with field errors is not retried; the problem type, trace id and fields are logged', async () => {
    const body = JSON.stringify({
      type: '/problems/validation-error',
      title: 'Validation Error',
      status: 400,
      detail: 'Request validation failed',
      instance: '/api/v1/scans/ingest',
      trace_id: '0123456789abcdef',
      errors: [{ field: 'workloads[0].containers', message: 'Containers list is required and must not be empty' }],
    });
    const { run, standIns } = await scanWith([{ status: 400, body }], { EPHOR_MAX_RETRIES: '3' });
    try {
      assert.equal(run.exitCode, 1);
      assert.equal(ingestPosts(standIns).length, 2);
      const [warning] = run.logs.filter((l) => l.msg === 'failed to deliver scan results');
      assert.equal(warning!.attempts, 1);
      assert.match(String(warning!.error), /HTTP 400 Validation Error: Request validation failed/);
      const attemptLog = run.logs.find((l) => l.problem_type === '/problems/validation-error');
      assert.ok(attemptLog, 'the attempt is logged with the problem JSON');
      assert.equal(attemptLog.trace_id, '0123456789abcdef');
      assert.deepEqual(attemptLog.field_errors, [
        { field: 'workloads[0].containers', message: 'Containers list is required and must not be empty' },
      ]);
    } finally {
      await standIns.close();
    }
  });

  test('a 200 HTML page (a login page in front of Ephor) is a failure, not a delivery', async () => {
    const { run, standIns } = await scanWith([{ status: 200, html: true }]);
    try {
      assert.equal(run.exitCode, 1);
      const [failure] = logsWith(run, 'failed to deliver scan results');
      assert.match(
        String(failure!.error),
        /HTTP 200 without a scan_id in a JSON body \(a proxy or login page answered\?\)/,
      );
    } finally {
      await standIns.close();
    }
  });

  test('a proxy that refuses the auth header: 401 not retried, with the fix in the message', async () => {
    const { run, standIns } = await scanWith(
      [],
      { EPHOR_AUTH_HEADER: 'X-API-Key', EPHOR_AUTH_VALUE: 'wrong-value-123' },
      { requireHeader: { name: 'X-API-Key', value: 'right' } },
    );
    try {
      assert.equal(run.exitCode, 1);
      assert.equal(ingestPosts(standIns).length, 2);
      const failures = logsWith(run, 'failed to deliver scan results');
      assert.equal(failures.length, 2);
      assert.match(String(failures[0]!.error), /HTTP 401.*check EPHOR_AUTH_HEADER and EPHOR_AUTH_VALUE/);
      assert.ok(!run.stdout.includes('wrong-value-123'));
    } finally {
      await standIns.close();
    }
  });

  test('an answer slower than EPHOR_TIMEOUT: the attempt is abandoned and retried after a pause', async () => {
    const { run, standIns } = await scanWith([{ delayMs: 4000 }], { EPHOR_TIMEOUT: '1' });
    try {
      assert.equal(run.exitCode, 0, run.stdout);
      const [retry] = logsWith(run, 'delivery attempt failed, retrying');
      assert.match(String(retry!.error), /no answer within 1000 ms \(EPHOR_TIMEOUT\)/);
      assert.ok(Number(retry!.retry_in_ms) >= 1000, 'waits at least the timeout before sending the namespace again');
      assert.deepEqual(delivered(standIns), ['alpha', 'beta']);
    } finally {
      await standIns.close();
    }
  });

  test('a connection reset in the middle of the body is retried', async () => {
    const { run, standIns } = await scanWith([{ reset: true }]);
    try {
      assert.equal(run.exitCode, 0, run.stdout);
      assert.deepEqual(delivered(standIns), ['alpha', 'beta']);
      assert.match(String(logsWith(run, 'delivery attempt failed, retrying')[0]!.error), /network error/);
    } finally {
      await standIns.close();
    }
  });

  test('connection refused: retried up to EPHOR_MAX_RETRIES, then exit 1 within a bounded time', async () => {
    const port = await closedPort();
    const { run, standIns } = await scanWith([], { EPHOR_API_URL: `http://127.0.0.1:${port}`, EPHOR_MAX_RETRIES: '2' });
    try {
      assert.equal(run.exitCode, 1);
      const failures = logsWith(run, 'failed to deliver scan results');
      assert.equal(failures.length, 2);
      assert.equal(failures[0]!.attempts, 3);
      assert.match(String(failures[0]!.error), /ECONNREFUSED/);
      // Bounded by the attempts counted above; runScanner's own bound ends a run that would retry on and on.
    } finally {
      await standIns.close();
    }
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}
