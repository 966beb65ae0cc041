// Trivy processes are started by the launcher, a small process beside the scanner (src/trivy/launcher): forking the
// scanner's big heap costs far more. It must keep every guarantee of starting them directly: process groups killed on
// timeout, nothing left running when the scanner dies, no secret in its environment or argv, and a launcher that dies
// loses nothing: the scans in flight are killed and started again directly, as are later ones.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { launcherPid } from '../../src/trivy/launcher/client.js';
import { runTrivy, SETTLE_AFTER_KILL_MS } from '../../src/trivy/process.js';
import { REPO_ROOT } from '../support/paths.js';
import { isAlive, processGone } from '../support/processes.js';
import { eventually } from '../support/wait.js';

const WORK = mkdtempSync(path.join(os.tmpdir(), 'launcher-test-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});
const SECRET = 'launcher-test-secret-7f3a9c';
/** A sleep no other process runs, to find the late process by its command line. */
const LATE_SLEEP = 31_337 + (process.pid % 1000);
process.env.EPHOR_AUTH_VALUE = `Bearer ${SECRET}`;

function script(name: string, body: string): string {
  const file = path.join(WORK, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** Parent pid of a process, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

const env = () => ({ PATH: process.env.PATH, EPHOR_AUTH_VALUE: process.env.EPHOR_AUTH_VALUE });

// A hang guard for the whole suite (each call has its own timeout): 13 s idle, 27 s on the loaded machine.
describe('the Trivy launcher', { timeout: 120_000 }, () => {
  test('Trivy is a child of the launcher, not of the scanner, and its output and exit status come back', async () => {
    const outcome = await runTrivy({
      binary: script('ppid.sh', 'echo "ppid $PPID" >&2; exit 3'),
      args: [],
      env: env(),
      timeoutMs: 10_000,
    });
    const launcher = launcherPid();
    assert.ok(launcher !== undefined && launcher !== process.pid);
    assert.equal(outcome.exitCode, 3);
    assert.equal(outcome.stderr.trim(), `ppid ${launcher}`);
    assert.equal(parentOf(launcher), process.pid);
  });

  test('the launcher holds no secret: no environment of its own, nothing in its argv; Trivy does not get the scanner settings', async () => {
    const outcome = await runTrivy({ binary: script('env.sh', 'env >&2'), args: [], env: env(), timeoutMs: 10_000 });
    const launcher = launcherPid()!;
    const names = readFileSync(`/proc/${launcher}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((v) => v.split('=')[0]);
    assert.deepEqual(
      names.filter((name) => !name?.startsWith('NODE_CHANNEL_')),
      [],
      'only the IPC variables Node sets itself',
    );
    assert.doesNotMatch(readFileSync(`/proc/${launcher}/cmdline`, 'utf8'), new RegExp(SECRET));
    assert.doesNotMatch(outcome.stderr, new RegExp(SECRET));
    assert.match(outcome.stderr, /^PATH=/m);
  });

  test('a timeout kills the process group started through the launcher', async () => {
    const pidFile = path.join(WORK, 'hang.pid');
    // A timeout that killed nothing would leave the call waiting for `sleep 300`, far past this test's timeout. The
    // timeout leaves the shell time to start its grandchild and write its pid even on a loaded machine.
    const outcome = await runTrivy({
      binary: script('hang.sh', `sleep 300 & echo $! > ${pidFile}; wait`),
      args: [],
      env: env(),
      timeoutMs: 2_000,
    });
    assert.equal(outcome.timedOut, true);
    assert.ok(await processGone(Number(readFileSync(pidFile, 'utf8'))), 'the grandchild was killed with the group');
  });

  test('a scanner killed outright (SIGKILL, no exit hook) leaves no Trivy running: the launcher kills its groups', async () => {
    const pidFile = path.join(WORK, 'orphan.pid');
    const trivy = script('orphan.sh', `echo $$ > ${pidFile}; sleep 300 & wait`);
    const driver = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test/support/launcher-driver.ts'), trivy],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const launcher = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error('the driver never launched'));
        }, 20_000);
        driver.stdout.setEncoding('utf8').on('data', (text: string) => {
          const match = /launched (\d+)/.exec(text);
          if (match) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        });
      });
      await eventually(() => readFileIfAny(pidFile) !== undefined);
      const trivyPid = Number(readFileIfAny(pidFile));
      assert.ok(trivyPid > 0 && isAlive(trivyPid));
      driver.kill('SIGKILL');
      assert.ok(await processGone(trivyPid), 'Trivy was killed when the scanner died');
      assert.ok(await processGone(launcher), 'the launcher exited');
    } finally {
      driver.kill('SIGKILL');
    }
  });

  test('a launcher that stops answering cannot hang the run: a timed-out call ends soon after its kill', async () => {
    const launcher = launcherPid()!;
    process.kill(launcher, 'SIGSTOP');
    try {
      const started = Date.now();
      const outcome = await runTrivy({
        binary: script('never.sh', `exec sleep ${LATE_SLEEP}`),
        args: [],
        env: env(),
        timeoutMs: 300,
      });
      const took = Date.now() - started;
      assert.equal(outcome.timedOut, true);
      // It ended while the launcher was still stopped (SIGCONT comes after), so on its own: after the timeout and
      // the wait for the kill to be confirmed. Only the lower bound is checked: a loaded machine makes it later.
      assert.ok(took >= 300 + SETTLE_AFTER_KILL_MS - 100, `ended after ${took} ms`);
    } finally {
      process.kill(launcher, 'SIGCONT');
    }
    // The launcher catches up and starts the late process (requests are handled in order, so before after.sh):
    // it is killed as soon as it is reported, nothing keeps running.
    const after = await runTrivy({ binary: script('after.sh', 'exit 0'), args: [], env: env(), timeoutMs: 10_000 });
    assert.equal(after.exitCode, 0);
    // Its parent is the launcher (never.sh execs sleep): other suites running on the machine cannot match.
    const lateRunning = () =>
      spawnSync('pgrep', ['-f', `^sleep ${LATE_SLEEP}$`, '-P', String(launcher)], {
        encoding: 'utf8',
        timeout: 5_000,
      }).stdout.trim() !== '';
    assert.ok(await eventually(() => !lateRunning()), 'the late process was killed');
  });

  // Last: once its launcher has died, this process starts Trivy directly for the rest of its life.
  test('a launcher that dies: the scan in flight is killed and started again directly; later ones start directly', async () => {
    const pidFile = path.join(WORK, 'inflight.pid');
    // The first run waits (the launcher is killed meanwhile); the second, started directly, finishes at once.
    const trivy = script(
      'inflight.sh',
      `if [ -s ${pidFile} ]; then echo "again, ppid $PPID" >&2; exit 0; fi; echo $$ > ${pidFile}; exec sleep 300`,
    );
    // In flight for this process: the launcher has reported the start (onStarted), so its pid is known here. (A
    // launcher killed between its spawn and that report leaves a process this one never knew: docs/reliability.md.)
    let reported = false;
    const pending = runTrivy({
      binary: trivy,
      args: [],
      env: env(),
      timeoutMs: 60_000,
      onStarted: () => (reported = true),
    });
    await eventually(() => reported && readFileIfAny(pidFile) !== undefined);
    const firstPid = Number(readFileIfAny(pidFile));
    assert.ok(firstPid > 0 && parentOf(firstPid) === launcherPid());
    process.kill(launcherPid()!, 'SIGKILL');
    const outcome = await pending;
    assert.equal(outcome.spawnError, undefined);
    assert.equal(outcome.exitCode, 0);
    assert.equal(outcome.stderr.trim(), `again, ppid ${process.pid}`);
    assert.ok(await processGone(firstPid), 'the process of the first start was killed');
    const next = await runTrivy({
      binary: script('ppid2.sh', 'echo "ppid $PPID" >&2'),
      args: [],
      env: env(),
      timeoutMs: 10_000,
    });
    assert.equal(next.exitCode, 0);
    assert.equal(next.stderr.trim(), `ppid ${process.pid}`);
    assert.equal(launcherPid(), undefined);
  });
});

function readFileIfAny(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
