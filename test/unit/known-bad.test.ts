// The Trivy releases the scanner refuses to run (src/trivy/known-bad.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KNOWN_BAD_FIX, KNOWN_BAD_TRIVY, knownBadMessage, knownBadTrivy } from '../../src/trivy/known-bad.js';

test('0.69.4, 0.69.5 and 0.69.6 are known-bad, however `trivy version` writes them', () => {
  for (const version of ['0.69.4', '0.69.5', '0.69.6', 'v0.69.4', ' 0.69.5\n', '0.69.6-rc1', '0.69.4+docker']) {
    assert.equal(knownBadTrivy(version)?.advisory, 'GHSA-69fq-xp46-6x23', version);
  }
});

test('the releases around them, development builds and unparsable versions are not', () => {
  for (const version of ['0.69.3', '0.69.2', '0.69.7', '0.70.0', '0.58.0', '0.6.94', '1.69.4', '0.69.40', 'dev', '']) {
    assert.equal(knownBadTrivy(version), undefined, version);
  }
});

test('the message names the version, the advisory, its CVE and where to read it; the fix names the safe version', () => {
  const [release] = KNOWN_BAD_TRIVY;
  const message = knownBadMessage('0.69.4', release!);
  assert.match(message, /^Trivy 0\.69\.4 is a malicious release/);
  assert.ok(message.includes('GHSA-69fq-xp46-6x23'));
  assert.ok(message.includes('CVE-2026-33634'));
  assert.ok(message.includes('https://github.com/aquasecurity/trivy/security/advisories/GHSA-69fq-xp46-6x23'));
  assert.match(KNOWN_BAD_FIX, /install Trivy 0\.69\.3/);
  assert.match(KNOWN_BAD_FIX, /checksum/);
});
