// A shard's handover to index 0: retried until index 0 takes it (network errors, 5xx), handed over again in full when
// index 0 restarts (a new instance, an empty disk), and fatal when index 0 refuses the token or stays silent for
// SHARD_TIMEOUT. Everything on loopback; conditions are awaited, never timed.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { systemClock } from '../../src/run/adapters.js';
import { Handover, ShardFatal } from '../../src/shard/handover.js';
import { captureLog } from '../support/run-fakes.js';
import { okResult, startIndex0, target, tempDir, TOKEN, until } from './support.js';

function handover(t: TestContext, url: string, token = TOKEN, timeoutMs = 5000) {
  const logs = captureLog();
  const h = new Handover({
    url,
    token,
    shard: 1,
    timeoutMs,
    clock: systemClock,
    log: logs.log,
    retryMs: { first: 20, max: 100 },
  });
  const loops = h.run();
  t.after(async () => {
    h.stop();
    await loops;
  });
  return { h, logs, loops };
}

/** Forwards to `to` except for the first `drop` result requests, whose connections it destroys (a network error). */
async function flakyProxy(t: TestContext, to: () => string, drop: number) {
  let dropped = 0;
  const server = http.createServer((request, response) => {
    if (request.url === '/v1/results' && dropped < drop) {
      dropped++;
      request.socket.destroy();
      return;
    }
    const upstream = http.request(
      new URL(request.url!, to()),
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, dropped: () => dropped };
}

describe('handover to index 0', () => {
  test('a result whose requests fail on the network is sent again until index 0 has it', async (t) => {
    const dir = await tempDir(t);
    const index0 = await startIndex0(t, { dir, targets: [target('a'), target('b')] });
    const proxy = await flakyProxy(t, () => index0.url, 3);
    const { h } = handover(t, proxy.url);
    h.add(target('a'), await okResult(dir, 'a'));
    h.add(target('b'), await okResult(dir, 'b'));
    h.finishScanning();

    await until(() => index0.settled.size === 2, 'both results at index 0');
    assert.equal(proxy.dropped(), 3);
    await until(() => h.unacknowledged() === 0, 'both acknowledged');
    index0.coordinator.finish().catch(() => undefined);
    assert.equal(await h.until('done'), 'done');
  });

  test('index 0 restarted (new instance, empty disk): every result the shard holds is handed over again', async (t) => {
    const dir = await tempDir(t);
    const targets = [target('a'), target('b')];
    const first = await startIndex0(t, { dir, targets });
    const port = first.server.port;
    const { h, logs } = handover(t, first.url);
    h.add(target('a'), await okResult(dir, 'a'));
    h.add(target('b'), await okResult(dir, 'b'));
    h.finishScanning();
    await until(() => first.settled.size === 2 && h.unacknowledged() === 0, 'handed over to the first index 0');
    await first.server.close();

    const second = await startIndex0(t, { dir, targets, port });
    await until(() => second.settled.size === 2, 'handed over again to the restarted index 0');
    assert.deepEqual([...second.settled.keys()].sort(), ['a', 'b']);
    assert.equal(
      logs.withMsg('index 0 restarted (its instance changed): handing over again every result this shard holds').length,
      1,
    );
    await until(() => h.unacknowledged() === 0, 'acknowledged by the new instance');
  });

  test('index 0 refusing the token is fatal at once, with a message naming SHARD_TOKEN (and not the token)', async (t) => {
    const dir = await tempDir(t);
    const index0 = await startIndex0(t, { dir, targets: [target('a')] });
    const wrong = 'another-token-that-is-long-enough-000000';
    const { h, logs } = handover(t, index0.url, wrong);
    await assert.rejects(h.until('scan'), (error: Error) => {
      assert.ok(error instanceof ShardFatal);
      assert.match(error.message, /refused this shard's SHARD_TOKEN \(401\)/);
      assert.doesNotMatch(error.message, new RegExp(wrong));
      return true;
    });
    assert.doesNotMatch(JSON.stringify(logs.lines), new RegExp(wrong));
  });

  test('index 0 silent for SHARD_TIMEOUT: fatal, naming the URL and SHARD_TIMEOUT', async (t) => {
    // a port nobody listens on
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const { h } = handover(t, `http://127.0.0.1:${port}`, TOKEN, 300);
    await assert.rejects(
      h.until('scan'),
      /index 0 at http:\/\/127\.0\.0\.1:\d+ did not answer for \d+ s \(SHARD_TIMEOUT\): ECONNREFUSED/,
    );
  });
});
