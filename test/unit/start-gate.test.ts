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
import { eventually } from '../support/wait.js';

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

/** Names of the processes that have logged their start so far. */
function startedNames(log: string): string[] {
  return existsSync(log) ? spans(log).map((s) => s.name) : [];
}

/** Like timedScript, but its process runs until the file `release` exists, so the test decides when it ends. */
function heldScript(log: string, release: string): string {
  const file = path.join(WORK, `held-${path.basename(log)}.sh`);
  writeFileSync(
    file,
    `#!/bin/sh\necho "start $2 $(date +%s%3N)" >> ${log}\nwhile [ ! -e ${release} ]; do sleep 0.05; done\necho "end $2 $(date +%s%3N)" >> ${log}\n`,
  );
  chmodSync(file, 0o755);
  return file;
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

// A hang guard for the whole suite (each call has its own timeout): 17 s idle, 21 s on the loaded machine, and two
// tests wait out fixed limits of 10 s and more by design.
describe('gated Trivy processes', { timeout: 120_000 }, () => {
  test('through the launcher: at most `gate` run; the waiting ones start in order as slots free, each timed from its start', async () => {
    const log = path.join(WORK, 'launcher.log');
    const binary = timedScript(log);
    const calledAt = Date.now();
    const settled = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) =>
        runTrivy({ binary, args: ['0.4', name], env: env(), timeoutMs: 10_000, gate: 2 }).then((outcome) => ({
          outcome,
          settledAt: Date.now(),
        })),
      ),
    );
    assert.ok(launcherPid() !== undefined, 'started by the launcher');
    for (const { outcome } of settled) {
      assert.equal(outcome.exitCode, 0, outcome.stderr);
      assert.equal(outcome.notStarted, false);
      assert.ok(outcome.startedAt !== undefined);
    }
    // c and d waited for a slot at least as long as a's or b's `sleep 0.4`: their durations leave that wait out. A
    // lower bound on what is left out, so a slow machine cannot break it; timed from the call it would be about 0.
    for (const { outcome, settledAt } of settled.slice(2)) {
      const leftOut = settledAt - calledAt - outcome.durationMs;
      assert.ok(leftOut >= 350, `timed from its own start: ${outcome.durationMs} ms of ${settledAt - calledAt} ms`);
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
    // The second waits 2.5 s for the slot, longer than its 2 s timeout; its own run (a shell that logs twice) has
    // those 2 s to itself, room enough on a loaded machine.
    const first = runTrivy({ binary, args: ['2.5', 'first'], env: env(), timeoutMs: 10_000, gate: 1 });
    const second = await runTrivy({ binary, args: ['0', 'second'], env: env(), timeoutMs: 2_000, gate: 1 });
    assert.equal((await first).exitCode, 0);
    assert.equal(second.timedOut, false);
    assert.equal(second.exitCode, 0, 'waited 2.5 s for the slot, then ran within its 2 s');
    const [firstSpan, secondSpan] = spans(log);
    assert.ok(secondSpan!.start >= firstSpan!.end!, 'the second started after the first ended');
  });

  test('a scan cancelled while it waits for a slot ends at once as not started, and its process never runs', async () => {
    const log = path.join(WORK, 'cancel.log');
    const release = path.join(WORK, 'cancel.release');
    // The running one holds the only slot until the test releases it, however slow the machine.
    const binary = heldScript(log, release);
    let runningEnded = false;
    const running = runTrivy({ binary, args: ['-', 'running'], env: env(), timeoutMs: 30_000, gate: 1 }).finally(
      () => (runningEnded = true),
    );
    const controller = new AbortController();
    const waiting = runTrivy({
      binary,
      args: ['-', 'waiting'],
      env: env(),
      timeoutMs: 30_000,
      gate: 1,
      signal: controller.signal,
    });
    assert.ok(await eventually(() => startedNames(log).includes('running')), 'the first one started');
    controller.abort();
    const outcome = await waiting;
    assert.equal(runningEnded, false, 'ends without waiting for the running one');
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.notStarted, true);
    writeFileSync(release, '');
    assert.equal((await running).exitCode, 0);
    // The gate starts in order: had the cancelled one stayed in line, it would run before this one.
    assert.equal(
      (await runTrivy({ binary, args: ['-', 'after'], env: env(), timeoutMs: 30_000, gate: 1 })).exitCode,
      0,
    );
    assert.deepEqual(startedNames(log), ['running', 'after'], 'the cancelled scan never ran');
  });

  test('stopped while it waits, but started by the launcher before the cancel reached it: killed at once, not started', async () => {
    // The race of a deadline or a shutdown: the same stop kills the running scan and cancels the waiting one; the
    // launcher may free the slot and start the waiting one before the cancel arrives. Made certain here: this
    // process's event loop is held until the launcher has started it, and only then is the stop signalled.
    const log = path.join(WORK, 'race.log');
    const release = path.join(WORK, 'race.release');
    const binary = heldScript(log, release);
    const controller = new AbortController();
    const running = runTrivy({ binary, args: ['-', 'running'], env: env(), timeoutMs: 30_000, gate: 1 });
    const waiting = runTrivy({
      binary,
      args: ['-', 'waiting'],
      env: env(),
      timeoutMs: 30_000,
      gate: 1,
      signal: controller.signal,
    });
    assert.ok(await eventually(() => startedNames(log).includes('running')), 'the first one started');
    writeFileSync(release, '');
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const until = Date.now() + 30_000;
    while (!startedNames(log).includes('waiting') && Date.now() < until) Atomics.wait(pause, 0, 0, 10);
    assert.ok(startedNames(log).includes('waiting'), 'the launcher started the waiting one');
    controller.abort(); // its start is not known here yet: the loop was held
    const outcome = await waiting;
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.notStarted, true, 'killed at its start: it never scanned');
    assert.equal(outcome.startedAt, undefined);
    assert.equal((await running).exitCode, 0);
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
    // It ended while the launcher was still stopped (SIGCONT comes after), so on its own, after its slot wait limit
    // and the wait for a kill to be confirmed. Only the lower bound is checked: a loaded machine makes it later.
    assert.ok(took >= expected - 100, `ended after ${took} ms (expected about ${expected})`);
    // The launcher catches up and may start it: the scanner kills it as soon as it is reported.
    await runTrivy({ binary: '/bin/true', args: [], env: env(), timeoutMs: 5000 });
    const stillRunning = () =>
      spawnSync('pgrep', ['-f', `^sleep 30$`, '-P', String(launcher)], { encoding: 'utf8' }).stdout.trim() !== '';
    assert.ok(await eventually(() => !stillRunning()), 'nothing of it keeps running');
  });

  // Last: from here on this process starts Trivy directly.
  test('the launcher dies with scans running and waiting: all of them run, directly, still at most `gate` at a time', async () => {
    const log = path.join(WORK, 'death.log');
    const binary = timedScript(log);
    const calls = ['p', 'q', 'r', 's', 't'].map((name) =>
      runTrivy({ binary, args: ['0.5', name], env: env(), timeoutMs: 10_000, gate: 2 }),
    );
    // Killed once two run and three wait (the scripts sleep 0.5 s, so this may also catch one finished and the next
    // started: two run all the same).
    assert.ok(await eventually(() => startedNames(log).length >= 2), 'two scans started through the launcher');
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
