// A scan as a client of a Trivy server: its flags (the report flags as in a local scan, --server, no
// --skip-db-update, the Java DB flags kept, the token never in argv), how its failures are classified (Twirp errors
// of the server, in the client's real error chains; registry failures as in a local scan), and the layer cache's
// hygiene on the volume (src/trivy/layer-cache.ts).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger, SecretRegistry } from '../../src/log.js';
import type { TrivySetup } from '../../src/trivy/database.js';
import { classifyFailure } from '../../src/trivy/failure.js';
import { directorySize, prepareLayerCache, summariseLayerCache } from '../../src/trivy/layer-cache.js';
import { scanArgs } from '../../src/trivy/scan.js';

const config = loadConfig(
  { EPHOR_API_URL: 'http://ephor:8080', SCAN_NAMESPACES: 'default', TRIVY_CACHE_MODE: 'server' },
  { resolveExecutable: (name) => name, stdoutIsTerminal: false },
);
const setup: TrivySetup = {
  version: '0.69.3',
  db: { ready: true },
  javaDb: { ready: true },
  supportsVersionCheckFlags: true,
  supportsRepositoryList: true,
};

describe('client scan flags', () => {
  const input = { ref: 'ghcr.io/acme/app:1', outputFile: '/w/report.json', cacheDir: '/w/cache', config, setup };

  test('--server URL instead of --skip-db-update; the report flags and the Java DB flags as in a local scan', () => {
    const local = scanArgs(input);
    const client = scanArgs({
      ...input,
      client: { url: 'http://127.0.0.1:40123', env: { TRIVY_TOKEN: 'tok-123' }, generation: 1 },
    });
    assert.ok(local.includes('--skip-db-update'));
    assert.ok(!client.includes('--skip-db-update'), 'a client never opens a vulnerability DB');
    assert.deepEqual(client.slice(client.indexOf('--server'), client.indexOf('--server') + 2), [
      '--server',
      'http://127.0.0.1:40123',
    ]);
    assert.ok(!client.includes('--token-header'), "Trivy's default header is not named");
    assert.ok(!client.join(' ').includes('tok-123'), 'the token is never in argv');
    const strip = (args: string[]) =>
      args.filter((a, i) => !['--server', '--skip-db-update'].includes(a) && args[i - 1] !== '--server');
    assert.deepEqual(strip(client), strip(local), 'every other flag is the same');
    for (const flag of ['--skip-java-db-update', '--format', '--scanners', '--severity', '--list-all-pkgs=false'])
      assert.ok(client.includes(flag), flag);
  });

  test('an external server reading another header gets --token-header; a missing Java DB its mirrors', () => {
    const args = scanArgs({
      ...input,
      setup: { ...setup, javaDb: { ready: false } },
      config: { ...config, trivy: { ...config.trivy, javaDbRepositories: ['mirror.local/java-db:1'] } },
      client: { url: 'https://trivy.example', env: {}, tokenHeader: 'X-Trivy-Token', generation: 1 },
    });
    assert.deepEqual(args.slice(args.indexOf('--token-header'), args.indexOf('--token-header') + 2), [
      '--token-header',
      'X-Trivy-Token',
    ]);
    assert.deepEqual(args.slice(args.indexOf('--java-db-repository'), args.indexOf('--java-db-repository') + 2), [
      '--java-db-repository',
      'mirror.local/java-db:1',
    ]);
  });
});

/** A client's FATAL line, in Trivy's log format, with the client's chain above the server's error. */
const fatal = (chain: string) => `2026-12-02T10:00:00Z\tFATAL\tFatal error\t${chain}\n`;
const RUN = 'run error: image scan error: scan error: scan failed: ';
const MISSING = `${RUN}failed analysis: unable to get missing layers: unable to fetch missing layers: `;
const PUT = `${RUN}failed analysis: analyze error: pipeline error: failed to store layer: sha256:abc in cache: unable to store cache on the server: `;
const SCAN = `${RUN}scan failed: failed to detect vulnerabilities via RPC: `;
const failure = (stderr: string) => classifyFailure({ exitCode: 1, signal: null, timedOut: false, stderr });

