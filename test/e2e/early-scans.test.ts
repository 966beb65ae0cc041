// Scanning starts while discovery is still going on: a namespace's images are handed to Trivy as soon as its lists
// are in (and the DB is ready), until each of the SCAN_CONCURRENCY slots has been filled once. Nothing changes in what is delivered: each image is
// still scanned once, every namespace gets its complete payload, and an image first tried with the pull secrets of
// the namespaces known then is scanned again with those of the namespaces discovered later.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScanIngestRequest } from '../../src/types.js';
import { validate } from '../support/contract.js';
import { deployment, imagePullSecret } from '../support/k8s-objects.js';
import { logsWith, runScanner, scannedRef, startStandIns } from '../support/harness.js';

const ALPINE_REPORT = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const BUSYBOX_REPORT = 'trivy-v0.69.3_busybox_no-os_cargo-lang-pkgs.json';
const FIRST = 'docker.io/library/alpine:3.10';
const SHARED = 'docker.io/library/busybox:1.36';
const LATE_ONLY = 'docker.io/library/nginx:1.25';
const PRIVATE = 'registry.private:5000/team/app:2.0';
const PASSWORD = 'early-scan-pull-S3cret-51d0';
/** The late namespace's Pods list answers only after this: its discovery ends well after the early one's. */
const STALL_MS = 3000;

function payloads(bodies: Array<{ body?: unknown }>): Map<string, ScanIngestRequest> {
  return new Map(bodies.map((r) => [(r.body as ScanIngestRequest).namespace, r.body as ScanIngestRequest]));
}

describe('scanning during discovery', { timeout: 90_000 }, () => {
  test('the early namespace\'s images are scanned before discovery ends; each image once; both payloads complete', async () => {
    const standIns = await startStandIns({
      cluster: {
        objects: [
          deployment({ namespace: 'early', name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }, { name: 'tools', image: 'busybox:1.36' }] }),
          deployment({ namespace: 'late', name: 'api', containers: [{ name: 'app', image: 'nginx:1.25' }, { name: 'tools', image: 'busybox:1.36' }] }),
        ],
        faults: [{ resource: 'pods', namespace: 'late', stallMs: STALL_MS }],
      },
      trivy: { images: { [FIRST]: { report: ALPINE_REPORT }, [SHARED]: { report: BUSYBOX_REPORT }, [LATE_ONLY]: { report: ALPINE_REPORT } } },
    });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'early,late', SCAN_CONCURRENCY: '2' });
      assert.equal(run.exitCode, 0, run.stdout);
      const [discovered] = logsWith(run, 'discovery completed');
      const discoveredAt = Date.parse(discovered!.time as string);
      // The early namespace's two images fill the two slots; the late namespace's own image waits for the plan.
      assert.equal(discovered!.images_started_during_discovery, 2);
      assert.ok((discovered!.duration_ms as number) >= STALL_MS - 100);

      const scans = await standIns.scans();
      assert.deepEqual(scans.map(scannedRef).sort(), [FIRST, SHARED, LATE_ONLY].sort(), 'each image scanned once');
      for (const ref of [FIRST, SHARED]) {
        const scan = scans.find((s) => scannedRef(s) === ref)!;
        assert.ok(Date.parse(scan.startedAt) < discoveredAt - 1000, `${ref} started ${discoveredAt - Date.parse(scan.startedAt)} ms before discovery ended`);
      }
      const late = scans.find((s) => scannedRef(s) === LATE_ONLY)!;
      assert.ok(Date.parse(late.startedAt) >= discoveredAt - 50, 'the late namespace\'s own image is known only when its lists are in');

      const bodies = payloads(standIns.ephor.scanIngests());
      for (const namespace of ['early', 'late']) {
        const body = bodies.get(namespace)!;
        assert.deepEqual(validate('ingest-request', body), [], namespace);
        assert.equal(body.status, 'completed');
        assert.deepEqual(body.scan_config.not_delivered ?? [], []);
        const containers = body.workloads.flatMap((w) => w.containers);
        assert.deepEqual(containers.map((c) => c.name).sort(), ['app', 'tools']);
        assert.ok(containers.every((c) => c.vulnerabilities.length > 0), `${namespace}: every container has its findings`);
      }
      const shared = (ns: string) => bodies.get(ns)!.workloads[0]!.containers.find((c) => c.name === 'tools')!.vulnerabilities;
      assert.deepEqual(shared('late'), shared('early'), 'the shared image\'s findings reach both namespaces');
    } finally {
      await standIns.close();
    }
  });

  test('an image refused with the pull secrets known early is scanned again with those of a namespace discovered later', async () => {
    const standIns = await startStandIns({
      cluster: {
        objects: [
          deployment({ namespace: 'early', name: 'uses-node-credentials', containers: [{ name: 'app', image: PRIVATE }] }),
          deployment({ namespace: 'late', name: 'has-secret', imagePullSecrets: ['regcred'], containers: [{ name: 'app', image: PRIVATE }] }),
          imagePullSecret({ namespace: 'late', name: 'regcred', auths: { 'registry.private:5000': { username: 'robot', password: PASSWORD } } }),
        ],
        faults: [{ resource: 'pods', namespace: 'late', stallMs: STALL_MS }],
      },
      trivy: {
        images: { [PRIVATE]: { report: ALPINE_REPORT } },
        requireDockerConfigFor: { [PRIVATE]: { registry: 'registry.private:5000', username: 'robot', password: PASSWORD } },
      },
    });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'early,late', SCAN_CONCURRENCY: '2' });
      assert.equal(run.exitCode, 0, run.stdout);
      const scans = (await standIns.scans()).filter((s) => scannedRef(s) === PRIVATE);
      assert.equal(scans.length, 2, 'tried early without credentials, then again with the late namespace\'s secret');
      assert.equal(logsWith(run, 'scanning again with the pull secrets of the namespaces discovered after the first try').length, 1);
      const bodies = payloads(standIns.ephor.scanIngests());
      for (const namespace of ['early', 'late']) {
        const body = bodies.get(namespace)!;
        assert.deepEqual(body.scan_config.not_delivered ?? [], [], namespace);
        assert.ok(body.workloads[0]!.containers[0]!.vulnerabilities.length > 0, `${namespace} has the image's findings`);
      }
      assert.ok(!run.stdout.includes(PASSWORD) && !run.stderr.includes(PASSWORD), 'the pull secret is never logged');
    } finally {
      await standIns.close();
    }
  });
});
