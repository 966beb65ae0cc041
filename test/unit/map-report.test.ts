import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { readFindings, writeImageFindings } from '../../src/report/findings.js';
import { chooseCvssV3, mapVulnerability } from '../../src/report/map-image.js';
import { truncateVersionList } from '../../src/report/limits.js';
import { InvalidReportError, type TrivyReport } from '../../src/trivy/report.js';
import { SEVERITIES, type Severity } from '../../src/types.js';
import { TRIVY_REPORTS_DIR } from '../support/paths.js';

const ALL = SEVERITIES;
const WORK = mkdtempSync(path.join(os.tmpdir(), 'map-report-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});
let files = 0;
const report = (name: string): TrivyReport =>
  JSON.parse(readFileSync(path.join(TRIVY_REPORTS_DIR, name), 'utf8')) as TrivyReport;

/** The streaming mapper on a report file, with its findings read back. */
async function mapFile(file: string, severities: readonly Severity[]) {
  const findings = await writeImageFindings(file, severities, path.join(WORK, `findings-${files++}.json`));
  return { ...findings, vulnerabilities: await readFindings(findings.file) };
}
const mapReport = (name: string, severities: readonly Severity[]) =>
  mapFile(path.join(TRIVY_REPORTS_DIR, name), severities);
const countBySeverity = (severities: Severity[]) =>
  severities.reduce<Record<string, number>>((acc, s) => ((acc[s] = (acc[s] ?? 0) + 1), acc), {});

describe('Trivy report → findings in payload shape', () => {
  test('juice-shop: 236 entries, one finding per natural key, counted per severity', async () => {
    const mapped = await mapReport('real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json', ALL);
    // 39 entries repeat a (cve, package, version, type) key at another path; Ephor stores them once.
    assert.equal(mapped.vulnerabilities.length, 197);
    assert.deepEqual(countBySeverity(mapped.vulnerabilities.map((v) => v.severity)), {
      CRITICAL: 22,
      HIGH: 100,
      MEDIUM: 64,
      LOW: 11,
    });
    assert.equal(mapped.osFamily, 'alpine');
    assert.equal(mapped.osName, '3.11.5');
    assert.deepEqual(mapped.ecosystems, ['alpine', 'node-pkg']);
    assert.deepEqual(mapped.repoDigests, [
      'bkimminich/juice-shop@sha256:b1802758946aa40549b98ee6b8f93e9b92d0a6bf7aed139284893466be9c5065',
    ]);
    assert.equal(mapped.imageCreated, '2020-04-22T11:53:35.152Z');
    for (const v of mapped.vulnerabilities) {
      assert.equal(v.scanner_type, v.package_type, 'scanner_type is the Result Type, as the Go scanner sends it');
      assert.ok(v.fixed_version === undefined || v.fixed_version.length > 0, 'never an empty fixed_version');
      assert.ok(v.fixed_version === undefined || v.fixed_version.length <= 100);
    }
  });

  test('many reports read at once (reused read buffers) each give exactly their own findings', async () => {
    const names = readdirSync(TRIVY_REPORTS_DIR).filter((f) => f.endsWith('.json'));
    const one = async (name: string) => {
      try {
        return JSON.stringify((await mapReport(name, ALL)).vulnerabilities);
      } catch (error) {
        return `error: ${(error as Error).message}`;
      }
    };
    const alone: string[] = [];
    for (const name of names) alone.push(await one(name));
    const together = await Promise.all([...names, ...names].map(one));
    assert.deepEqual(together, [...alone, ...alone]);
    assert.ok(alone.filter((r) => !r.startsWith('error')).length >= 5);
  });

  test('the severity filter applies to what is reported', async () => {
    const mapped = await mapReport('real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json', ['CRITICAL']);
    assert.equal(mapped.vulnerabilities.length, 22);
    assert.ok(mapped.vulnerabilities.every((v) => v.severity === 'CRITICAL'));
  });

  test('a field-by-field finding (ajv CVE-2020-15366 in juice-shop)', async () => {
    const mapped = await mapReport('real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json', ALL);
    const ajv = mapped.vulnerabilities.find((v) => v.cve_id === 'CVE-2020-15366' && v.package_name === 'ajv');
    assert.deepEqual(ajv && { ...ajv, description: undefined, references: ajv.references?.length }, {
      cve_id: 'CVE-2020-15366',
      package_name: 'ajv',
      package_version: '5.5.2',
      severity: 'MEDIUM',
      scanner_type: 'node-pkg',
      package_class: 'lang-pkgs',
      package_type: 'node-pkg',
      title: 'nodejs-ajv: prototype pollution via crafted JSON schema in ajv.validate function',
      description: undefined,
      primary_url: 'https://avd.aquasec.com/nvd/cve-2020-15366',
      published_date: ajv!.published_date,
      fixed_version: '6.12.3',
      references: 14,
      cvss_v3_vector: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L',
      cvss_v3_score: 5.6,
    });
    assert.match(ajv!.published_date!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('an unfixed finding has no fixed_version at all (Ephor counts any value as fixable)', async () => {
    const mapped = await mapReport('trivy-v0.69.3_debian-buster_os-pkgs.json', ALL);
    assert.equal(mapped.vulnerabilities.length, 2);
    const unfixed = mapped.vulnerabilities.filter((v) => !('fixed_version' in v));
    assert.ok(unfixed.length >= 1);
  });

  test('the 0.58 report shape maps to the same findings as 0.69', async () => {
    const keys = async (name: string) =>
      (await mapReport(name, ALL)).vulnerabilities.map((v) =>
        [v.cve_id, v.package_name, v.package_version, v.scanner_type, v.severity].join('|'),
      );
    assert.deepEqual(
      await keys('trivy-v0.58.0_alpine-3.10_old-shape.json'),
      await keys('trivy-v0.69.3_alpine-3.10_os-pkgs.json'),
    );
  });

  test('no OS detected, zero vulnerabilities, a secret result without Type', async () => {
    const busybox = await mapReport('trivy-v0.69.3_busybox_no-os_cargo-lang-pkgs.json', ALL);
    assert.equal(busybox.osFamily, undefined);
    assert.deepEqual(busybox.ecosystems, ['cargo']);
    const sle = await mapReport('trivy-v0.69.3_sle-micro-5.4_zero-vulns.json', ALL);
    assert.deepEqual(sle.vulnerabilities, []);
    assert.equal(sle.osFamily, 'slem');
    const empty = await mapReport('edited_debian_all-status-values.json', ALL);
    assert.deepEqual(empty.repoDigests, [], 'an empty RepoDigests entry is dropped');
  });

  test('Packages lists (--list-all-pkgs) are ignored', async () => {
    const mapped = await mapReport('trivy-v0.69.3_npm-repository_with-Packages-list.json', ALL);
    assert.equal(mapped.vulnerabilities.length, 1);
  });
});

describe('CVSS v3 source choice is deterministic', () => {
  const cvss = {
    redhat: { V3Vector: 'CVSS:3.1/R', V3Score: 7 },
    ghsa: { V3Vector: 'CVSS:3.1/G', V3Score: 8 },
    nvd: { V2Vector: 'AV:N', V3Vector: 'CVSS:3.1/N', V3Score: 9.8 },
    bitnami: { V3Vector: 'CVSS:3.1/B', V3Score: 6 },
  };
  test('nvd first', () => {
    assert.deepEqual(chooseCvssV3(cvss, 'ghsa'), { vector: 'CVSS:3.1/N', score: 9.8 });
  });
  test('then the severity source', () => {
    const { nvd: _nvd, ...rest } = cvss;
    assert.deepEqual(chooseCvssV3(rest, 'ghsa'), { vector: 'CVSS:3.1/G', score: 8 });
  });
  test('then redhat, ghsa, bitnami, then alphabetical', () => {
    assert.deepEqual(
      chooseCvssV3({ bitnami: cvss.bitnami, ghsa: cvss.ghsa, redhat: cvss.redhat }, undefined)?.vector,
      'CVSS:3.1/R',
    );
    assert.deepEqual(chooseCvssV3({ zeta: { V3Vector: 'Z' }, alpha: { V3Vector: 'A', V3Score: 1 } }, undefined), {
      vector: 'A',
      score: 1,
    });
  });
  test('a source with only v2 is skipped; none → undefined', () => {
    assert.equal(chooseCvssV3({ nvd: { V2Vector: 'AV:N', V2Score: 5 } }, 'nvd'), undefined);
    assert.equal(chooseCvssV3(undefined, 'nvd'), undefined);
  });
  test('spring4shell: nvd chosen over ghsa and redhat', async () => {
    const mapped = await mapReport('trivy-v0.69.3_spring4shell-jre11_jar_cvss-ghsa-nvd-redhat.json', ALL);
    const raw = report('trivy-v0.69.3_spring4shell-jre11_jar_cvss-ghsa-nvd-redhat.json').Results!.flatMap(
      (r) => r.Vulnerabilities ?? [],
    )[0]!;
    assert.equal(mapped.vulnerabilities[0]!.cvss_v3_vector, raw.CVSS!.nvd!.V3Vector);
    assert.equal(mapped.vulnerabilities[0]!.scanner_type, 'jar');
  });
});

describe('column limits and unstorable characters (a violation would roll back the whole namespace)', () => {
  const result = { Type: 'debian', Class: 'os-pkgs' };
  test('long and broken values', () => {
    const v = mapVulnerability(
      {
        VulnerabilityID: `CVE-${'9'.repeat(60)}`,
        PkgName: 'pkg\u0000name',
        InstalledVersion: '1'.repeat(150),
        FixedVersion: Array.from({ length: 12 }, (_, i) => `10.${i}.123456`).join(', '),
        PrimaryURL: `https://example.com/${'p'.repeat(600)}`,
        Title: 'title with NUL \u0000 and a lone surrogate \ud800',
        Severity: 'critical',
        PublishedDate: 'not a date',
        CVSS: { nvd: { V3Vector: 'V'.repeat(201), V3Score: 9 } },
      },
      result,
    )!;
    assert.equal(v.cve_id.length, 50);
    assert.equal(v.package_name, 'pkgname');
    assert.equal(v.package_version.length, 100);
    assert.ok(v.fixed_version!.length <= 100);
    assert.match(v.fixed_version!, /^(10\.\d+\.123456, )*10\.\d+\.123456$/, 'whole alternatives are kept');
    assert.equal(v.primary_url, undefined, 'a URL that does not fit is dropped, not cut');
    assert.equal(v.title, 'title with NUL  and a lone surrogate \ufffd');
    assert.equal(v.severity, 'CRITICAL');
    assert.equal(v.published_date, undefined);
    assert.equal(v.cvss_v3_vector, undefined);
    assert.equal(v.cvss_v3_score, 9);
  });

  test('package_version is "" (never null) when Trivy has none; an unknown severity is UNKNOWN', () => {
    const v = mapVulnerability({ VulnerabilityID: 'CVE-1', PkgName: 'p', Severity: 'NEGLIGIBLE' }, result)!;
    assert.equal(v.package_version, '');
    assert.equal(v.severity, 'UNKNOWN');
  });

  test('an entry without ID or package name is skipped and counted', async () => {
    const file = path.join(WORK, 'skipped.json');
    writeFileSync(
      file,
      JSON.stringify({
        SchemaVersion: 2,
        Results: [
          {
            Type: 'debian',
            Vulnerabilities: [
              { PkgName: 'p' },
              { VulnerabilityID: ' ', PkgName: 'p' },
              { VulnerabilityID: 'CVE-1', PkgName: 'p' },
            ],
          },
        ],
      }),
    );
    const mapped = await mapFile(file, ALL);
    assert.equal(mapped.vulnerabilities.length, 1);
    assert.equal(mapped.skippedEntries, 2);
  });

  test('a result without Type uses its Class as scanner_type (Ephor requires one)', () => {
    assert.equal(
      mapVulnerability({ VulnerabilityID: 'CVE-1', PkgName: 'p' }, { Class: 'custom' })!.scanner_type,
      'custom',
    );
  });

  test('surrogate pairs are never split when cutting', () => {
    const v = mapVulnerability({ VulnerabilityID: 'CVE-1', PkgName: 'p', InstalledVersion: '😀'.repeat(120) }, result)!;
    assert.equal(Array.from(v.package_version).length, 100);
    assert.ok(v.package_version.isWellFormed());
  });

  test('fixed version lists', () => {
    assert.equal(truncateVersionList('1.2.3, 2.2.1', 100), '1.2.3, 2.2.1');
    assert.equal(truncateVersionList('x'.repeat(120), 100), 'x'.repeat(100));
  });
});

describe('reports that are not reports (never read as "no vulnerabilities")', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'this is not json', /not a JSON object/],
    ['truncated', '{"SchemaVersion": 2, "Results": [', /ends in the middle: truncated/],
    [
      'truncated inside a vulnerability',
      '{"SchemaVersion": 2, "Results": [{"Type": "debian", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgN',
      /truncated/,
    ],
    ['empty', '  \n', /empty/],
    ['array', '[]', /not a JSON object/],
    ['wrong schema', '{"SchemaVersion": 1}', /unsupported report SchemaVersion 1/],
    ['no schema', '{"Results": []}', /SchemaVersion undefined/],
    ['bad results', '{"SchemaVersion": 2, "Results": {}}', /"Results" that is not an array/],
    ['results a string', '{"SchemaVersion": 2, "Results": "none"}', /"Results" that is not an array/],
    ['bad result', '{"SchemaVersion": 2, "Results": [7]}', /a Result that is not an object/],
    [
      'bad vulnerabilities',
      '{"SchemaVersion": 2, "Results": [{"Vulnerabilities": "x"}]}',
      /"Vulnerabilities" that is not an array/,
    ],
    [
      'bad vulnerability',
      '{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [1]}]}',
      /a vulnerability that is not an object/,
    ],
    ['trailing data', '{"SchemaVersion": 2} {}', /data after its end/],
    ['mismatched brackets', '{"SchemaVersion": 2, "Results": [}', /mismatched brackets/],
  ];
  for (const [name, text, message] of cases) {
    test(name, async () => {
      const file = path.join(WORK, `bad-${files++}.json`);
      writeFileSync(file, text);
      await assert.rejects(
        mapFile(file, ALL),
        (e: unknown) => e instanceof InvalidReportError && message.test(e.message),
      );
    });
  }

  test('null Results and null Vulnerabilities are empty, as Trivy writes them', async () => {
    const file = path.join(WORK, 'nulls.json');
    writeFileSync(file, '{"SchemaVersion": 2, "Results": [{"Type": "debian", "Vulnerabilities": null}]}');
    assert.equal((await mapFile(file, ALL)).count, 0);
    writeFileSync(file, '{"SchemaVersion": 2, "Results": null}');
    assert.equal((await mapFile(file, ALL)).count, 0);
  });
});
