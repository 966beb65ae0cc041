// Payloads that could not be delivered wait here (on the cache volume) for the next run, which delivers them for
// the namespaces it does not deliver itself. Only the newest run's payload of a namespace is kept: an older result
// posted after a newer one would make Ephor reopen or resolve findings from stale data. A payload is spooled whole
// or not at all, and a file appears under its final name only once it is completely written.
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeBodyFile, type BodyPart } from '../ephor/body.js';
import type { Logger } from '../log.js';
import type { SpoolPort } from './ports.js';

export interface SpooledPart {
  namespace: string;
  file: string;
  bytes: number;
  /** When the run that produced it started (epoch ms). */
  startedAt: number;
  scanGroupId: string;
}

const NAME = /^(\d+)-([0-9a-f-]{36})-(\d+)of(\d+)\.json$/;

export class Spool implements SpoolPort {
  constructor(
    private readonly dir: string,
    private readonly maxAgeMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * Writes the parts of one run's namespace payload, then removes what older runs left for that namespace. Files are
   * numbered by their place among the parts spooled (two halves of a part refused with 413 share its label). A write
   * that fails removes the parts already written and throws: the older payload stays as it was.
   */
  async save(namespace: string, startedAt: number, scanGroupId: string, parts: BodyPart[]): Promise<void> {
    const dir = this.namespaceDir(namespace);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const written: string[] = [];
    try {
      for (const [index, part] of parts.entries()) {
        const file = path.join(dir, `${startedAt}-${scanGroupId}-${index + 1}of${parts.length}.json`);
        // Under a name the spool does not read until complete: a process killed while writing leaves no half body.
        const partial = `${file}.partial`;
        written.push(partial, file);
        await writeBodyFile(part, partial, 0o600);
        await rename(partial, file);
      }
    } catch (error) {
      for (const file of written) await rm(file, { force: true });
      throw error;
    }
    await this.discard(namespace, startedAt);
  }

  /** Removes the namespace's spooled payloads from runs that started before `before` (all of them by default). */
  async discard(namespace: string, before = Number.POSITIVE_INFINITY): Promise<void> {
    for (const part of await this.parts(namespace)) {
      if (part.startedAt < before) await rm(part.file, { force: true });
    }
  }

  /** The newest run's parts for each namespace; payloads older than SPOOL_MAX_AGE are deleted instead. */
  async pending(now: number): Promise<Map<string, SpooledPart[]>> {
    const result = new Map<string, SpooledPart[]>();
    let namespaces: string[];
    try {
      namespaces = await readdir(this.dir);
    } catch {
      return result; // no spool yet
    }
    for (const namespace of namespaces) {
      const parts = await this.parts(namespace);
      const expired = parts.filter((p) => now - p.startedAt > this.maxAgeMs);
      for (const part of expired) await rm(part.file, { force: true });
      if (expired.length > 0)
        this.log.warn(
          { namespace, parts: expired.length, max_age_h: this.maxAgeMs / 3_600_000 },
          'spooled payload older than SPOOL_MAX_AGE discarded',
        );
      const fresh = parts.filter((p) => !expired.includes(p));
      const newest = Math.max(...fresh.map((p) => p.startedAt));
      if (fresh.length > 0)
        result.set(
          namespace,
          fresh.filter((p) => p.startedAt === newest),
        );
    }
    return result;
  }

  async remove(part: SpooledPart): Promise<void> {
    await rm(part.file, { force: true });
  }

  private namespaceDir(namespace: string): string {
    return path.join(this.dir, namespace);
  }

  private async parts(namespace: string): Promise<SpooledPart[]> {
    let files: string[];
    try {
      files = await readdir(this.namespaceDir(namespace));
    } catch {
      return [];
    }
    const parts: SpooledPart[] = [];
    for (const name of files.sort()) {
      const match = NAME.exec(name);
      if (!match) continue;
      const file = path.join(this.namespaceDir(namespace), name);
      parts.push({
        namespace,
        file,
        bytes: (await stat(file)).size,
        startedAt: Number(match[1]),
        scanGroupId: match[2]!,
      });
    }
    return parts;
  }
}
