// `check` in server mode: an external Trivy server (TRIVY_SERVER_URL, the stand-in `trivy server` run as an operator
// would) is checked for /healthz, its version (/version; a known-malicious release is a blocker), its DB and the
// token; the local vulnerability DB is then not asked for. With the scanner's own server, the layer cache is shown.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkTrivy } from '../../src/check/trivy.js';
import { loadConfig, type Env } from '../../src/config/index.js';
import { freePort } from '../../src/trivy/server.js';
import { stopLauncher } from '../../src/trivy/launcher/client.js';
import { FAKE_TRIVY_BIN, FAKE_TRIVY_SCENARIO_ENV, startFakeTrivyServer, writeScenario } from '../support/fake-trivy.js';

const TOKEN = 'check-server-token-93b1';

async function startServer(dir: string, version: string): Promise<{ url: string; child: ChildProcess; env: Env }> {
  const { scenarioPath } = await writeScenario(dir, { version });
  const env = { PATH: process.env.PATH, HOME: dir, [FAKE_TRIVY_SCENARIO_ENV]: scenarioPath };
  const cache = path.join(dir, 'server-cache');
  await new Promise((resolve) =>
    spawn(FAKE_TRIVY_BIN, ['image', '--download-db-only', '--cache-dir', cache], { env }).on('exit', resolve),
  );
  const { url, child } = await startFakeTrivyServer({ env: { ...env, TRIVY_TOKEN: TOKEN }, cacheDir: cache });
  return { url, child, env };
}

function config(env: Env) {
  return loadConfig(
    { EPHOR_API_URL: 'http://ephor:8080', SCAN_NAMESPACES: 'default', TRIVY_BINARY: FAKE_TRIVY_BIN, ...env },
    { resolveExecutable: (name) => name, stdoutIsTerminal: false },
  );
}

describe('check: server mode', { timeout: 60_000 }, () => {
  let dir: string;
  let good: { url: string; child: ChildProcess; env: Env };
  let bad: { url: string; child: ChildProcess; env: Env };
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-check-server-'));
    [good, bad] = await Promise.all([
      startServer(path.join(dir, 'good'), '0.69.3'),
      startServer(path.join(dir, 'bad'), '0.69.4'),
    ]);
  });
  after(async () => {
    good.child.kill('SIGKILL');
    bad.child.kill('SIGKILL');
    await stopLauncher();
    await rm(dir, { recursive: true, force: true });
  });

  /** The scanner's own Trivy is always the good one (0.69.3); the server varies. */
  const run = async (server: { url: string }, extra: Env) => {
    const env = {
      ...good.env,
      TRIVY_CACHE_DIR: path.join(dir, 'client-cache'),
      TRIVY_SERVER_URL: server.url,
      ...extra,
    };
    return checkTrivy(config(env), env, false);
  };

  test('a healthy server of the same version taking the token: passes, and no local vulnerability DB is asked for', async () => {
    const results = await run(good, { TRIVY_SERVER_TOKEN: TOKEN });
    const messages = results.map((r) => `${r.status} ${r.message}`);
    assert.ok(messages.includes(`pass the Trivy server at ${good.url} answers /healthz`), messages.join('\n'));
    assert.ok(messages.includes(`pass the Trivy server at ${good.url} is Trivy 0.69.3`));
    assert.ok(messages.some((m) => /^pass the Trivy server's vulnerability DB was updated 1 h ago$/.test(m)));
    assert.ok(messages.includes("pass the Trivy server takes the scanner's token"));
    assert.ok(!messages.some((m) => /vulnerability DB in .*client-cache/.test(m)), 'no local DB line');
    assert.deepEqual(
      results.filter((r) => r.status === 'fail'),
      [],
    );
  });

  test('a wrong token is a blocker naming both settings; the token itself is never shown', async () => {
    const results = await run(good, { TRIVY_SERVER_TOKEN: 'wrong-token-55' });
    const failure = results.find((r) => r.status === 'fail')!;
    assert.equal(
      failure.message,
      `the Trivy server at ${good.url} refuses the token (twirp error unauthenticated: invalid token)`,
    );
    assert.match(
      failure.fix!,
      /TRIVY_SERVER_TOKEN \(chart: trivy\.serverToken\).*TRIVY_SERVER_TOKEN_HEADER \(chart: trivy\.serverTokenHeader\)/,
    );
    assert.ok(!JSON.stringify(results).includes('wrong-token-55'));
  });

  test('a server running a known-malicious Trivy release is a blocker', async () => {
    const results = await run(bad, { TRIVY_SERVER_TOKEN: TOKEN });
    const failure = results.find((r) => r.status === 'fail')!;
    assert.match(
      failure.message,
      /^the Trivy server at .* runs Trivy 0\.69\.4 is a malicious release .*GHSA-69fq-xp46-6x23/,
    );
  });

  test('a server that does not answer is a blocker with the address to check', async () => {
    const port = await freePort();
    const results = await run({ url: `http://127.0.0.1:${port}` }, {});
    const failure = results.find((r) => r.status === 'fail')!;
    assert.match(
      failure.message,
      /^the Trivy server at TRIVY_SERVER_URL does not answer: GET http:\/\/127\.0\.0\.1:\d+\/healthz failed: connect ECONNREFUSED/,
    );
    assert.match(failure.fix!, /TRIVY_SERVER_URL \(chart: trivy\.serverUrl\)/);
  });

  test("the scanner's own server: the layer cache's size against its bound, and which Trivy wrote it", async () => {
    const cacheDir = path.join(dir, 'own');
    await mkdir(path.join(cacheDir, 'fanal'), { recursive: true });
    await writeFile(path.join(cacheDir, 'fanal', 'fanal.db'), Buffer.alloc(3 * 1024 * 1024));
    await writeFile(path.join(cacheDir, 'fanal', 'ephor-scanner.json'), '{"trivy_version":"0.69.3"}\n');
    const env = { ...good.env, TRIVY_CACHE_DIR: cacheDir, TRIVY_CACHE_MODE: 'server' };
    const within = await checkTrivy(config({ ...env, TRIVY_SCAN_CACHE_MAX_SIZE: '10Mi' }), env, false);
    assert.ok(
      within.some(
        (r) =>
          r.status === 'pass' &&
          r.message ===
            `server mode: each run starts a Trivy server on a loopback port; layer cache ${cacheDir}/fanal: 3.0 MiB of at most 10.0 MiB, written by Trivy 0.69.3`,
      ),
      within.map((r) => r.message).join('\n'),
    );
    const over = await checkTrivy(config({ ...env, TRIVY_SCAN_CACHE_MAX_SIZE: '2Mi' }), env, false);
    assert.ok(over.some((r) => r.message.endsWith('3.0 MiB of at most 2.0 MiB: the next run clears it')));
  });
});
