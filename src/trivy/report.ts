// Trivy's JSON report (SchemaVersion 2, Trivy 0.58–0.69): the fields the scanner reads, and a parser that refuses
// anything that is not such a report instead of mistaking it for "no vulnerabilities".
import { readFile, stat } from 'node:fs/promises';

export interface TrivyCvss {
  V2Vector?: string;
  V3Vector?: string;
  V40Vector?: string;
  V2Score?: number;
  V3Score?: number;
  V40Score?: number;
}

export interface TrivyVulnerability {
  VulnerabilityID?: string;
  PkgName?: string;
  InstalledVersion?: string;
  FixedVersion?: string;
  Status?: string;
  Severity?: string;
  SeveritySource?: string;
  Title?: string;
  Description?: string;
  PrimaryURL?: string;
  PublishedDate?: string;
  References?: string[];
  CVSS?: Record<string, TrivyCvss>;
}

export interface TrivyResult {
  Target?: string;
  Class?: string;
  Type?: string;
  Vulnerabilities?: TrivyVulnerability[] | null;
}

export interface TrivyReport {
  SchemaVersion: number;
  ArtifactName?: string;
  Metadata?: {
    OS?: { Family?: string; Name?: string };
    RepoDigests?: string[];
    ImageConfig?: { created?: string };
  };
  Results?: TrivyResult[] | null;
}

export class InvalidReportError extends Error {}

/** Reports beyond this are refused rather than risk the scanner's memory (a JSON string cannot exceed ~512 MiB). */
export const MAX_REPORT_BYTES = 256 * 1024 * 1024;

export async function readReport(file: string, maxBytes = MAX_REPORT_BYTES): Promise<TrivyReport> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new InvalidReportError('Trivy exited 0 but wrote no report file');
  }
  if (size === 0) throw new InvalidReportError('Trivy exited 0 but the report file is empty');
  if (size > maxBytes) throw new InvalidReportError(`report is ${size} bytes, over the ${maxBytes}-byte limit`);
  return parseReport(await readFile(file, 'utf8'));
}

export function parseReport(text: string): TrivyReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new InvalidReportError(`report is not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(data)) throw new InvalidReportError('report is not a JSON object');
  if (data.SchemaVersion !== 2) throw new InvalidReportError(`unsupported report SchemaVersion ${JSON.stringify(data.SchemaVersion)} (expected 2)`);
  if (data.Results != null && !Array.isArray(data.Results)) throw new InvalidReportError('report "Results" is not an array');
  for (const result of (data.Results ?? []) as unknown[]) {
    if (!isObject(result)) throw new InvalidReportError('report has a Result that is not an object');
    if (result.Vulnerabilities != null && !Array.isArray(result.Vulnerabilities)) {
      throw new InvalidReportError('report has a Result whose "Vulnerabilities" is not an array');
    }
  }
  return data as unknown as TrivyReport;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
