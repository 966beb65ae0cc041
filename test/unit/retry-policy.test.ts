import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  isRetryable,
  parseIngestResponse,
  parseSbomResponse,
  retryDelayMs,
  type AttemptOutcome,
} from '../../src/ephor/client.js';
import { validate } from '../support/contract.js';

const http = (status: number, retryAfter?: string): AttemptOutcome => ({ kind: 'http', status, retryAfter, text: '' });
const options = { baseMs: 1000, timeoutMs: 300_000, random: () => 1 };

describe('which failures are retried (contract §7.11)', () => {
  for (const status of [408, 429, 502, 503, 504])
    test(`HTTP ${status} is retried`, () => {
      assert.equal(isRetryable(http(status)), true);
    });
  for (const status of [400, 401, 403, 404, 405, 413, 415, 422, 500, 501]) {
    test(`HTTP ${status} is not retried`, () => {
      assert.equal(isRetryable(http(status)), false);
    });
  }
  test('network errors and timeouts are retried', () => {
    assert.equal(isRetryable({ kind: 'network', error: 'ECONNREFUSED' }), true);
    assert.equal(isRetryable({ kind: 'timeout' }), true);
  });
  test('a 2xx without a scan_id (a proxy page) is not retried', () => {
    assert.equal(isRetryable({ kind: 'invalid', status: 200, text: '<html>' }), false);
  });
});

describe('backoff', () => {
  test('exponential, capped at 60 s, jitter between 50 % and 100 %', () => {
    assert.equal(retryDelayMs(1, http(503), options), 1000);
    assert.equal(retryDelayMs(3, http(503), options), 4000);
    assert.equal(retryDelayMs(20, http(503), options), 60_000);
    assert.equal(retryDelayMs(3, http(503), { ...options, random: () => 0 }), 2000);
  });
  test('Retry-After in seconds or as an HTTP date wins, capped at 5 minutes', () => {
    assert.equal(retryDelayMs(1, http(429, '7'), options), 7000);
    const now = Date.parse('2026-11-27T10:00:00Z');
    assert.equal(retryDelayMs(1, http(503, 'Fri, 27 Nov 2026 10:00:12 GMT'), { ...options, now }), 12_000);
    assert.equal(retryDelayMs(1, http(429, '86400'), options), 300_000);
  });
  test('after a timeout, wait long enough for the slow server to finish the first request', () => {
    assert.equal(retryDelayMs(1, { kind: 'timeout' }, options), 30_000);
    assert.equal(retryDelayMs(1, { kind: 'timeout' }, { ...options, timeoutMs: 2000 }), 2000);
  });
});

describe('accepted responses', () => {
  const body = '{"scan_id":42,"vulnerabilities":5,"workloads":2,"critical_vulns":1,"auto_resolved":0,"reopened":0}';
  test('201 JSON with a numeric scan_id', () => {
    assert.deepEqual(parseIngestResponse(body, 'application/json'), {
      scan_id: 42,
      vulnerabilities: 5,
      workloads: 2,
      critical_vulns: 1,
      auto_resolved: 0,
      reopened: 0,
    });
  });
  test('anything else is not accepted', () => {
    assert.equal(parseIngestResponse('<html><body>Sign in</body></html>', 'text/html'), undefined);
    assert.equal(parseIngestResponse(body, 'text/html'), undefined);
    assert.equal(parseIngestResponse('{"scan_id":"42"}', 'application/json'), undefined);
    assert.equal(parseIngestResponse('{"stored":true}', 'application/json'), undefined);
    assert.equal(parseIngestResponse('', null), undefined);
  });
});

describe('accepted SBOM responses (contract §4)', () => {
  const answer = {
    id: '3f1c2b8e-6a4d-4f0e-9b7a-1c2d3e4f5a6b',
    image_reference: 'docker.io/library/nginx:1.25',
    content_hash: 'ab'.repeat(32),
    status: 'created',
  };
  test('201 created and 200 updated, with every field the server sends', () => {
    for (const status of ['created', 'updated']) {
      const body = { ...answer, status };
      assert.deepEqual(validate('sbom-response', body), [], 'the answer is one the contract describes');
      assert.deepEqual(parseSbomResponse(JSON.stringify(body), 'application/json'), body);
    }
  });
  test('anything else is not accepted', () => {
    assert.equal(parseSbomResponse(JSON.stringify({ ...answer, status: 'stored' }), 'application/json'), undefined);
    assert.equal(parseSbomResponse(JSON.stringify({ ...answer, id: 7 }), 'application/json'), undefined);
    assert.equal(parseSbomResponse('{"stored":true}', 'application/json'), undefined);
    assert.equal(parseSbomResponse(JSON.stringify(answer), 'text/html'), undefined);
    assert.equal(parseSbomResponse('<html><body>Sign in</body></html>', null), undefined);
  });
});
