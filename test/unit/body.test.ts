import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  bodyChunks,
  bodyText,
  containerEntry,
  envelopeOf,
  splitBody,
  workloadEntry,
  type WorkloadEntry,
} from '../../src/ephor/body.js';
import type { ScanConfig, ScanIngestRequest } from '../../src/ephor/contract.js';
import { validate } from '../support/contract.js';

const WORK = mkdtempSync(path.join(os.tmpdir(), 'body-test-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});

/** A findings file with `count` findings of realistic size. */
function findings(name: string, count: number) {
  const text = JSON.stringify(
    Array.from({ length: count }, (_, i) => ({
      cve_id: `CVE-2024-${10000 + i}`,
      package_name: `pkg-${i}`,
      package_version: '1.0.0',
      severity: 'HIGH',
      scanner_type: 'debian',
      title: 't'.repeat(120),
      description: 'd'.repeat(600),
    })),
  );
  const file = path.join(WORK, `${name}.json`);
  writeFileSync(file, text);
  return { file, bytes: Buffer.byteLength(text) };
}

const envelope = envelopeOf(
  {
    namespace: 'shop',
    scan_label: 'ephor-scanner/0.1.0',
    scan_group_id: '0b0d7c1e-8f6a-4c8e-9d3f-2a1b3c4d5e6f',
    status: 'completed',
    started_at: '2026-11-27T06:00:00.000Z',
    completed_at: '2026-11-27T06:05:00.000Z',
  },
  // Only the layout is under test: a scan_config with one key stands for the whole ledger.
  { scanner: 'ephor-scanner' } as ScanConfig,
);

function workload(name: string, containers: Array<[string, number]>): WorkloadEntry {
  return workloadEntry(
    { namespace: 'shop', name, kind: 'Deployment', labels: { team: 'web' } },
    containers.map(([c, n]) =>
      containerEntry(
        { name: c, image_name: 'docker.io/library/nginx', image_tag: '1.25' },
        findings(`${name}-${c}`, n),
      ),
    ),
  );
}

async function parse(part: Parameters<typeof bodyText>[0]): Promise<ScanIngestRequest> {
  const text = await bodyText(part);
  assert.equal(Buffer.byteLength(text), part.bytes, 'the announced size is the exact body size');
  const body = JSON.parse(text) as ScanIngestRequest;
  assert.deepEqual(validate('ingest-request', body), []);
  return body;
}

describe('namespace bodies in parts', () => {
  const workloads = [
    workload('a', [
      ['c1', 40],
      ['c2', 40],
    ]),
    workload('b', [['c1', 10]]),
    workload('c', [
      ['c1', 200],
      ['c2', 200],
      ['c3', 5],
    ]),
    workload('d', [['c1', 1]]),
  ];

  test('one part when it fits: exact bytes, valid JSON, no part label', async () => {
    const [part, ...rest] = splitBody(workloads, envelope, 8 * 1024 * 1024);
    assert.equal(rest.length, 0);
    const body = await parse(part!);
    assert.deepEqual(
      body.workloads.map((w) => [w.name, w.containers.map((c) => [c.name, c.vulnerabilities.length])]),
      [
        [
          'a',
          [
            ['c1', 40],
            ['c2', 40],
          ],
        ],
        ['b', [['c1', 10]]],
        [
          'c',
          [
            ['c1', 200],
            ['c2', 200],
            ['c3', 5],
          ],
        ],
        ['d', [['c1', 1]]],
      ],
    );
    assert.equal('part' in body.scan_config, false);
  });

  test('split by whole workloads; a workload too big alone by whole containers; never a container', async () => {
    const max = 200 * 1024;
    const parts = splitBody(workloads, envelope, max);
    assert.ok(parts.length > 1);
    const seen: string[] = [];
    for (const part of parts) {
      const body = await parse(part);
      assert.deepEqual(body.scan_config.part, { index: part.label.index, count: parts.length });
      const containers = body.workloads.reduce((n, w) => n + w.containers.length, 0);
      assert.ok(part.bytes <= max || containers === 1, `part ${part.label.index} is ${part.bytes} bytes`);
      for (const w of body.workloads)
        for (const c of w.containers) seen.push(`${w.name}/${c.name}/${c.vulnerabilities.length}`);
    }
    assert.deepEqual(
      seen,
      ['a/c1/40', 'a/c2/40', 'b/c1/10', 'c/c1/200', 'c/c2/200', 'c/c3/5', 'd/c1/1'],
      'every container once, whole, in order',
    );
  });

  test('an empty namespace is one part with workloads: []', async () => {
    const [part] = splitBody([], envelope, 64 * 1024);
    assert.deepEqual((await parse(part!)).workloads, []);
  });

  test('the stream gives the same bytes as the text', async () => {
    const [part] = splitBody(workloads, envelope, 8 * 1024 * 1024);
    const chunks: Buffer[] = [];
    for await (const chunk of bodyChunks(part!)) chunks.push(Buffer.from(chunk)); // copied: the buffer is reused
    assert.equal(Buffer.concat(chunks).toString('utf8'), await bodyText(part!));
  });

  test('a body of several MiB streams in bounded chunks with the same bytes, multi-byte characters included', async () => {
    const big = [
      workload('big', [
        ['c1', 3000],
        ['c2', 2],
      ]),
      ...Array.from({ length: 50 }, (_, i) =>
        workloadEntry(
          { namespace: 'shop', name: `w-ü-${i}`, kind: 'Deployment', labels: { note: 'é'.repeat(i * 5) } },
          [
            containerEntry(
              { name: 'c', image_name: 'docker.io/library/nginx', image_tag: '1.25' },
              findings(`small-${i}`, 1),
            ),
          ],
        ),
      ),
    ];
    const [part] = splitBody(big, envelope, 64 * 1024 * 1024);
    const chunks: Buffer[] = [];
    for await (const chunk of bodyChunks(part!)) chunks.push(Buffer.from(chunk)); // copied: the buffer is reused
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.ok(chunks.every((c) => c.length <= 256 * 1024));
    const bytes = Buffer.concat(chunks);
    assert.equal(bytes.length, part!.bytes);
    assert.equal(bytes.toString('utf8'), await bodyText(part!));
    await parse(part!);
  });

  test('a findings file that changed size after it was measured fails the stream instead of sending a wrong body', async () => {
    const entry = workload('changed', [['c1', 3]]);
    const [part] = splitBody([entry], envelope, 8 * 1024 * 1024);
    writeFileSync(entry.containers[0]!.findings.file, '[]');
    await assert.rejects(async () => {
      for await (const _ of bodyChunks(part!));
    }, /holds 2 bytes, expected \d+/);
  });
});
