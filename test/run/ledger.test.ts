// The run ledger (src/run/ledger.ts), plain bookkeeping: when a namespace is ready, when a findings file may go,
// the counts, and the exit code, which is 0 only when every namespace is accounted for as delivered.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunLedger } from '../../src/run/ledger.js';
import type { NamespaceOutcome } from '../../src/run/summary.js';
import type { ScanResult, ScanTarget } from '../../src/types.js';

function target(ref: string, namespaces: string[]): ScanTarget {
  return { key: ref, ref, registry: 'registry.local', repository: ref, namespaces, pullSecrets: [] };
}

function scanned(ref: string, extra: { sbomFile?: string; repoDigests?: string[] } = {}): ScanResult {
  const image = {
    file: `/tmp/findings-${ref}.json`,
    bytes: 2,
    count: 0,
    bySeverity: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
    repoDigests: extra.repoDigests ?? [],
    ecosystems: [],
    skippedEntries: 0,
  };
  return { ok: true, ref, image, durationMs: 1, sbomFile: extra.sbomFile };
}

function outcome(
  namespace: string,
  delivered: boolean,
  status: 'completed' | 'failed' = 'completed',
): NamespaceOutcome {
  const stats = {
    workloads: 0,
    containersDelivered: 0,
    containersNotDelivered: 0,
    findings: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
  };
  return { namespace, delivered, status, stats };
}

// shared is used by both namespaces; own only by shop; blog also uses broken; empty uses nothing.
const SHARED = target('shared', ['shop', 'blog']);
const OWN = target('own', ['shop']);
const BROKEN = target('broken', ['blog']);

describe('RunLedger', () => {
  test('a namespace is ready when its last image is recorded; one with no image at once', () => {
    const ledger = new RunLedger(['shop', 'blog', 'empty'], [SHARED, OWN, BROKEN], 0);
    assert.deepEqual(ledger.namespacesReady(), ['empty']);
    assert.deepEqual(ledger.recordScan(SHARED, scanned('shared')), []);
    assert.deepEqual(ledger.recordScan(OWN, scanned('own')), ['shop']);
    const failure: ScanResult = { ok: false, ref: 'broken', reason: 'not_found', detail: 'gone', durationMs: 1 };
    assert.deepEqual(ledger.recordScan(BROKEN, failure), ['blog']);
    assert.equal(ledger.resultOf('broken'), failure);
  });

  test('a findings file is released once the last namespace that needs it is done, not before', () => {
    const ledger = new RunLedger(['shop', 'blog'], [SHARED, OWN, BROKEN], 0);
    ledger.recordScan(SHARED, scanned('shared'));
    ledger.recordScan(OWN, scanned('own'));
    ledger.recordScan(BROKEN, { ok: false, ref: 'broken', reason: 'timeout', detail: 't', durationMs: 1 });
    assert.deepEqual(ledger.releaseNamespace('shop'), ['/tmp/findings-own.json']);
    assert.ok(ledger.resultOf('shared'), 'blog still needs it');
    assert.deepEqual(ledger.releaseNamespace('blog'), ['/tmp/findings-shared.json'], 'a failed scan has no file');
    assert.equal(ledger.resultOf('shared'), undefined);
    assert.deepEqual(ledger.releaseNamespace('blog'), [], 'released once');
  });

  test('counts: scanned, failed by reason (invalid references included), and where each SBOM comes from', () => {
    const digest = 'registry.local/own@sha256:' + 'b'.repeat(64);
    const ledger = new RunLedger(['shop', 'blog'], [SHARED, OWN, BROKEN, target(digest, ['shop'])], 2);
    ledger.recordScan(
      SHARED,
      scanned('shared', { sbomFile: '/tmp/s.json', repoDigests: ['registry.local/shared@sha256:1'] }),
    );
    ledger.recordScan(target(digest, ['shop']), scanned(digest, { sbomFile: '/tmp/d.json', repoDigests: ['other'] }));
    ledger.recordScan(OWN, { ok: false, ref: 'own', reason: 'killed', detail: 'k', durationMs: 1 });
    ledger.recordScan(BROKEN, { ok: false, ref: 'broken', reason: 'killed', detail: 'k', durationMs: 1 });
    assert.deepEqual(ledger.images(), {
      total: 6,
      scanned: 2,
      failed: 4,
      failedByReason: { invalid_reference: 2, killed: 2 },
    });
    assert.deepEqual(Object.fromEntries(ledger.sbomSources), {
      shared: { file: '/tmp/s.json', digestRef: 'registry.local/shared@sha256:1' },
      [digest]: { file: '/tmp/d.json', digestRef: digest },
    });
  });

  test('exit 0 only when every namespace has a delivered outcome, no step failed and the run was not stopped', () => {
    const ledger = new RunLedger(['shop', 'blog'], [], 0);
    assert.equal(ledger.exitCode(false), 1, 'no outcome yet: not delivered');
    ledger.recordDelivery(outcome('shop', true));
    assert.equal(ledger.exitCode(false), 1, 'blog has no outcome');
    ledger.recordDelivery(outcome('blog', true, 'failed'));
    assert.equal(ledger.exitCode(false), 0, 'sent as failed is delivered');
    assert.equal(ledger.exitCode(true), 1, 'stopped by a signal');
    ledger.stepFailures.push('sbom of x: boom');
    assert.equal(ledger.exitCode(false), 1, 'a step failed');
  });

  test('outcomes in discovery order; fresh deliveries and failures for the spool', () => {
    const ledger = new RunLedger(['a', 'b', 'c'], [], 0);
    ledger.recordDelivery(outcome('c', false));
    ledger.recordDelivery(outcome('a', true));
    ledger.recordDelivery(outcome('b', true, 'failed'));
    assert.deepEqual(
      ledger.namespaceOutcomes().map((o) => o.namespace),
      ['a', 'b', 'c'],
    );
    assert.deepEqual([...ledger.deliveredFresh()], ['a'], 'a namespace sent as failed has nothing newer');
    assert.deepEqual([...ledger.notDelivered()], ['c']);
  });
});
