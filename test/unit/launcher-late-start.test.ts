// A launcher that dies right after starting a Trivy process may have its exit seen here before its last message (the
// start). The call has then already been started again directly, so the process named by that late start must be
// killed: nobody waits for it. Its own file: the launcher is process-wide, and this test replaces its exit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { launcherPid } from '../../src/trivy/launcher/client.js';
import { runTrivy } from '../../src/trivy/process.js';
import { trivyState } from '../../src/trivy/state.js';
import { isAlive, processGone } from '../support/processes.js';

const WORK = mkdtempSync(path.join(os.tmpdir(), 'launcher-late-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});

test(
  'a start the launcher reports after its exit was seen: that process group is killed',
  { timeout: 120_000 },
  async () => {
    // Bring the launcher up with one quick call.
    const binary = path.join(WORK, 'ok.sh');
    writeFileSync(binary, '#!/bin/sh\nexit 0\n');
    chmodSync(binary, 0o755);
    const first = await runTrivy({ binary, args: [], env: { PATH: process.env.PATH }, timeoutMs: 10_000 });
    assert.equal(first.exitCode, 0);
    const launcher = trivyState.launcher;
    const pid = launcherPid();
    assert.ok(launcher && pid !== undefined, 'the launcher runs');
    // The orphan: a process group of its own, as the launcher starts Trivy.
    const orphan = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    orphan.unref();
    assert.ok(orphan.pid !== undefined);
    try {
      // The exit is seen first, then the start the launcher sent before it died arrives.
      launcher.process.emit('exit', null, 'SIGKILL');
      assert.equal(launcherPid(), undefined, 'the launcher counts as gone');
      launcher.process.emit('message', { type: 'started', id: 999, pid: orphan.pid });
      assert.ok(await processGone(orphan.pid), 'the late start was killed');
    } finally {
      if (isAlive(orphan.pid)) process.kill(-orphan.pid, 'SIGKILL');
      process.kill(pid, 'SIGKILL');
    }
  },
);
