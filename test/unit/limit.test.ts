// src/limit.ts: at most `size` at a time, in order; a failing task passes its turn on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Limit } from '../../src/limit.js';

test('at most `size` run at once, first come first served; a failure frees its turn', async () => {
  const limit = new Limit(2);
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const task = (n: number) =>
    limit.run(async () => {
      running++;
      most = Math.max(most, running);
      order.push(n);
      await sleep(20);
      running--;
      if (n === 1) throw new Error('task 1 fails');
      return n;
    });
  const results = await Promise.allSettled([0, 1, 2, 3, 4].map(task));
  assert.equal(most, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  assert.equal(await limit.run(() => Promise.resolve('after')), 'after', 'all turns were given back');
});
