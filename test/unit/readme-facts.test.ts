// Facts the README states that the code and the repository define elsewhere: checked here so they cannot drift.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FIXES } from '../../src/run/summary.js';
import type { ContainerNotDeliveredReason } from '../../src/types.js';
import { REPO_ROOT } from '../support/paths.js';

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const readme = read('README.md');

test("the ledger's not_delivered reasons in the README are exactly the reasons the scanner records", () => {
  const row = readme.split('\n').find((line) => line.startsWith('| `not_delivered` |'));
  assert.ok(row, 'the ledger table has a not_delivered row');
  const reasons = /`reason` \(([^)]*)\)/.exec(row)?.[1];
  assert.ok(reasons, 'the row lists the reasons in parentheses after `reason`');
  const listed = [...reasons.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
  // Every image's reason (FIXES has one per reason), and the one a container alone can have: it runs only on nodes
  // whose platform Trivy cannot scan (ContainerNotDeliveredReason).
  const containerOnly: ContainerNotDeliveredReason[] = ['unsupported_platform'];
  assert.deepEqual([...listed].sort(), [...Object.keys(FIXES), ...containerOnly].sort());
});

test('the README asks for the Node version package.json requires', () => {
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  const minimum = /^>=(\d+\.\d+)$/.exec(engines)?.[1];
  assert.ok(minimum, `engines.node is ">=MAJOR.MINOR": ${engines}`);
  const stated = [...readme.matchAll(/\bNode \d+(?:\.\d+)?(?:\+| or later)/g)].map((m) => m[0]);
  assert.ok(stated.length >= 2, 'the demo and the quick start name the Node version');
  for (const text of stated) assert.equal(text, `Node ${minimum} or later`);
});

test('the README names the Trivy version the Dockerfile pins', () => {
  const pinned = /^ARG TRIVY_VERSION=(\d+\.\d+\.\d+)$/m.exec(read('Dockerfile'))?.[1];
  assert.ok(pinned, 'the Dockerfile pins the Trivy release by version (its archives by checksum)');
  const section = readme.slice(readme.indexOf('### Trivy versions'), readme.indexOf('## What reaches Ephor'));
  assert.match(section, new RegExp(`image ships Trivy ${pinned.replaceAll('.', '\\.')}, pinned`));
});
