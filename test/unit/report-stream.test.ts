import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ReportParser } from '../../src/trivy/report-stream.js';
import type { TrivyReport, TrivyResult, TrivyVulnerability } from '../../src/trivy/report.js';
import { TRIVY_REPORTS_DIR } from '../support/paths.js';

/** Feeds the parser in chunks of the given sizes (cycled), as a file read would, and records what it hands over. */
function streamed(bytes: Buffer, sizes: number[]) {
  const seen: {
    metadata?: unknown;
    vulnerabilities: Array<[string | undefined, TrivyVulnerability]>;
    results: TrivyResult[];
  } = { vulnerabilities: [], results: [] };
  const parser = new ReportParser({
    metadata: (m) => (seen.metadata = m),
    vulnerability: (result, v) => seen.vulnerabilities.push([result.Type, v]),
    result: (r) => seen.results.push({ ...r }),
  });
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    parser.write(bytes.subarray(offset, offset + size));
    offset += size;
  }
  parser.end();
  return seen;
}

describe('the streaming report reader hands over exactly what JSON.parse sees', () => {
  for (const name of readdirSync(TRIVY_REPORTS_DIR).filter((f) => f.endsWith('.json'))) {
    test(name, () => {
      const bytes = readFileSync(path.join(TRIVY_REPORTS_DIR, name));
      const report = JSON.parse(bytes.toString('utf8')) as TrivyReport;
      const expected = (report.Results ?? []).flatMap((r) => (r.Vulnerabilities ?? []).map((v) => [r.Type, v]));
      // Whole-file chunks, and tiny odd-sized ones that split every token, escape and multi-byte character.
      for (const sizes of [[bytes.length], [1], [3, 7, 1, 13], [4096, 5]]) {
        const seen = streamed(bytes, sizes);
        assert.deepEqual(seen.vulnerabilities, expected);
        assert.deepEqual(seen.metadata, report.Metadata);
        assert.deepEqual(
          seen.results.map((r) => [r.Target, r.Class, r.Type]),
          (report.Results ?? []).map((r) => [r.Target, r.Class, r.Type]),
        );
      }
    });
  }

  test('escaped quotes, backslashes and unicode in keys and values survive chunk boundaries', () => {
    const vuln = {
      VulnerabilityID: 'CVE-1',
      PkgName: 'p"q\\r',
      Title: 'émoji 😀 "quoted" \\ \u0001',
      References: ['a', 'b'],
    };
    const text = JSON.stringify({
      SchemaVersion: 2,
      'We\\"ird': { 'x"y': [1, { '}': ']' }] },
      Results: [{ Type: 'debian', Vulnerabilities: [vuln], Packages: [{ Name: '{[' }] }],
    });
    const seen = streamed(Buffer.from(text), [1, 2]);
    assert.deepEqual(seen.vulnerabilities, [['debian', vuln]]);
  });

  test('keys are compared after unescaping, and a raw control character in a key is invalid JSON', () => {
    const vuln = { VulnerabilityID: 'CVE-2', PkgName: 'zlib' };
    const escaped = `{"SchemaVersion":2,"Res\\u0075lts":[{"Type":"alpine","Vulnerabilit\\u0069es":[${JSON.stringify(vuln)}]}]}`;
    for (const sizes of [[escaped.length], [1], [5, 3]])
      assert.deepEqual(streamed(Buffer.from(escaped), sizes).vulnerabilities, [['alpine', vuln]]);
    const broken = '{"SchemaVersion":2,"Re\u0001sults":[]}'; // a raw U+0001 inside the key
    assert.throws(() => streamed(Buffer.from(broken), [7]), /not valid JSON in a key/);
  });

  test('captured and skipped values are run through whole: backslash runs before quotes, brackets inside strings, any chunking', () => {
    const vuln = {
      VulnerabilityID: 'CVE-3',
      PkgName: 'ends-in-backslashes\\',
      Title: 'q\\"x',
      CVSS: { nvd: { V3Score: 7.5, V: [[], {}] } },
    };
    const packages = [{ Name: 'a\\' }, { Name: '\\"]}' }, { Name: '[{', Layers: [[[]]] }, 1, -2.5e3, true, null];
    const text = JSON.stringify(
      {
        SchemaVersion: 2,
        Extra: { deep: [{ x: '"' }] },
        Results: [{ Type: 'npm', Packages: packages, Vulnerabilities: [vuln, vuln] }],
      },
      null,
      2,
    );
    for (const sizes of [[text.length], [1], [2, 3], [5, 1, 7]]) {
      const seen = streamed(Buffer.from(text), sizes);
      assert.deepEqual(seen.vulnerabilities, [
        ['npm', vuln],
        ['npm', vuln],
      ]);
    }
  });

  test('a stray character inside a skipped value is invalid JSON; a skipped value left open is a truncated report', () => {
    const garbage = '{"SchemaVersion":2,"Results":[{"Type":"npm","Packages":[{"Name":"x"} @],"Vulnerabilities":[]}]}';
    assert.throws(() => streamed(Buffer.from(garbage), [9]), /not valid JSON \(unexpected character "@"\)/);
    const open = '{"SchemaVersion":2,"Results":[{"Type":"npm","Packages":[{"Name":"x"}';
    assert.throws(() => streamed(Buffer.from(open), [4]), /truncated/);
  });
});
