// A dry run whose EPHOR_OUTPUT_DIR cannot be written: nothing can be delivered, so the run must say so in one clear
// line per namespace and exit 1 (it once logged a stack trace, dropped the namespaces and exited 0).
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, startStandIns } from '../support/harness.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';

describe('dry run', { timeout: 120_000 }, () => {
  test('EPHOR_OUTPUT_DIR cannot be created (a path under a regular file): each namespace not delivered, one clear line, no stack trace, exit 1', async () => {
    const standIns = await startStandIns({
      cluster: {
        objects: ['alpha', 'beta'].map((namespace) =>
          deployment({ namespace, name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] }),
        ),
      },
      trivy: { images: { 'docker.io/library/alpine:3.10': { report: ALPINE } } },
    });
    const file = path.join(standIns.dir, 'a-regular-file');
    await writeFile(file, 'not a directory');
    const outputDir = path.join(file, 'payloads');
    try {
      const { EPHOR_API_URL: _unused, ...env } = standIns.env;
      const run = await runScanner({
        ...env,
        SCAN_NAMESPACES: 'alpha,beta',
        EPHOR_DRY_RUN: 'true',
        EPHOR_OUTPUT_DIR: outputDir,
      });
      assert.equal(run.exitCode, 1, run.stdout);
      assert.equal(standIns.ephor.requests.length, 0);
      const failures = logsWith(run, 'dry run: payload could not be written');
      assert.deepEqual(
        failures.map((line) => line.namespace),
        ['alpha', 'beta'],
      );
      for (const line of failures) {
        assert.equal(line.level, 'error');
        assert.match(String(line.error), new RegExp(`EPHOR_OUTPUT_DIR=${outputDir} cannot be written: .*ENOTDIR`));
      }
      assert.doesNotMatch(run.stdout + run.stderr, /\n\s+at /, 'no stack trace');
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.equal(summary!.exit_code, 1);
      assert.deepEqual(summary!.namespaces, { total: 2, delivered: 0, failed: 2 });
    } finally {
      await standIns.close();
      await rm(file, { force: true });
    }
  });
});
