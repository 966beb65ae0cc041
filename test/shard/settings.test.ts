// The sharded-run settings: SHARD_COUNT=1 (the default) is today's single process; above 1 the index, the token and
// (for shards > 0) index 0's URL are required, each error naming its variable; the token is never shown.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, type Env } from '../../src/config/index.js';

const BASE: Env = { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'default' };
const TOKEN = 'settings-shard-token-0123456789abcdefgh';
const load = (env: Env) => loadConfig({ ...BASE, ...env }, { resolveExecutable: (n) => n, stdoutIsTerminal: false });

function problems(env: Env): string[] {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems.map((p) => p.message);
  }
  assert.fail('expected a configuration error');
}

describe('sharded-run settings', () => {
  test('unset: one process, whatever else is set', () => {
    assert.deepEqual(load({}).shard, { count: 1, index: 0 });
    assert.deepEqual(load({ JOB_COMPLETION_INDEX: '3' }).shard, { count: 1, index: 0 });
  });

  test('index 0 listens on 0.0.0.0:8470 by default; the token joins the secrets', () => {
    const config = load({ SHARD_COUNT: '4', JOB_COMPLETION_INDEX: '0', SHARD_TOKEN: TOKEN });
    assert.deepEqual(config.shard, {
      count: 4,
      index: 0,
      listen: { host: '0.0.0.0', port: 8470 },
      token: TOKEN,
      timeoutMs: 120_000,
    });
    assert.ok(config.secrets.includes(TOKEN));
    const v6 = load({ SHARD_COUNT: '2', JOB_COMPLETION_INDEX: '0', SHARD_TOKEN: TOKEN, SHARD_LISTEN: '[::]:9000' });
    assert.deepEqual('listen' in v6.shard && v6.shard.listen, { host: '::', port: 9000 });
  });

  test("a shard > 0 needs index 0's URL", () => {
    const config = load({
      SHARD_COUNT: '4',
      JOB_COMPLETION_INDEX: '2',
      SHARD_TOKEN: TOKEN,
      SHARD_COORDINATOR_URL: 'http://scan-0.shards:8470/',
      SHARD_TIMEOUT: '30s',
    });
    assert.deepEqual(config.shard, {
      count: 4,
      index: 2,
      coordinatorUrl: 'http://scan-0.shards:8470',
      token: TOKEN,
      timeoutMs: 30_000,
    });
    assert.deepEqual(problems({ SHARD_COUNT: '4', JOB_COMPLETION_INDEX: '2', SHARD_TOKEN: TOKEN }), [
      "SHARD_COORDINATOR_URL is required when SHARD_COUNT is 4: the shards other than index 0 need index 0's URL, e.g. http://scan-0.shards:8470",
    ]);
  });

  test('above 1, the index and the token are required, each error naming its variable', () => {
    assert.deepEqual(problems({ SHARD_COUNT: '3' }), [
      'JOB_COMPLETION_INDEX is required when SHARD_COUNT is 3: Kubernetes sets it in an Indexed Job (0 to SHARD_COUNT-1)',
      'SHARD_TOKEN is required when SHARD_COUNT is 3: the shared secret of the shards, at least 32 characters',
    ]);
    assert.deepEqual(problems({ SHARD_COUNT: '3', JOB_COMPLETION_INDEX: '3', SHARD_TOKEN: TOKEN }), [
      'JOB_COMPLETION_INDEX=3 must be from 0 to 2 (SHARD_COUNT is 3)',
    ]);
  });

  test('bad values are named with what is allowed; a short token is never shown', () => {
    const short = 'short-secret-token';
    const messages = problems({
      SHARD_COUNT: '0',
      SHARD_LISTEN: 'localhost',
      SHARD_COORDINATOR_URL: 'ftp://x',
      SHARD_TOKEN: short,
      SHARD_TIMEOUT: '10ms',
    });
    assert.deepEqual(messages, [
      'SHARD_COUNT="0" must be an integer from 1 to 100',
      'SHARD_LISTEN="localhost" must be host:port (e.g. 0.0.0.0:8470, or [::]:8470), the port from 1 to 65535',
      'SHARD_COORDINATOR_URL="ftp://x" must use http:// or https://',
      'SHARD_TOKEN=(value hidden) must be at least 32 characters long',
      'SHARD_TIMEOUT="10ms" must be at least 1s',
    ]);
    assert.doesNotMatch(messages.join('\n'), new RegExp(short));
  });
});
