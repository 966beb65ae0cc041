// The run's own Trivy server (src/trivy/server.ts) against the stand-in `trivy server`, in-process: it starts on a
// loopback port with a fresh token in its environment only; a server that exits or stops answering is replaced once
// on a fresh port (callers at the same time share the replacement), then the run falls back to ephemeral scans; a
// server that never gets healthy is killed and reported with its stderr; stop() leaves no process behind.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger, SecretRegistry } from '../../src/log.js';
import { probeHealthz } from '../../src/trivy/server-api.js';
import { startOwnServer, type OwnServer } from '../../src/trivy/server.js';
import { stopLauncher } from '../../src/trivy/launcher/client.js';
import {
  FAKE_TRIVY_BIN,
  FAKE_TRIVY_SCENARIO_ENV,
  readInvocations,
  writeScenario,
  type FakeTrivyScenario,
} from '../support/fake-trivy.js';
import { processGone } from '../support/processes.js';
import { runTrivy } from '../../src/trivy/process.js';

interface Line {
  level: string;
  msg: string;
  [key: string]: unknown;
}

async function setup(dir: string, scenario: FakeTrivyScenario) {
  const { scenarioPath, logPath } = await writeScenario(dir, scenario);
  const env = { PATH: process.env.PATH, HOME: dir, [FAKE_TRIVY_SCENARIO_ENV]: scenarioPath };
  const cacheDir = path.join(dir, 'cache');
  const download = await runTrivy({
    binary: FAKE_TRIVY_BIN,
    args: ['image', '--download-db-only', '--cache-dir', cacheDir],
    env,
    timeoutMs: 30_000,
  });
  assert.equal(download.exitCode, 0, download.stderr);
  const lines: Line[] = [];
  const secrets = new SecretRegistry();
  const log = createLogger({
    level: 'debug',
    format: 'json',
    secrets,
    write: (line) => lines.push(JSON.parse(line) as Line),
  });
  const options = {
    binary: FAKE_TRIVY_BIN,
    cacheDir,
    env,
    startTimeoutMs: 15_000,
    log,
    registerSecret: (secret: string) => {
      secrets.add(secret);
    },
  };
  return {
    options,
    lines,
    secrets,
    servers: async () => (await readInvocations(logPath)).filter((i) => i.argv[0] === 'server'),
  };
}

