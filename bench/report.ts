// The report bench/fast-trivy.sh writes for every scan: a real Trivy report from ../shared/fixtures (read at run
// time, never copied into the repository), cut into parts around the places that name the scanned image, so that
// each scan's report names its own reference while costing no more than a file copy.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TRIVY_REPORTS_DIR } from '../test/support/paths.js';

/** 863 KB, 236 vulnerabilities on 102 packages (alpine os-pkgs + node-pkg), from a real remote scan. */
export const JUICE_SHOP_REPORT = 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json';

export interface ReportTemplate {
  /** Directory for FAST_TRIVY_REPORT. */
  dir: string;
  fixture: string;
  bytes: number;
  vulnerabilities: number;
}

type Slot = 'ref' | 'digest';

/**
 * Writes `part-0 … part-K`, `slots` (what goes between part i and part i+1) and `digest` (the report's own digest,
 * for tag references) into `dir`. Slots: the ArtifactName value, the first Metadata.RepoDigests entry, and the
 * image name at the start of each os-pkgs Target (`<ArtifactName> (alpine 3.11.5)`).
 */
export async function writeReportTemplate(dir: string, fixture = JUICE_SHOP_REPORT): Promise<ReportTemplate> {
  const text = await readFile(path.join(TRIVY_REPORTS_DIR, fixture), 'utf8');
  const report = JSON.parse(text) as {
    ArtifactName?: string;
    Metadata?: { RepoDigests?: string[] };
    Results?: Array<{ Vulnerabilities?: unknown[] }>;
  };
  const cuts: Array<{ start: number; end: number; slot: Slot }> = [];
  const artifact = /"ArtifactName": "([^"\\]*)"/.exec(text);
  if (artifact)
    cuts.push({
      start: artifact.index + artifact[0].length - 1 - artifact[1]!.length,
      end: artifact.index + artifact[0].length - 1,
      slot: 'ref',
    });
  const digests = /"RepoDigests": \[\s*"([^"\\]*)"/.exec(text);
  if (digests)
    cuts.push({
      start: digests.index + digests[0].length - 1 - digests[1]!.length,
      end: digests.index + digests[0].length - 1,
      slot: 'digest',
    });
  if (artifact && artifact[1]) {
    const target = `"Target": "${artifact[1]} (`;
    for (let at = text.indexOf(target); at >= 0; at = text.indexOf(target, at + 1)) {
      const start = at + '"Target": "'.length;
      cuts.push({ start, end: start + artifact[1].length, slot: 'ref' });
    }
  }
  cuts.sort((a, b) => a.start - b.start);
  await mkdir(dir, { recursive: true });
  let position = 0;
  for (const [i, cut] of cuts.entries()) {
    await writeFile(path.join(dir, `part-${i}`), text.slice(position, cut.start));
    position = cut.end;
  }
  await writeFile(path.join(dir, `part-${cuts.length}`), text.slice(position));
  await writeFile(path.join(dir, 'slots'), cuts.map((cut) => `${cut.slot}\n`).join(''));
  const ownDigest =
    /@(sha256:[0-9a-f]{64})/.exec(report.Metadata?.RepoDigests?.[0] ?? '')?.[1] ?? `sha256:${'0'.repeat(64)}`;
  await writeFile(path.join(dir, 'digest'), `${ownDigest}\n`);
  const vulnerabilities = (report.Results ?? []).reduce((n, result) => n + (result.Vulnerabilities?.length ?? 0), 0);
  return { dir, fixture, bytes: Buffer.byteLength(text), vulnerabilities };
}
