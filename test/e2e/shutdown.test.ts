// SIGTERM (Kubernetes stopping the Job, or the deadline) while images are being scanned: no new scan starts, the
// running Trivy process groups are killed, scans handed over that still wait for a slot are dropped, and what is
// finished is still delivered before the process exits 1.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { ScanIngestRequest } from '../../src/types.js';
import { deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, scannedRef, startStandIns } from '../support/harness.js';
import { eventually } from '../support/wait.js';

const FAST = 'docker.io/library/alpine:3.10';
const SLOW = 'docker.io/library/debian:buster';
const LATER = 'docker.io/library/busybox:1.36';
/** Handed over to the launcher (the pool runs twice SCAN_CONCURRENCY) but never given a slot before the signal. */
const NEVER = 'docker.io/library/nginx:1.25';

/** Running: not gone, and not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.charAt(0) !== 'Z';
  } catch {
    return false;
  }
}

describe('shutdown', { timeout: 90_000 }, () => {
  test('SIGTERM during scanning: finished work delivered within seconds, running scans killed, exit 1', async () => {
    const standIns = await startStandIns({
      cluster: {
        objects: [
          deployment({ namespace: 'done', name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] }),
          deployment({
            namespace: 'mixed',
            name: 'api',
            containers: [
              { name: 'app', image: 'alpine:3.10' },
              { name: 'slow', image: 'debian:buster' },
              { name: 'later', image: 'busybox:1.36' },
              { name: 'never', image: 'nginx:1.25' },
            ],
          }),
        ],
      },
      trivy: {
        images: {
          [FAST]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
          [SLOW]: { hang: true },
          // Starts when the fast scan ends, and is still running at the signal.
          [LATER]: { hang: true },
          [NEVER]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
        },
      },
    });
    try {
      let signalledAt = 0;
      let signalling: Promise<void> | undefined;
      const run = await runScanner(
        // No pull-secret lookups: the scans reach the launcher in the plan's order (alpine, debian, busybox, nginx).
        {
          ...standIns.env,
          SCAN_NAMESPACES: 'done,mixed',
          SCAN_CONCURRENCY: '2',
          TRIVY_TIMEOUT: '10m',
          REGISTRY_AUTH_ENABLED: 'false',
        },
        {
          timeoutMs: 60_000,
          onLog: (line, child) => {
            if (line.msg !== 'image scanned' || line.image !== FAST || signalling) return;
            // The signal goes once both hanging Trivy processes (the slow image, and the later one the launcher
            // started when the fast scan ended) have started their grandchild (recorded in the invocation log),
            // however long that takes on a loaded machine.
            signalling = (async () => {
              await eventually(
                async () =>
                  (await standIns.invocations()).filter((i) => i.behaviour === 'hang' && i.pids?.length === 2)
                    .length === 2,
                { stop: () => child.exitCode !== null, intervalMs: 20 },
              );
              signalledAt = Date.now();
              child.kill('SIGTERM');
            })();
          },
        },
      );
      assert.ok(signalledAt > 0, 'the fast image was scanned before the signal');
      // Exited after the signal without waiting for the hung scans (TRIVY_TIMEOUT is 10m: runScanner's bound would end
      // it), and with what was finished delivered (the payloads below), so before the delivery grace period ran out.
      assert.equal(run.exitCode, 1, run.stdout);

      const payloads = new Map(
        standIns.ephor.scanIngests().map((r) => [(r.body as ScanIngestRequest).namespace, r.body as ScanIngestRequest]),
      );
      assert.equal(payloads.get('done')!.status, 'completed');
      assert.equal(payloads.get('done')!.workloads[0]!.containers[0]!.vulnerabilities.length, 4);
      const mixed = payloads.get('mixed')!;
      assert.deepEqual(
        mixed.workloads[0]!.containers.map((c) => c.name),
        ['app'],
        'only the finished container is sent',
      );
      const ledger = mixed.scan_config.not_delivered as Array<{ container: string; reason: string }>;
      assert.deepEqual(ledger.map((e) => [e.container, e.reason]).sort(), [
        ['later', 'cancelled'],
        ['never', 'cancelled'],
        ['slow', 'cancelled'],
      ]);

      const scans = await standIns.scans();
      const startedAfterSignal = scans.filter((s) => Date.parse(s.startedAt) >= signalledAt);
      assert.deepEqual(startedAfterSignal, [], 'no scan starts after the signal');
      assert.ok(
        scans.some((s) => scannedRef(s) === LATER),
        'the later image was running at the signal',
      );
      assert.deepEqual(
        scans.filter((s) => scannedRef(s) === NEVER),
        [],
        'the image still waiting for a slot was never started',
      );
      const hung = (await standIns.invocations()).filter((i) => i.behaviour === 'hang');
      assert.deepEqual(hung.map((i) => scannedRef(i)).sort(), [SLOW, LATER].sort());
      for (const pid of hung.flatMap((i) => i.pids!))
        assert.ok(await eventually(() => !running(pid)), `process ${pid} of a hung scan's group was killed`);
      assert.equal(logsWith(run, 'shutdown requested: no new scans; delivering what is finished').length, 1);
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.equal(summary!.interrupted, true);
      assert.equal(summary!.exit_code, 1);
    } finally {
      await standIns.close();
    }
  });
});