describe("the run's own Trivy server", { timeout: 120_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-trivy-server-'));
  });
  after(async () => {
    await stopLauncher();
    await rm(dir, { recursive: true, force: true });
  });

  test('starts on 127.0.0.1 with a fresh token in its environment; stop() leaves nothing behind', async () => {
    const s = await setup(path.join(dir, 'start'), {});
    const server = (await startOwnServer(s.options))!;
    assert.ok(server);
    const target = (await server.target())!;
    assert.match(target.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(target.generation, 1);
    const token = target.env.TRIVY_TOKEN!;
    assert.ok(token.length >= 40);
    assert.equal(s.secrets.scrub(`x ${token} y`), 'x [REDACTED] y', 'registered as a secret');
    const [started] = await s.servers();
    assert.deepEqual(started!.argv, [
      'server',
      '--listen',
      target.url.slice('http://'.length),
      '--cache-dir',
      s.options.cacheDir,
      '--skip-db-update',
      '--no-progress',
    ]);
    assert.ok(!started!.argv.join(' ').includes(token));
    assert.equal((await probeHealthz(target.url, 2000)).ok, true);
    const other = (await startOwnServer(s.options))!;
    assert.notEqual((await other.target())!.env.TRIVY_TOKEN, token, 'each server session its own token');
    await other.stop();
    await server.stop();
    assert.ok(await processGone(started!.pid));
    assert.equal(await server.target(), undefined);
    assert.equal(await server.retryAfter(target, 'failed to do request'), false, 'nothing is retried once stopped');
  });

  test('a server that exits is replaced once on a fresh port; then the run falls back to ephemeral scans', async () => {
    const s = await setup(path.join(dir, 'exit'), {});
    const server = (await startOwnServer(s.options)) as OwnServer;
    const first = (await server.target())!;
    const [one] = await s.servers();
    process.kill(one!.pid, 'SIGKILL');
    // A client that failed against it, asking at the same time as the exit is noticed: one replacement for both.
    const [retryA, retryB] = await Promise.all([
      server.retryAfter(first, 'twirp error internal: failed to do request: Post "x": EOF'),
      server.retryAfter(first, 'twirp error internal: failed to do request: Post "x": EOF'),
    ]);
    assert.deepEqual([retryA, retryB], [true, true]);
    const second = (await server.target())!;
    assert.equal(second.generation, 2);
    assert.notEqual(second.url, first.url);
    assert.equal(second.env.TRIVY_TOKEN, first.env.TRIVY_TOKEN, 'the run keeps its token');
    assert.equal((await s.servers()).length, 2);
    assert.equal(s.lines.filter((l) => l.msg === 'the Trivy server failed during the run').length, 1);
    const [two] = (await s.servers()).slice(1);
    process.kill(two!.pid, 'SIGKILL');
    assert.equal(
      await server.retryAfter(second, 'remote error: GET …: MANIFEST_UNKNOWN: manifest unknown'),
      false,
      "the image's own failure is not retried",
    );
    assert.equal(
      await server.retryAfter(
        second,
        'twirp error internal: failed to do request: Post "x": dial tcp x: connect: connection refused',
      ),
      true,
      'scanned again, in ephemeral mode',
    );
    assert.equal(await server.target(), undefined);
    assert.equal((await s.servers()).length, 2, 'no third server');
    assert.equal(
      s.lines.filter((l) => l.msg === 'the Trivy server failed a second time: scanning the rest in ephemeral mode')
        .length,
      1,
    );
    await server.stop();
  });

  test('a server that stops answering is found by /healthz after a client failure, killed and replaced', async () => {
    const s = await setup(path.join(dir, 'hung'), {});
    const server = (await startOwnServer(s.options))!;
    const first = (await server.target())!;
    const [one] = await s.servers();
    assert.equal(
      await server.retryAfter(first, 'remote error: MANIFEST_UNKNOWN'),
      false,
      "a registry failure against a healthy server is the image's",
    );
    assert.equal(await server.retryAfter(first, 'failed to do request: Post "x": EOF'), false, 'still healthy');
    process.kill(one!.pid, 'SIGSTOP');
    try {
      assert.equal(await server.retryAfter(first, 'failed to do request: Post "x": EOF'), true);
      assert.equal((await server.target())!.generation, 2);
      assert.ok(await processGone(one!.pid), 'the hung server was killed');
    } finally {
      try {
        process.kill(one!.pid, 'SIGCONT');
      } catch {
        // killed
      }
    }
    await server.stop();
  });

  test('a server that never answers /healthz: undefined after one warning with its stderr, and it is killed', async () => {
    const s = await setup(path.join(dir, 'stuck'), { server: { startDelayMs: 60_000 } });
    const server = await startOwnServer({ ...s.options, startTimeoutMs: 1500 });
    assert.equal(server, undefined);
    const [warning, ...more] = s.lines.filter((l) => l.level === 'warn');
    assert.deepEqual(more, []);
    assert.equal(
      warning!.msg,
      'the Trivy server could not be started: scanning in ephemeral mode (each scan downloads every layer)',
    );
    assert.match(
      String(warning!.error),
      /did not answer GET \/healthz with "ok" within 1\.5 s \(GET http:\/\/127\.0\.0\.1:\d+\/healthz failed: connect ECONNREFUSED/,
    );
    const [stuck] = await s.servers();
    assert.ok(await processGone(stuck!.pid));
  });

  test('a server that exits at once (no DB with --skip-db-update): its FATAL line is in the warning', async () => {
    const s = await setup(path.join(dir, 'nodb'), {});
    const server = await startOwnServer({ ...s.options, cacheDir: path.join(dir, 'nodb', 'empty') });
    assert.equal(server, undefined);
    const [warning] = s.lines.filter((l) => l.level === 'warn');
    assert.match(String(warning!.error), /trivy server exited before answering \/healthz \(exit code 1\)/);
    assert.match(String(warning!.stderr), /--skip-db-update cannot be specified on the first run/);
  });
});