describe('client scan failures', () => {
  test('a refused token is not a registry refusal (no other pull secret is tried for it): other, with the fix', () => {
    const result = failure(fatal(`${MISSING}twirp error unauthenticated: invalid token`));
    assert.equal(result.reason, 'other');
    assert.match(
      result.detail,
      /^the Trivy server refused the token \(TRIVY_SERVER_TOKEN, TRIVY_SERVER_TOKEN_HEADER\): /,
    );
    assert.match(result.detail, /twirp error unauthenticated: invalid token$/);
  });

  test('an unreachable server, in each call of the client', () => {
    for (const chain of [MISSING, PUT, SCAN]) {
      const result = failure(
        fatal(
          `${chain}twirp error internal: failed to do request: Post "http://127.0.0.1:40123/twirp/trivy.cache.v1.Cache/MissingBlobs": dial tcp 127.0.0.1:40123: connect: connection refused`,
        ),
      );
      assert.equal(result.reason, 'other');
      assert.match(result.detail, /^the Trivy server could not be reached: /);
    }
    assert.match(
      failure(
        fatal(
          `${SCAN}twirp error unavailable: Error from intermediary with HTTP status code 503 "Service Unavailable"`,
        ),
      ).detail,
      /could not be reached/,
    );
  });

  test('throttling and timeouts of the server keep their reasons; a lost layer says so', () => {
    assert.equal(
      failure(
        fatal(
          `${SCAN}twirp error resource_exhausted: Error from intermediary with HTTP status code 429 "Too Many Requests"`,
        ),
      ).reason,
      'rate_limited',
    );
    assert.equal(failure(fatal(`${SCAN}twirp error deadline_exceeded: context deadline exceeded`)).reason, 'timeout');
    const lost = failure(
      fatal(
        `${SCAN}twirp error internal: failed scan, ghcr.io/acme/app:1: failed to apply layers: layer cache missing: sha256:abc`,
      ),
    );
    assert.equal(lost.reason, 'other');
    assert.match(lost.detail, /^the Trivy server lost layers the scan had sent it/);
  });

  test("registry failures of a client are classified as a local scan's (the client pulls the image)", () => {
    const remote =
      '2026-12-02T10:00:00Z\tFATAL\tFatal error\trun error: image scan error: scan error: unable to initialize a scan service: unable to initialize artifact: unable to initialize container image: unable to find the specified image "ghcr.io/acme/app:1" in ["remote"]: 1 error occurred:\n\t* remote error: GET https://ghcr.io/v2/acme/app/manifests/1: UNAUTHORIZED: authentication required\n\n\n';
    assert.equal(failure(remote).reason, 'unauthorized');
    assert.equal(
      failure(remote.replace('UNAUTHORIZED: authentication required', 'MANIFEST_UNKNOWN: manifest unknown')).reason,
      'not_found',
    );
  });

  test('a server error carrying a DB failure is still a DB failure', () => {
    assert.equal(
      failure(
        fatal(
          `${SCAN}twirp error internal: failed scan, app: failed to detect vulnerabilities: DB error: bolt: database not open`,
        ),
      ).reason,
      'db_error',
    );
  });
});

describe('layer cache hygiene', () => {
  let dir: string;
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'info',
    format: 'json',
    secrets: new SecretRegistry(),
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-layer-cache-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function fill(cacheDir: string, bytes: number): Promise<void> {
    await mkdir(path.join(cacheDir, 'fanal', 'sub'), { recursive: true });
    await writeFile(path.join(cacheDir, 'fanal', 'fanal.db'), Buffer.alloc(bytes));
    await writeFile(path.join(cacheDir, 'fanal', 'sub', 'x'), Buffer.alloc(10));
    await mkdir(path.join(cacheDir, 'db'), { recursive: true });
    await writeFile(path.join(cacheDir, 'db', 'trivy.db'), 'db');
  }

  test('a cache written by the same version and within the bound is kept and measured', async () => {
    const cacheDir = path.join(dir, 'same');
    await prepareLayerCache(cacheDir, '0.69.3', undefined, log);
    await fill(cacheDir, 1000);
    const state = await prepareLayerCache(cacheDir, '0.69.3', 1024 * 1024, log);
    assert.equal(state.cleared, undefined);
    assert.ok(state.bytesBefore >= 1010);
    await writeFile(path.join(cacheDir, 'fanal', 'fanal.db'), Buffer.alloc(5000));
    const summary = await summariseLayerCache(state, log);
    assert.deepEqual(summary, {
      bytesBefore: state.bytesBefore,
      bytesAfter: state.bytesBefore + 4000,
      cleared: undefined,
    });
  });

  test('another Trivy version, or none recorded: cleared, the DBs beside it kept, the new version recorded', async () => {
    for (const [name, previous] of [
      ['older', '0.68.2'],
      ['unmarked', undefined],
    ] as const) {
      const cacheDir = path.join(dir, name);
      if (previous) await prepareLayerCache(cacheDir, previous, undefined, log);
      await fill(cacheDir, 1000);
      const state = await prepareLayerCache(cacheDir, '0.69.3', undefined, log);
      assert.equal(state.cleared, 'trivy_version', name);
      assert.equal((await directorySize(path.join(cacheDir, 'fanal'))) < 100, true, 'only the marker is left');
      assert.equal(await readFile(path.join(cacheDir, 'db', 'trivy.db'), 'utf8'), 'db');
      assert.deepEqual(JSON.parse(await readFile(path.join(cacheDir, 'fanal', 'ephor-scanner.json'), 'utf8')), {
        trivy_version: '0.69.3',
      });
    }
    const logged = lines.find((l) => l.reason === 'trivy_version' && l.written_by === '0.68.2');
    assert.ok(logged);
  });

  test('over TRIVY_SCAN_CACHE_MAX_SIZE: cleared; an empty first cache is not "cleared"', async () => {
    const cacheDir = path.join(dir, 'big');
    const first = await prepareLayerCache(cacheDir, '0.69.3', 2048, log);
    assert.equal(first.cleared, undefined);
    assert.ok(first.bytesBefore === 0);
    await fill(cacheDir, 4096);
    const state = await prepareLayerCache(cacheDir, '0.69.3', 2048, log);
    assert.equal(state.cleared, 'size');
    assert.ok(state.bytesBefore > 4096);
    assert.equal(await readFile(path.join(cacheDir, 'db', 'trivy.db'), 'utf8'), 'db');
  });
});
