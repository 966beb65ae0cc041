import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_SBOM_BYTES, digestOf, sbomRequest } from '../../src/ephor/sbom.js';
import { validate } from '../support/contract.js';
import { fixture } from '../support/paths.js';

describe('SBOM ingest bodies', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(os.tmpdir(), 'sbom-test-'))));
  after(() => rm(dir, { recursive: true, force: true }));
  const input = {
    imageReference: 'docker.io/library/alpine:3.10',
    imageDigest: `sha256:${'a'.repeat(64)}`,
    scanGroupId: '0b0d7c1e-8f6a-4c8e-9d3f-2a1b3c4d5e6f',
  };

  test('a real CycloneDX document becomes a valid body; spdx-json is sent as spdx', async () => {
    const cdx = await sbomRequest(
      fixture('trivy', 'sbom', 'trivy-v0.69.3_fluentd-image_cyclonedx-sbom-only.cdx.json'),
      { ...input, trivyFormat: 'cyclonedx' },
    );
    assert.ok(cdx.ok);
    assert.deepEqual(validate('sbom-request', cdx.request), []);
    assert.equal(cdx.request.format, 'cyclonedx');
    const spdxFile = path.join(dir, 'spdx.json');
    await writeFile(spdxFile, JSON.stringify({ spdxVersion: 'SPDX-2.3', packages: [] }));
    const spdx = await sbomRequest(spdxFile, { ...input, trivyFormat: 'spdx-json' });
    assert.ok(spdx.ok && spdx.request.format === 'spdx');
    assert.deepEqual(validate('sbom-request', spdx.ok ? spdx.request : {}), []);
  });

  test("an SBOM over Ephor's 5 MiB limit (compact) is skipped, never sent", async () => {
    const big = path.join(dir, 'big.json');
    await writeFile(
      big,
      JSON.stringify({
        bomFormat: 'CycloneDX',
        components: Array.from({ length: 90_000 }, (_, i) => ({
          name: `pkg-${i}`,
          version: '1.0.0',
          purl: `pkg:npm/pkg-${i}@1.0.0`,
        })),
      }),
    );
    const result = await sbomRequest(big, { ...input, trivyFormat: 'cyclonedx' });
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.reason === 'too_large' && /at most 5 MiB/.test(result.detail));
    assert.ok(MAX_SBOM_BYTES < 5 * 1024 * 1024);
  });

  test('a file that is not JSON is reported, not sent', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '<html>');
    const result = await sbomRequest(bad, { ...input, trivyFormat: 'cyclonedx' });
    assert.ok(!result.ok && result.reason === 'unreadable');
  });

  test('digests', () => {
    assert.equal(digestOf(`ghcr.io/a/b@sha256:${'1'.repeat(64)}`), `sha256:${'1'.repeat(64)}`);
    assert.equal(digestOf('ghcr.io/a/b:1'), undefined);
    assert.equal(digestOf(undefined), undefined);
  });
});
