// The pool (src/trivy/pool.ts): at most `concurrency` items in their first phase, in order; the rest of each item's
// work finishes outside the pool; nothing starts once the signal aborts or `mayStart` refuses; the items never
// started are returned.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runPool } from '../../src/trivy/pool.js';
import { until } from '../support/run-fakes.js';

/** Items whose first phase ends when the test says so. */
function controlled() {
  const ends = new Map<number, () => void>();
  let inFirstPhase = 0;
  let most = 0;
  const started: number[] = [];
  const run = async (item: number) => {
    started.push(item);
    inFirstPhase++;
    most = Math.max(most, inFirstPhase);
    await new Promise<void>((resolve) => ends.set(item, resolve));
    inFirstPhase--;
    return () => Promise.resolve(item * 10);
  };
  return { run, ends, started, most: () => most };
}

describe('runPool', () => {
  test('at most `concurrency` first phases at a time, in order; each result once; nothing left unstarted', async () => {
    const items = [1, 2, 3, 4, 5];
    const { run, ends, started, most } = controlled();
    const results: Array<[number, number]> = [];
    const pool = runPool(items, {
      concurrency: 2,
      signal: new AbortController().signal,
      run,
      onResult: (item, result) => results.push([item, result]),
    });
    for (const item of items) {
      await until(() => ends.has(item), `item ${item} started`);
      ends.get(item)!();
    }
    assert.deepEqual(await pool, []);
    assert.deepEqual(started, items);
    assert.equal(most(), 2);
    assert.deepEqual(
      results.sort((a, b) => a[0] - b[0]),
      items.map((i) => [i, i * 10]),
    );
  });

  test('once the signal aborts nothing more starts; the items never started are returned', async () => {
    const abort = new AbortController();
    const { run, ends, started } = controlled();
    const pool = runPool([1, 2, 3, 4], { concurrency: 2, signal: abort.signal, run, onResult: () => undefined });
    await until(() => ends.size === 2, 'two started');
    abort.abort();
    ends.get(1)!();
    ends.get(2)!();
    assert.deepEqual(await pool, [3, 4]);
    assert.deepEqual(started, [1, 2]);
  });

  test('mayStart refusing stops the starts (the deadline)', async () => {
    let allowed = 1;
    const { run, ends } = controlled();
    const pool = runPool([1, 2, 3], {
      concurrency: 1,
      signal: new AbortController().signal,
      mayStart: () => allowed-- > 0,
      run,
      onResult: () => undefined,
    });
    await until(() => ends.size === 1, 'one started');
    ends.get(1)!();
    assert.deepEqual(await pool, [2, 3]);
  });
});
