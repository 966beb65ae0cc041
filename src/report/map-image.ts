// A Trivy report → the image's findings in Ephor's payload shape (pure). The natural key of a finding,
// (cve_id, package_name, package_version, scanner_type), is built exactly as the Go scanner built it, so findings
// and their triage history in Ephor carry over: scanner_type = Trivy Result.Type, package_version = "" when unknown.
import type { TrivyCvss, TrivyResult, TrivyVulnerability } from '../trivy/report.js';
import { SEVERITIES, type Severity, type Vulnerability } from '../ephor/contract.js';
import { COLUMN_LENGTH as L, cleanText, isBlank, isoInstant, truncate, truncateVersionList } from './limits.js';

/** CVSS sources tried after nvd and the vulnerability's own SeveritySource; any others follow alphabetically. */
const CVSS_SOURCE_ORDER = ['nvd', 'redhat', 'ghsa', 'bitnami'];

/** Ephor's natural key of a finding: the same key twice in one container is one finding. */
export function naturalKey(v: Vulnerability): string {
  return [v.cve_id, v.package_name, v.package_version, v.scanner_type].join('\u0000');
}

export function mapVulnerability(entry: TrivyVulnerability, result: TrivyResult): Vulnerability | undefined {
  const cveId = truncate((entry.VulnerabilityID ?? '').trim(), L.cveId);
  const packageName = truncate(entry.PkgName ?? '', L.packageName);
  // Ephor requires scanner_type; a Result without Type (never seen with vulnerabilities) falls back to its Class.
  const scannerType = truncate(
    [result.Type, result.Class, 'trivy'].find((t) => !isBlank(t))!,
    L.scannerType,
  );
  if (isBlank(cveId) || isBlank(packageName)) return undefined;

  const vulnerability: Vulnerability = {
    cve_id: cveId,
    package_name: packageName,
    package_version: truncate(entry.InstalledVersion ?? '', L.packageVersion),
    severity: severityOf(entry.Severity),
    scanner_type: scannerType,
  };
  setIf(vulnerability, 'package_class', optional(result.Class, L.packageClass));
  setIf(vulnerability, 'package_type', optional(result.Type, L.packageType));
  setIf(vulnerability, 'title', text(entry.Title));
  setIf(vulnerability, 'description', text(entry.Description));
  setIf(vulnerability, 'primary_url', url(entry.PrimaryURL));
  setIf(vulnerability, 'published_date', isoInstant(entry.PublishedDate));
  // Ephor treats any non-null fixed_version as "fixable", so an empty one is omitted, never sent as "".
  setIf(
    vulnerability,
    'fixed_version',
    isBlank(entry.FixedVersion) ? undefined : truncateVersionList(entry.FixedVersion!.trim(), L.fixedVersion),
  );
  const references = strings(entry.References);
  if (references.length > 0) vulnerability.references = references;
  const cvss = chooseCvssV3(entry.CVSS, entry.SeveritySource);
  if (cvss) {
    setIf(vulnerability, 'cvss_v3_vector', cvss.vector);
    if (cvss.score !== undefined) vulnerability.cvss_v3_score = cvss.score;
  }
  return vulnerability;
}

function severityOf(value: string | undefined): Severity {
  const upper = (value ?? '').trim().toUpperCase();
  return (SEVERITIES as readonly string[]).includes(upper) ? (upper as Severity) : 'UNKNOWN';
}

/**
 * One CVSS v3 vector and score, from a deterministic source: nvd first, then the source Trivy took the severity
 * from, then a fixed order. (The Go scanner fell back to Go's random map order, so its choice could change per run.)
 */
export function chooseCvssV3(
  cvss: Record<string, TrivyCvss> | undefined,
  severitySource: string | undefined,
): { vector?: string; score?: number } | undefined {
  if (!cvss || typeof cvss !== 'object') return undefined;
  const sources = Object.keys(cvss);
  const order = distinct([
    'nvd',
    ...(severitySource ? [severitySource] : []),
    ...CVSS_SOURCE_ORDER,
    ...[...sources].sort(),
  ]).filter((source) => sources.includes(source));
  for (const source of order) {
    const entry = cvss[source];
    if (!entry || isBlank(entry.V3Vector)) continue;
    const vector = cleanText(entry.V3Vector!.trim());
    const score = typeof entry.V3Score === 'number' && Number.isFinite(entry.V3Score) ? entry.V3Score : undefined;
    return { vector: vector.length <= L.cvssVector ? vector : undefined, score };
  }
  return undefined;
}

function optional(value: string | undefined, max: number): string | undefined {
  return typeof value === 'string' && !isBlank(value) ? truncate(value.trim(), max) : undefined;
}

function text(value: string | undefined): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? cleanText(value) : undefined;
}

/** A URL cut short would be a broken link, so one that does not fit the column is dropped. */
function url(value: string | undefined): string | undefined {
  const clean = text(value)?.trim();
  return clean && Array.from(clean).length <= L.primaryUrl ? clean : undefined;
}

function strings(values: unknown): string[] {
  if (!Array.isArray(values)) return [];
  return values.filter((v): v is string => typeof v === 'string' && v.trim() !== '').map(cleanText);
}

function distinct<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function setIf<K extends keyof Vulnerability>(
  target: Vulnerability,
  key: K,
  value: Vulnerability[K] | undefined,
): void {
  if (value !== undefined) target[key] = value;
}
