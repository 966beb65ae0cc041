// Hygiene of Trivy's layer cache on the persistent volume: `TRIVY_CACHE_DIR/fanal` only (Trivy's scan cache, one
// BoltDB file fanal.db with the fs backend: pkg/cache/fs.go), never the DBs (db/, java-db/) or the spool beside it.
// Trivy never evicts from it (trivy clean --scan-cache removes it whole) and it keeps growing (goharbor/harbor
// #16606, #20702: a 34 GB fanal.db); its keys include the analyzer versions (pkg/cache/key.go CalcKey), so after a
// Trivy upgrade every old entry is dead weight. So, at the start of a run and before a server opens it: cleared
// when the Trivy version that wrote it differs from this run's (a marker file inside it says which wrote it), and
// when it is larger than TRIVY_SCAN_CACHE_MAX_SIZE. A single BoltDB file cannot be trimmed, hence whole.
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errnoOf, messageOf } from '../errors.js';
import type { Logger } from '../log.js';

/** Trivy's folder for the scan cache inside --cache-dir (pkg/cache/fs.go NewFSCache: filepath.Join(dir, "fanal")). */
export const LAYER_CACHE_DIR = 'fanal';
/** Inside the layer cache, so that clearing the folder (or `trivy clean --scan-cache`) removes it with the entries. */
export const MARKER_FILE = 'ephor-scanner.json';

export type ClearReason = 'trivy_version' | 'size';

export interface LayerCacheState {
  dir: string;
  /** Its size when the run started, before any clearing (bytes). */
  bytesBefore: number;
  cleared?: ClearReason;
}

/** What the summary reports: the layer cache before and after the run. */
export interface LayerCacheSummary {
  bytesBefore: number;
  bytesAfter: number;
  cleared?: ClearReason;
}

interface Marker {
  trivy_version: string;
}

/**
 * Measures the layer cache, clears it when another Trivy version wrote it or when it is over `maxBytes`, and writes
 * this version's marker. Throws only when the folder cannot be created or written (the caller reports it).
 */
export async function prepareLayerCache(
  cacheDir: string,
  trivyVersion: string | undefined,
  maxBytes: number | undefined,
  log: Logger,
): Promise<LayerCacheState> {
  const dir = path.join(cacheDir, LAYER_CACHE_DIR);
  const version = trivyVersion ?? 'unknown';
  const bytesBefore = await directorySize(dir);
  const written = await readMarker(dir);
  let cleared: ClearReason | undefined;
  if (bytesBefore > 0 && written !== version) cleared = 'trivy_version';
  else if (maxBytes !== undefined && bytesBefore > maxBytes) cleared = 'size';
  if (cleared) {
    await rm(dir, { recursive: true, force: true });
    log.info(
      {
        dir,
        bytes: bytesBefore,
        reason: cleared,
        written_by: cleared === 'trivy_version' ? (written ?? 'an unknown Trivy version') : undefined,
        trivy_version: version,
        max_bytes: maxBytes,
      },
      cleared === 'trivy_version'
        ? 'layer cache cleared: another Trivy version wrote it (its entries are keyed by analyzer versions)'
        : 'layer cache cleared: larger than TRIVY_SCAN_CACHE_MAX_SIZE',
    );
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const marker: Marker = { trivy_version: version };
  await writeFile(path.join(dir, MARKER_FILE), `${JSON.stringify(marker)}\n`);
  return { dir, bytesBefore, cleared };
}

async function readMarker(dir: string): Promise<string | undefined> {
  try {
    const data = JSON.parse(await readFile(path.join(dir, MARKER_FILE), 'utf8')) as Partial<Marker>;
    return typeof data.trivy_version === 'string' ? data.trivy_version : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes of the regular files under `dir` (0 when it does not exist); symbolic links are not followed. */
export async function directorySize(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return 0;
    throw error;
  }
  let total = 0;
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await directorySize(file);
    else if (entry.isFile()) total += await sizeOf(file);
  }
  return total;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await lstat(file)).size;
  } catch {
    return 0; // removed meanwhile
  }
}

/** The layer cache after the run; a size that cannot be read is reported as such, never as 0. */
export async function summariseLayerCache(state: LayerCacheState, log: Logger): Promise<LayerCacheSummary | undefined> {
  try {
    return { bytesBefore: state.bytesBefore, bytesAfter: await directorySize(state.dir), cleared: state.cleared };
  } catch (error) {
    log.warn({ dir: state.dir, error: messageOf(error) }, 'the layer cache size could not be read');
    return undefined;
  }
}
