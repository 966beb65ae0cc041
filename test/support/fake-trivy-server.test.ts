// The stand-in's client/server mode against what Trivy v0.69.3 does (see the comments in fake-trivy.mjs): the server
// listens where told, answers /healthz and /version without a token, refuses a wrong token with Twirp's real
// "twirp error unauthenticated: invalid token", keeps its layer cache in files under --cache-dir (a new server on the
// same folder is warm), applies layers (a missing one is "layer cache missing"); the client downloads only what the
// server misses and writes the same report as a local scan; the server has no Java DB flags.
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../src/trivy/server.js';
import {
  FAKE_TRIVY_BIN,
  readInvocations,
  startFakeTrivyServer,
  writeScenario,
  type FakeTrivyScenario,
} from './fake-trivy.js';

const run = promisify(execFile);
const REF_A = 'ghcr.io/acme/a@sha256:' + 'a'.repeat(64);
const REF_B = 'ghcr.io/acme/b@sha256:' + 'b'.repeat(64);
const TOKEN = 'stand-in-token-6c1e';

describe('fake trivy: client/server mode', { timeout: 60_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  let log: string;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-fake-server-'));
    const scenario: FakeTrivyScenario = {
      images: {
        [REF_A]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json', layers: ['sha256:base', 'sha256:a'] },
        [REF_B]: { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json', layers: ['sha256:base', 'sha256:b'] },
      },
    };
    const written = await writeScenario(dir, scenario);
    log = written.logPath;
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, FAKE_TRIVY_SCENARIO: written.scenarioPath };
    await run(FAKE_TRIVY_BIN, ['image', '--download-db-only', '--cache-dir', path.join(dir, 'cache')], { env });
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  async function server(cacheDir = path.join(dir, 'cache')): Promise<{ url: string; child: ChildProcess }> {
    const started = await startFakeTrivyServer({
      env: { ...env, TRIVY_TOKEN: TOKEN },
      cacheDir,
      extraArgs: ['--skip-db-update'],
    });
    children.push(started.child);
    return started;
  }

  const client = (url: string, ref: string, token = TOKEN) =>
    run(
      FAKE_TRIVY_BIN,
      ['image', '--server', url, '--format', 'json', '--output', path.join(dir, 'out.json'), '--scanners', 'vuln', ref],
      { env: { ...env, TRIVY_TOKEN: token } },
    );

  test('/healthz and /version need no token; the Twirp services refuse a wrong one with the real error', async () => {
    const { url, child } = await server();
    assert.equal(await (await fetch(`${url}/healthz`)).text(), 'ok');
    const version = (await (await fetch(`${url}/version`)).json()) as { Version: string; VulnerabilityDB: object };
    assert.equal(version.Version, '0.69.3');
    assert.ok(version.VulnerabilityDB);
    const refused = await fetch(`${url}/twirp/trivy.cache.v1.Cache/MissingBlobs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Trivy-Token': 'nope' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), { code: 'unauthenticated', msg: 'invalid token' });
    await assert.rejects(client(url, REF_A, 'wrong'), (error: { stderr: string; code: number }) => {
      assert.equal(error.code, 1);
      assert.match(
        error.stderr,
        /\tFATAL\tFatal error\trun error: image scan error: scan error: scan failed: failed analysis: unable to get missing layers: unable to fetch missing layers: twirp error unauthenticated: invalid token\n$/,
      );
      return true;
    });
    child.kill('SIGKILL');
  });

  test('the client downloads only what the server misses; a new server on the same folder is warm', async () => {
    const first = await server();
    await client(first.url, REF_A);
    const local = JSON.parse(await readFile(path.join(dir, 'out.json'), 'utf8')) as { ArtifactName: string };
    assert.equal(local.ArtifactName, REF_A);
    await client(first.url, REF_B);
    first.child.kill('SIGKILL');
    const second = await server();
    await client(second.url, REF_B);
    const scans = (await readInvocations(log)).filter((i) => i.behaviour === 'client-report');
    assert.deepEqual(
      scans.slice(-3).map((s) => s.layers),
      [
        { downloaded: ['sha256:base', 'sha256:a'], cached: [] },
        { downloaded: ['sha256:b'], cached: ['sha256:base'] },
        { downloaded: [], cached: ['sha256:base', 'sha256:b'] },
      ],
    );
    second.child.kill('SIGKILL');
  });

  test('the client writes the report a local scan writes', async () => {
    const { url, child } = await server();
    await client(url, REF_B);
    const viaServer = await readFile(path.join(dir, 'out.json'), 'utf8');
    await run(
      FAKE_TRIVY_BIN,
      [
        'image',
        '--format',
        'json',
        '--output',
        path.join(dir, 'out.json'),
        '--scanners',
        'vuln',
        '--cache-dir',
        path.join(dir, 'cache'),
        REF_B,
      ],
      { env },
    );
    const strip = (text: string) => text.replace(/"CreatedAt": "[^"]*"/, '').replace(/"ReportID": "[^"]*"/, '');
    assert.equal(strip(viaServer), strip(await readFile(path.join(dir, 'out.json'), 'utf8')));
    child.kill('SIGKILL');
  });

  test('a layer the server lost: the Scan call fails with "layer cache missing"', async () => {
    const warm = await server();
    const missing = await fetch(`${warm.url}/twirp/trivy.scanner.v1.Scanner/Scan`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Trivy-Token': TOKEN },
      body: JSON.stringify({ target: 'x', artifact_id: 'sha256:1', blob_ids: ['sha256:gone'] }),
    });
    assert.equal(missing.status, 500);
    assert.deepEqual(await missing.json(), {
      code: 'internal',
      msg: 'failed scan, x: failed to apply layers: layer cache missing: sha256:gone',
    });
    warm.child.kill('SIGKILL');
  });

  test('an unreachable server: the client fails with the transport error Twirp wraps', async () => {
    const port = await freePort();
    await assert.rejects(client(`http://127.0.0.1:${port}`, REF_A), (error: { stderr: string }) => {
      assert.ok(
        error.stderr.includes(
          `unable to fetch missing layers: twirp error internal: failed to do request: Post "http://127.0.0.1:${port}/twirp/trivy.cache.v1.Cache/MissingBlobs": dial tcp 127.0.0.1:${port}: connect: connection refused`,
        ),
        error.stderr,
      );
      return true;
    });
  });

  test('the server has no Java DB flags and cannot skip the DB on a first run; a server address needs a scheme', async () => {
    await assert.rejects(
      run(FAKE_TRIVY_BIN, ['server', '--skip-java-db-update'], { env }),
      (error: { stderr: string }) => /unknown flag: --skip-java-db-update/.test(error.stderr),
    );
    await assert.rejects(
      run(FAKE_TRIVY_BIN, ['server', '--cache-dir', path.join(dir, 'empty'), '--skip-db-update'], { env }),
      (error: { stderr: string }) =>
        /FATAL\tFatal error\tdatabase error: --skip-db-update cannot be specified on the first run/.test(error.stderr),
    );
    await assert.rejects(client('127.0.0.1:4954', REF_A), (error: { stderr: string }) =>
      /flag error: server address must include HTTP or HTTPS schema/.test(error.stderr),
    );
  });
});
