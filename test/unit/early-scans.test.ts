// src/run/early-scans.ts: images offered as namespaces are discovered start, each once, until the budget is spent;
// once stopped nothing more starts, and each started scan is claimed once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EarlyScans, type FinishScan } from '../../src/run/early-scans.js';
import type { ScanTarget } from '../../src/types.js';

function target(ref: string): ScanTarget {
  return { ref, registry: 'docker.io', repository: `library/${ref}`, namespaces: ['ns'], pullSecrets: [] };
}

/** A start whose Trivy phase ends when the test says so; `read` lists the reports read (the rest of each scan). */
function controlledStarts() {
  const started: string[] = [];
  const read: string[] = [];
  const finishers = new Map<string, () => void>();
  const start = (t: ScanTarget): Promise<FinishScan> => {
    started.push(t.ref);
    return new Promise((resolve) =>
      finishers.set(t.ref, () =>
        resolve(async () => {
          read.push(t.ref);
          return { ok: false, ref: t.ref, reason: 'other', detail: 'test', durationMs: 0 };
        }),
      ),
    );
  };
  return { started, read, start, finish: (ref: string) => finishers.get(ref)!() };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('at most `budget` start, in the order offered, even when they end; an image offered again is not started again', async () => {
  const { started, start, finish } = controlledStarts();
  const early = new EarlyScans(3, start);
  early.offer([target('a'), target('b')]);
  early.offer([target('b'), target('c'), target('d')]);
  assert.deepEqual(started, ['a', 'b', 'c']);
  finish('a');
  finish('b');
  await tick();
  assert.deepEqual(started, ['a', 'b', 'c'], 'each slot is filled once before the plan: d waits for the pool');
  assert.deepEqual(early.stop(), ['a', 'b', 'c']);
});

test('stop: nothing more starts; the started ones are listed in order, their reports read at once, claimed once each', async () => {
  const { started, read, start, finish } = controlledStarts();
  const early = new EarlyScans(1, start);
  early.offer([target('a'), target('b')]);
  assert.deepEqual(early.stop(), ['a']);
  finish('a');
  await tick();
  assert.deepEqual(started, ['a'], 'b was never started');
  assert.deepEqual(read, ['a'], 'its report was read when its Trivy ended, before any claim');
  assert.equal(early.has('a'), true);
  const claimed = early.take('a');
  assert.equal(claimed?.target.ref, 'a');
  assert.equal(early.take('a'), undefined);
  assert.equal(early.has('a'), false);
  await claimed!.slot;
  assert.equal((await claimed!.result).ref, 'a');
});

test('a start refused (shutdown, deadline) stops the early scans', () => {
  const refused: string[] = [];
  const early = new EarlyScans(4, (t) => {
    refused.push(t.ref);
    return undefined;
  });
  early.offer([target('a'), target('b')]);
  early.offer([target('c')]);
  assert.deepEqual(refused, ['a']);
  assert.deepEqual(early.stop(), []);
});
