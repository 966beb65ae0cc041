// One image's findings, mapped once into payload shape and written to a file as a JSON array: namespace bodies
// stream them from there, so memory does not grow with the number of images or findings.
import { open, readFile } from 'node:fs/promises';
import { streamReport } from '../trivy/report-stream.js';
import type { TrivyResult } from '../trivy/report.js';
import type { Severity, Vulnerability } from '../ephor/contract.js';
import { COLUMN_LENGTH as L, isBlank, isoInstant, truncate } from './limits.js';
import { mapVulnerability, naturalKey } from './map-image.js';

export interface ImageFindings {
  osFamily?: string;
  osName?: string;
  repoDigests: string[];
  ecosystems: string[];
  imageCreated?: string;
  /** JSON array of Vulnerability objects (payload shape). */
  file: string;
  /** Its size in bytes (for splitting bodies without reading it). */
  bytes: number;
  count: number;
  bySeverity: Record<Severity, number>;
  /** Entries Trivy reported that could not be mapped (missing ID or package name). */
  skippedEntries: number;
}

export function emptyCounts(): Record<Severity, number> {
  return { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
}

/** Streams a Trivy report into a findings file: severities filtered, one entry per natural key. */
export async function writeImageFindings(
  reportFile: string,
  severities: readonly Severity[],
  findingsFile: string,
): Promise<ImageFindings> {
  const wanted = new Set(severities);
  const seen = new Set<string>();
  const ecosystems = new Set<string>();
  const findings: Omit<ImageFindings, 'file' | 'bytes'> = {
    repoDigests: [],
    ecosystems: [],
    count: 0,
    bySeverity: emptyCounts(),
    skippedEntries: 0,
  };
  const handle = await open(findingsFile, 'w', 0o600);
  // Buffers, not strings: joining strings where a few hold non-Latin-1 text makes the whole result two-byte (slow).
  let pending: Buffer[] = [Buffer.from('[')];
  let bytes = 0;
  const writeOut = async () => {
    if (pending.length === 0) return;
    const buffers = pending;
    pending = [];
    for (const buffer of buffers) bytes += buffer.length;
    await handle.writev(buffers);
  };
  try {
    await streamReport(reportFile, {
      metadata(metadata) {
        const os = metadata.OS;
        findings.osFamily = optional(os?.Family, L.osFamily);
        findings.osName = optional(os?.Name, L.osName);
        findings.repoDigests = Array.isArray(metadata.RepoDigests)
          ? metadata.RepoDigests.filter((d): d is string => typeof d === 'string' && d.trim() !== '')
          : [];
        findings.imageCreated = isoInstant(metadata.ImageConfig?.created);
      },
      vulnerability(result: TrivyResult, entry) {
        const mapped = mapVulnerability(entry, result);
        if (!mapped) {
          findings.skippedEntries++;
          return;
        }
        if (!wanted.has(mapped.severity)) return;
        const key = naturalKey(mapped);
        if (seen.has(key)) return; // one package found at two paths is one finding in Ephor
        seen.add(key);
        findings.bySeverity[mapped.severity]++;
        pending.push(Buffer.from((findings.count++ === 0 ? '' : ',') + JSON.stringify(mapped)));
      },
      result(result) {
        if (!isBlank(result.Type)) ecosystems.add(result.Type!);
      },
      flush: writeOut,
    });
    pending.push(Buffer.from(']'));
    await writeOut();
  } finally {
    await handle.close();
  }
  return { ...findings, ecosystems: [...ecosystems], file: findingsFile, bytes };
}

export async function readFindings(file: string): Promise<Vulnerability[]> {
  return JSON.parse(await readFile(file, 'utf8')) as Vulnerability[];
}

function optional(value: string | undefined, max: number): string | undefined {
  return typeof value === 'string' && !isBlank(value) ? truncate(value.trim(), max) : undefined;
}
