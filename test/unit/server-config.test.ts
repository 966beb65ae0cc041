// The settings of server mode (issue 15): TRIVY_CACHE_MODE=server, an external TRIVY_SERVER_URL with its token and
// header, TRIVY_SERVER_START_TIMEOUT, TRIVY_SCAN_CACHE_MAX_SIZE, and the rules between them and the other modes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, type Env, type LoadOptions } from '../../src/config/index.js';
import { parseServerUrl, parseStorageSize, ValueError } from '../../src/config/parse.js';

const MINIMAL: Env = { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'default' };
const found: LoadOptions = { resolveExecutable: (name: string) => `/usr/local/bin/${name}`, stdoutIsTerminal: false };
const load = (env: Env) => loadConfig({ ...MINIMAL, ...env }, found);

function problems(env: Env): string[] {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems.map((p) => p.message);
  }
  assert.fail(`expected a configuration error for ${JSON.stringify(env)}`);
}

describe('server mode settings', () => {
  test('defaults: the CLI keeps ephemeral; server mode has a 60 s start timeout and no cache bound', () => {
    const config = load({});
    assert.equal(config.trivy.cacheMode, 'ephemeral');
    assert.equal(config.trivy.externalServer, undefined);
    assert.equal(config.trivy.serverStartTimeoutMs, 60_000);
    assert.equal(config.trivy.scanCacheMaxBytes, undefined);
  });

  test('TRIVY_CACHE_MODE=server does not force SCAN_CONCURRENCY to 1 (shared mode still does)', () => {
    const server = load({ TRIVY_CACHE_MODE: 'server', SCAN_CONCURRENCY: '8' });
    assert.equal(server.trivy.cacheMode, 'server');
    assert.equal(server.scan.concurrency, 8);
    assert.deepEqual(server.warnings, []);
    assert.equal(load({ TRIVY_CACHE_MODE: 'shared', SCAN_CONCURRENCY: '8' }).scan.concurrency, 1);
  });

  test('TRIVY_SCAN_CACHE_MAX_SIZE bounds the layer cache in server and shared modes; elsewhere it is named as unused', () => {
    assert.equal(
      load({ TRIVY_CACHE_MODE: 'server', TRIVY_SCAN_CACHE_MAX_SIZE: '2Gi' }).trivy.scanCacheMaxBytes,
      2 * 1024 ** 3,
    );
    assert.equal(
      load({ TRIVY_CACHE_MODE: 'shared', TRIVY_SCAN_CACHE_MAX_SIZE: '512Mi' }).trivy.scanCacheMaxBytes,
      512 * 1024 ** 2,
    );
    const ephemeral = load({ TRIVY_SCAN_CACHE_MAX_SIZE: '2Gi' });
    assert.equal(ephemeral.trivy.scanCacheMaxBytes, undefined);
    assert.deepEqual(ephemeral.warnings, [
      'TRIVY_SCAN_CACHE_MAX_SIZE is ignored because TRIVY_CACHE_MODE=ephemeral (it bounds the layer cache in TRIVY_CACHE_DIR, used in server and shared modes)',
    ]);
    const external = load({ TRIVY_SERVER_URL: 'http://trivy:4954', TRIVY_SCAN_CACHE_MAX_SIZE: '2Gi' });
    assert.match(external.warnings.join('\n'), /TRIVY_SCAN_CACHE_MAX_SIZE is ignored because TRIVY_SERVER_URL is set/);
    assert.match(
      problems({ TRIVY_CACHE_MODE: 'server', TRIVY_SCAN_CACHE_MAX_SIZE: '10%' })[0]!,
      /TRIVY_SCAN_CACHE_MAX_SIZE="10%" must be a number of bytes/,
    );
  });

  test('TRIVY_SERVER_URL: every scan a client of it, with its token and header; the mode is server', () => {
    const config = load({
      TRIVY_SERVER_URL: 'https://trivy.example:4954/prefix/',
      TRIVY_SERVER_TOKEN: 's3cr3t-server-token',
      TRIVY_SERVER_TOKEN_HEADER: 'X-Trivy-Token',
      SCAN_CONCURRENCY: '6',
    });
    assert.equal(config.trivy.cacheMode, 'server');
    assert.deepEqual(config.trivy.externalServer, {
      url: 'https://trivy.example:4954/prefix',
      token: 's3cr3t-server-token',
      tokenHeader: 'X-Trivy-Token',
    });
    assert.equal(config.scan.concurrency, 6);
    assert.ok(config.secrets.includes('s3cr3t-server-token'), 'the token is redacted from every log line');
    assert.equal(load({ TRIVY_SERVER_URL: 'http://trivy:4954' }).trivy.externalServer?.tokenHeader, 'Trivy-Token');
  });

  test('TRIVY_SERVER_URL with another TRIVY_CACHE_MODE: the server wins, and the warning says so', () => {
    for (const mode of ['shared', 'redis', 'ephemeral']) {
      const config = load({
        TRIVY_SERVER_URL: 'http://trivy:4954',
        TRIVY_CACHE_MODE: mode,
        TRIVY_CACHE_BACKEND: 'redis://r:6379',
        SCAN_CONCURRENCY: '4',
      });
      assert.equal(config.trivy.cacheMode, 'server', mode);
      assert.equal(config.scan.concurrency, 4, `${mode}: not lowered to 1`);
      assert.equal(config.trivy.cacheBackend, undefined);
      assert.match(
        config.warnings[0]!,
        new RegExp(`^TRIVY_CACHE_MODE=${mode} is not used because TRIVY_SERVER_URL is set`),
      );
    }
    assert.deepEqual(load({ TRIVY_SERVER_URL: 'http://trivy:4954', TRIVY_CACHE_MODE: 'server' }).warnings, []);
  });

  test('a token without TRIVY_SERVER_URL is named as unused, never shown', () => {
    const config = load({ TRIVY_SERVER_TOKEN: 'lonely-token-value' });
    assert.deepEqual(config.warnings, [
      'TRIVY_SERVER_TOKEN is ignored because TRIVY_SERVER_URL is not set (the token is sent only to an external Trivy server)',
    ]);
    assert.equal(config.trivy.externalServer, undefined);
  });

  test('bad values are refused with what is allowed; a bad token is never shown', () => {
    assert.match(problems({ TRIVY_SERVER_URL: 'trivy:4954' })[0]!, /TRIVY_SERVER_URL="trivy:4954" must use http/);
    assert.match(
      problems({ TRIVY_SERVER_URL: 'http://u:p@trivy:4954' })[0]!,
      /must not contain credentials; use TRIVY_SERVER_TOKEN/,
    );
    const token = problems({ TRIVY_SERVER_URL: 'http://trivy:4954', TRIVY_SERVER_TOKEN: 'a\nb' })[0]!;
    assert.match(token, /^TRIVY_SERVER_TOKEN=\(value hidden\) must not contain line breaks/);
    assert.match(
      problems({ TRIVY_SERVER_TOKEN_HEADER: 'Bad Header' })[0]!,
      /TRIVY_SERVER_TOKEN_HEADER="Bad Header" must be an HTTP header name/,
    );
    assert.match(problems({ TRIVY_SERVER_START_TIMEOUT: 'soon' })[0]!, /TRIVY_SERVER_START_TIMEOUT="soon"/);
    assert.match(problems({ TRIVY_CACHE_MODE: 'operator' })[0]!, /must be one of ephemeral, shared, redis, server/);
  });
});

