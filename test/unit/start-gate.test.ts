// SCAN_CONCURRENCY is kept next to the processes (src/trivy/start-gate.ts): scans are handed over before a slot
// frees and start, in order, the moment one does, through the launcher or directly. A scan's timeout counts from its
// start, a scan cancelled while it waits never runs, and the limit holds when the launcher dies mid-run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StartGate } from '../../src/trivy/start-gate.js';
import { launcherPid } from '../../src/trivy/launcher/client.js';
import { runTrivy, SETTLE_AFTER_KILL_MS, slotWaitLimitMs } from '../../src/trivy/process.js';

const WORK = mkdtempSync(path.join(os.tmpdir(), 'start-gate-test-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});

/** A process that logs its start and end (epoch ms) to LOG and sleeps $1 seconds in between. */
function timedScript(log: string): string {
  const file = path.join(WORK, `timed-${path.basename(log)}.sh`);
  writeFileSync(
    file,
    `#!/bin/sh\necho "start $2 $(date +%s%3N)" >> ${log}\nsleep "$1"\necho "end $2 $(date +%s%3N)" >> ${log}\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

interface Span {
  name: string;
  start: number;
  end?: number;
}

function spans(log: string): Span[] {
  const byName = new Map<string, Span>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [kind, name, at] = line.split(' ');
    if (kind === 'start') byName.set(name!, { name: name!, start: Number(at) });
    else byName.get(name!)!.end = Number(at);
  }
  return [...byName.values()];
}

/** Most processes running at one time, from their logged spans. */
function maxOverlap(list: Span[]): number {
  const events = list
    .flatMap(
      (s) =>
        [
          [s.start, 1],
          [s.end ?? Infinity, -1],
        ] as Array<[number, number]>,
    )
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let max = 0;
  for (const [, delta] of events) max = Math.max(max, (running += delta));
  return max;
}

const env = () => ({ PATH: process.env.PATH });

describe('StartGate', () => {
  test('starts at most `limit` at a time, in the order they came, and the next one when a slot frees', () => {
    const gate = new StartGate();
    const started: number[] = [];
    for (const id of [1, 2, 3, 4]) gate.admit(id, 2, () => started.push(id));
    assert.deepEqual(started, [1, 2]);
    assert.deepEqual(gate.counts, { running: 2, waiting: 2 });
    gate.release();
    assert.deepEqual(started, [1, 2, 3]);
    gate.release();
    gate.release();
    assert.deepEqual(started, [1, 2, 3, 4]);
    assert.deepEqual(gate.counts, { running: 1, waiting: 0 });
  });

  test('a cancelled start never runs and makes room for the ones behind it; a started one cannot be cancelled', () => {
    const gate = new StartGate();
    const started: number[] = [];
    for (const id of [1, 2, 3]) gate.admit(id, 1, () => started.push(id));
    assert.equal(gate.cancel(2), true);
    assert.equal(gate.cancel(1), false, 'already started');
    assert.equal(gate.cancel(9), false, 'unknown');
    gate.release();
    assert.deepEqual(started, [1, 3]);
  });

  test('a start does not overtake the ones waiting before it, even when a slot is free for it', () => {
    const gate = new StartGate();
    const started: number[] = [];
    gate.admit(1, 1, () => started.push(1));
    gate.admit(2, 1, () => started.push(2));
    gate.admit(3, 5, () => started.push(3)); // a larger limit, but 2 waits before it
    assert.deepEqual(started, [1]);
    gate.release();
    assert.deepEqual(started, [1, 2, 3]);
  });
});

describe('gated Trivy processes', { timeout: 60_000 }, () => {
  test('through the launcher: at most `gate` run; the waiting ones start in order as slots free, each timed from its start', async () => {
    const log = path.join(WORK, 'launcher.log');
    const binary = timedScript(log);
    const outcomes = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) =>
        runTrivy({ binary, args: ['0.4', name], env: env(), timeoutMs: 1500, gate: 2 }),
      ),
    );
    assert.ok(launcherPid() !== undefined, 'started by the launcher');
    for (const outcome of outcomes) {
      assert.equal(outcome.exitCode, 0, outcome.stderr);
      assert.equal(outcome.notStarted, false);
      assert.ok(outcome.startedAt !== undefined);
      assert.ok(outcome.durationMs < 1500, `timed from its own start: ${outcome.durationMs} ms`);
    }
    const list = spans(log);
    assert.equal(maxOverlap(list), 2);
    const byName = new Map(list.map((s) => [s.name, s]));
    // c and d waited for a and b: they start after one of those ended
    const firstEnd = Math.min(byName.get('a')!.end!, byName.get('b')!.end!);
    assert.ok(byName.get('c')!.start >= firstEnd && byName.get('d')!.start >= firstEnd);
  });

  test('the timeout of a waiting scan starts with the scan: a wait longer than the timeout is not a timeout', async () => {
    const log = path.join(WORK, 'timeout.log');
    const binary = timedScript(log);
    const first = runTrivy({ binary, args: ['1', 'first'], env: env(), timeoutMs: 5000, gate: 1 });
    const second = await runTrivy({ binary, args: ['0.1', 'second'], env: env(), timeoutMs: 600, gate: 1 });
    assert.equal((await first).exitCode, 0);
    assert.equal(second.timedOut, false);
    assert.equal(second.exitCode, 0, 'waited about 1 s for the slot, ran 0.1 s of its 0.6 s');
  });

  test('a scan cancelled while it waits for a slot ends at once as not started, and its process never runs', async () => {
    const log = path.join(WORK, 'cancel.log');
    const binary = timedScript(log);
    const running = runTrivy({ binary, args: ['0.8', 'running'], env: env(), timeoutMs: 5000, gate: 1 });
    const controller = new AbortController();
    const waiting = runTrivy({
      binary,
      args: ['0', 'waiting'],
      env: env(),
      timeoutMs: 5000,
      gate: 1,
      signal: controller.signal,
    });
    await sleep(200);
    const abortedAt = Date.now();
    controller.abort();
    const outcome = await waiting;
    assert.ok(Date.now() - abortedAt < 500, 'ends without waiting for the running one');
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.notStarted, true);
    assert.equal((await running).exitCode, 0);
    await sleep(200);
    assert.deepEqual(
      spans(log).map((s) => s.name),
      ['running'],
      'the cancelled scan never ran',
    );
  });

  test('an already aborted call starts nothing', async () => {
    const marker = path.join(WORK, 'aborted-marker');
    const binary = path.join(WORK, 'touch.sh');
    writeFileSync(binary, `#!/bin/sh\ntouch ${marker}\n`);
    chmodSync(binary, 0o755);
    const outcome = await runTrivy({
      binary,
      args: [],
      env: env(),
      timeoutMs: 5000,
      gate: 1,
      signal: AbortSignal.abort(),
    });
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.notStarted, true);
    await sleep(200);
    assert.equal(existsSync(marker), false);
  });

  test('a scan waiting on a launcher that stopped answering ends, not started, after its slot wait limit; nothing runs later', async () => {
    const launcher = launcherPid()!;
    const binary = path.join(WORK, 'stalled.sh');
    writeFileSync(binary, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(binary, 0o755);
    process.kill(launcher, 'SIGSTOP');
    const timeoutMs = 200;
    let outcome;
    const started = Date.now();
    try {
      outcome = await runTrivy({ binary, args: [], env: env(), timeoutMs, gate: 1 });
    } finally {
      process.kill(launcher, 'SIGCONT');
    }
    const took = Date.now() - started;
    const expected = slotWaitLimitMs(timeoutMs) + SETTLE_AFTER_KILL_MS;
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.notStarted, true);
    assert.ok(took >= expected - 100 && took < expected + 2_000, `ended after ${took} ms (expected about ${expected})`);
    // The launcher catches up and may start it: the scanner kills it as soon as it is reported.
    await runTrivy({ binary: '/bin/true', args: [], env: env(), timeoutMs: 5000 });
    await sleep(300);
    assert.equal(
      spawnSync('pgrep', ['-f', `^sleep 30$`, '-P', String(launcher)], { encoding: 'utf8' }).stdout.trim(),
      '',
      'nothing of it keeps running',
    );
  });

  // Last: from here on this process starts Trivy directly.
  test('the launcher dies with scans running and waiting: all of them run, directly, still at most `gate` at a time', async () => {
    const log = path.join(WORK, 'death.log');
    const binary = timedScript(log);
    const calls = ['p', 'q', 'r', 's', 't'].map((name) =>
      runTrivy({ binary, args: ['0.5', name], env: env(), timeoutMs: 10_000, gate: 2 }),
    );
    await sleep(250);
    const launcher = launcherPid();
    assert.ok(launcher !== undefined);
    process.kill(launcher, 'SIGKILL');
    const outcomes = await Promise.all(calls);
    for (const outcome of outcomes) assert.equal(outcome.exitCode, 0, outcome.stderr);
    assert.equal(launcherPid(), undefined);
    const completed = spans(log).filter((s) => s.end !== undefined);
    assert.deepEqual(completed.map((s) => s.name).sort(), ['p', 'q', 'r', 's', 't']);
    assert.equal(maxOverlap(completed), 2, 'the direct starts keep the limit');

    const direct = path.join(WORK, 'direct.log');
    const directBinary = timedScript(direct);
    const more = await Promise.all(
      ['u', 'v', 'w'].map((name) =>
        runTrivy({ binary: directBinary, args: ['0.3', name], env: env(), timeoutMs: 5000, gate: 1 }),
      ),
    );
    for (const outcome of more) assert.equal(outcome.exitCode, 0);
    assert.equal(maxOverlap(spans(direct)), 1);
  });
});
