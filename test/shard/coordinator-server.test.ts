// Index 0's port: every request needs SHARD_TOKEN (no token, a wrong one: 401, logged without what was sent),
// bodies are bounded and checked against their Content-Length, a result lands on disk and in the ledger once, and a
// result for an image index 0 does not plan is refused for good (logged).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { HEARTBEAT_PATH, MAX_RESULT_BYTES, RESULTS_PATH, wireResult } from '../../src/shard/protocol.js';
import { okResult, rawRequest, startIndex0, target, tempDir, TOKEN } from './support.js';

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const beat = JSON.stringify({ shard: 1, handedOver: 0, finished: false });

function resultBody(key: string, result: Awaited<ReturnType<typeof okResult>>, findings: string): string {
  const envelope = { shard: 1, key, result: wireResult(result), sbomBytes: 0 };
  return `${JSON.stringify(envelope)}\n${findings}`;
}

describe("index 0's shard port", () => {
  test('a request without a token, or with a wrong one, is refused with 401 and logged without any token', async (t) => {
    const dir = await tempDir(t);
    const index0 = await startIndex0(t, { dir, targets: [target('a')] });
    const wrong = 'not-the-token-but-just-as-long-1234567890';
    const none = await rawRequest(index0.url, HEARTBEAT_PATH, beat);
    const bad = await rawRequest(index0.url, HEARTBEAT_PATH, beat, bearer(wrong));
    const basic = await rawRequest(index0.url, RESULTS_PATH, 'x', { Authorization: `Basic ${TOKEN}x` });
    const good = await rawRequest(index0.url, HEARTBEAT_PATH, beat, bearer(TOKEN));

    assert.deepEqual([none.status, bad.status, basic.status, good.status], [401, 401, 401, 200]);
    assert.equal(JSON.parse(good.text).instance, index0.coordinator.instance);
    const refusals = index0.logs.withMsg('a request to the shard port was refused: no or wrong SHARD_TOKEN');
    assert.deepEqual(
      refusals.map((line) => line.token),
      ['none', 'wrong', 'wrong'],
    );
    const logged = JSON.stringify(index0.logs.lines);
    assert.doesNotMatch(logged, new RegExp(wrong));
    assert.doesNotMatch(logged, new RegExp(TOKEN));
    assert.equal(index0.settled.size, 0);
  });

  test('a result is written to disk and recorded once; a second copy is acknowledged and dropped', async (t) => {
    const dir = await tempDir(t);
    const index0 = await startIndex0(t, { dir, targets: [target('a')] });
    const findings = '[{"vulnerability_id":"CVE-1"}]';
    const result = await okResult(dir, 'a', findings);
    const first = await rawRequest(index0.url, RESULTS_PATH, resultBody('a', result, findings), bearer(TOKEN));
    const again = await rawRequest(index0.url, RESULTS_PATH, resultBody('a', result, findings), bearer(TOKEN));

    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.text).accepted, true);
    assert.equal(JSON.parse(again.text).note, 'already settled');
    const settled = index0.settled.get('a');
    assert.ok(settled?.ok);
    assert.notEqual(settled.image.file, result.ok && result.image.file, "index 0's own copy");
    assert.ok(settled.image.file.startsWith(index0.findingsDir));
    assert.equal(await readFile(settled.image.file, 'utf8'), findings);
    assert.equal(settled.image.bytes, Buffer.byteLength(findings));
  });

  test('a result for an image index 0 does not plan is refused for good and logged', async (t) => {
    const dir = await tempDir(t);
    const index0 = await startIndex0(t, { dir, targets: [target('a')] });
    const result = await okResult(dir, 'elsewhere');
    const answer = await rawRequest(
      index0.url,
      RESULTS_PATH,
      resultBody('elsewhere', result, '[{"id":1}]'),
      bearer(TOKEN),
    );

    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.text).accepted, false);
    assert.equal(index0.settled.size, 0);
    assert.equal(
      index0.logs.withMsg(
        "a shard's result for an image index 0 does not plan was ignored (the shards saw the cluster differently)",
      ).length,
      1,
    );
  });

  test('bodies are bounded: too large is 413 before reading, a wrong length or a bad envelope is 400', async (t) => {
    const dir = await tempDir(t);
    const index0 = await startIndex0(t, { dir, targets: [target('a')] });
    const result = await okResult(dir, 'a');
    const tooLarge = await new Promise<number>((resolve, reject) => {
      // announces more than the limit and sends nothing: refused from the header alone
      import('node:http')
        .then(({ request }) => {
          const req = request(
            new URL(RESULTS_PATH, index0.url),
            { method: 'POST', headers: { ...bearer(TOKEN), 'Content-Length': String(MAX_RESULT_BYTES + 1) } },
            (response) => {
              response.resume();
              resolve(response.statusCode ?? 0);
              req.destroy();
            },
          );
          req.on('error', reject);
          req.flushHeaders();
        })
        .catch(reject);
    });
    const short = resultBody('a', result, '[{"id":1}]').slice(0, -3);
    const shortened = await rawRequest(index0.url, RESULTS_PATH, short, bearer(TOKEN));
    const notJson = await rawRequest(index0.url, RESULTS_PATH, 'hello\n', bearer(TOKEN));

    assert.equal(tooLarge, 413);
    assert.equal(shortened.status, 400);
    assert.equal(notJson.status, 400);
    assert.equal(index0.settled.size, 0, 'nothing half-read reaches the ledger');
    // the key may still come in full
    const full = await rawRequest(index0.url, RESULTS_PATH, resultBody('a', result, '[{"id":1}]'), bearer(TOKEN));
    assert.equal(full.status, 200);
    assert.equal(index0.settled.size, 1);
  });
});
