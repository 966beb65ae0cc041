import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { bestDetail, classifyFailure, writeFailure } from '../../src/trivy/failure.js';
import { fixture } from '../support/paths.js';

interface ErrorEntry {
  id: string;
  exitCode: number;
  stderr: string;
}
const entries = (JSON.parse(readFileSync(fixture('trivy', 'errors.json'), 'utf8')) as { entries: ErrorEntry[] })
  .entries;
const byId = (id: string) => entries.find((e) => e.id === id)!;

const EXPECTED: Record<string, [string, RegExp]> = {
  'image-not-found-remote-only': [
    'not_found',
    /^remote error: GET https:\/\/index\.docker\.io\/v2\/library\/nginx\/manifests\/no-such-tag: MANIFEST_UNKNOWN/,
  ],
  'image-not-found-default-sources': [
    'not_found',
    /^remote error: GET .*MANIFEST_UNKNOWN: manifest unknown; unknown tag=no-such-tag$/,
  ],
  'image-not-found-v058': ['not_found', /MANIFEST_UNKNOWN/],
  'unauthorized-remote': [
    'unauthorized',
    /^remote error: GET https:\/\/index\.docker\.io\/v2\/mookas\/junk\/manifests\/latest: UNAUTHORIZED: authentication required/,
  ],
  'db-toomanyrequests-real-2024': ['rate_limited', /DB error: failed to download vulnerability DB/],
  'db-network-unreachable-real-2024': ['db_error', /failed to download vulnerability DB/],
  'db-skip-update-first-run': ['db_error', /--skip-db-update cannot be specified on the first run/],
  'timeout-real-v060': ['timeout', /context deadline exceeded/],
  'timeout-v069': ['timeout', /pipeline error: context deadline exceeded/],
  'dockerhub-toomanyrequests': [
    'rate_limited',
    /TOOMANYREQUESTS: You have reached your unauthenticated pull rate limit/,
  ],
};

describe('failure classification from the real Trivy stderr texts (fixtures/trivy/errors.json)', () => {
  for (const [id, [reason, detail]] of Object.entries(EXPECTED)) {
    test(id, () => {
      const entry = byId(id);
      assert.ok(entry, `fixture entry ${id} exists`);
      const classified = classifyFailure({
        exitCode: entry.exitCode,
        signal: null,
        timedOut: false,
        stderr: entry.stderr,
      });
      assert.equal(classified.reason, reason);
      assert.match(classified.detail, detail);
    });
  }

  test('every failing fixture entry is covered above', () => {
    const failing = entries.filter((e) => e.exitCode === 1).map((e) => e.id);
    assert.deepEqual(
      failing.filter((id) => !(id in EXPECTED)),
      [],
    );
  });

  test('ANSI colour codes around the level are ignored', () => {
    const stderr = byId('unauthorized-remote').stderr.replace('\tFATAL\t', '\t\u001b[31mFATAL\u001b[0m\t');
    assert.equal(classifyFailure({ exitCode: 1, signal: null, timedOut: false, stderr }).reason, 'unauthorized');
  });

  test('killed by the scanner at its timeout', () => {
    assert.equal(classifyFailure({ exitCode: null, signal: 'SIGKILL', timedOut: true, stderr: '' }).reason, 'timeout');
  });

  test('killed by a signal (OOM killer) or exit 137', () => {
    const bySignal = classifyFailure({ exitCode: null, signal: 'SIGKILL', timedOut: false, stderr: '' });
    assert.equal(bySignal.reason, 'killed');
    assert.match(bySignal.detail, /SIGKILL/);
    assert.equal(
      classifyFailure({ exitCode: 137, signal: null, timedOut: false, stderr: 'Killed\n' }).reason,
      'killed',
    );
  });

  test('an index without a child for the platform asked for is platform_not_found, in either chain', () => {
    const ref = 'ghcr.io/acme/db@sha256:' + 'a'.repeat(64);
    const tail = `unable to find the specified image "${ref}" in ["remote"]: 1 error occurred:
\t* remote error: no child with platform linux/arm64 in index ${ref}\n\n\n`;
    const chains = [
      'run error: image scan error: scan error: unable to initialize a scan service: unable to initialize artifact: ' +
        'unable to initialize container image: ',
      'image scan error: scan error: unable to initialize a scanner: unable to initialize an image scanner: ',
    ];
    for (const chain of chains) {
      const stderr = `2026-12-02T22:00:00Z\tFATAL\tFatal error\t${chain}${tail}`;
      assert.deepEqual(classifyFailure({ exitCode: 1, signal: null, timedOut: false, stderr }), {
        reason: 'platform_not_found',
        detail: `remote error: no child with platform linux/arm64 in index ${ref}`,
      });
    }
  });

  test('anything else is other, with the last line as detail', () => {
    const c = classifyFailure({
      exitCode: 2,
      signal: null,
      timedOut: false,
      stderr: 'panic: runtime error: index out of range\n',
    });
    assert.deepEqual(c, { reason: 'other', detail: 'panic: runtime error: index out of range' });
  });

  test('details are bounded', () => {
    assert.ok(bestDetail('x'.repeat(5000)).length <= 500);
  });
});

describe("the scanner's own file errors around a scan", () => {
  const error = (code: string, message: string) => Object.assign(new Error(message), { code });

  test('a full disk is no_space with the fix; a read-only or foreign directory is other, naming it', () => {
    assert.deepEqual(writeFailure(error('ENOSPC', 'ENOSPC: no space left on device, mkdtemp'), '/tmp/ephor-run'), {
      ok: false,
      reason: 'no_space',
      detail:
        'no space left on device in /tmp/ephor-run (TMPDIR): give the pod a larger /tmp (chart value tmp.sizeLimit)',
    });
    const readOnly = writeFailure(error('EROFS', 'EROFS: read-only file system, mkdtemp'), '/tmp/ephor-run');
    assert.equal(readOnly.reason, 'other');
    assert.match(readOnly.detail, /^cannot write in \/tmp\/ephor-run \(TMPDIR\): EROFS/);
  });
});