describe('parsers', () => {
  test('parseStorageSize: bytes and Kubernetes suffixes up to Ti, at least 1Mi', () => {
    assert.equal(parseStorageSize('5Gi'), 5 * 1024 ** 3);
    assert.equal(parseStorageSize('1Ti'), 1024 ** 4);
    assert.equal(parseStorageSize('500M'), 500 * 1000 ** 2);
    assert.equal(parseStorageSize('2147483648'), 2 * 1024 ** 3);
    assert.throws(() => parseStorageSize('100Ki'), /at least 1Mi/);
    assert.throws(() => parseStorageSize('5 GB'), ValueError);
    assert.throws(() => parseStorageSize('-1Gi'), ValueError);
  });

  test('parseServerUrl: http(s), no credentials, query or fragment; a path prefix kept, the trailing slash dropped', () => {
    assert.equal(parseServerUrl(' http://127.0.0.1:4954/ '), 'http://127.0.0.1:4954');
    assert.equal(parseServerUrl('https://trivy.example/scanner/'), 'https://trivy.example/scanner');
    assert.throws(() => parseServerUrl('ftp://trivy'), /http:\/\/ or https:\/\//);
    assert.throws(() => parseServerUrl('http://trivy/?token=x'), /query string/);
    assert.throws(() => parseServerUrl('localhost:4954'), ValueError);
  });
});
