// A dry run (EPHOR_DRY_RUN) writes each payload part to EPHOR_OUTPUT_DIR instead of posting it, and each SBOM to
// its sboms/ folder. A folder that cannot be written is a delivery failure like any other: the namespace is not
// delivered, with the reason, and the run exits 1.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeBodyFile, type BodyPart } from '../ephor/body.js';
import type { NamespaceBody } from '../ephor/payload.js';
import { digestOf } from '../ephor/sbom.js';
import { messageOf } from '../errors.js';
import type { SbomIngestRequest } from '../types.js';
import type { DeliveryContext } from './deliveries.js';
import type { NamespaceOutcome } from './summary.js';

export async function writeDryRun(
  context: DeliveryContext,
  body: NamespaceBody,
  parts: BodyPart[],
): Promise<NamespaceOutcome> {
  const { namespace, status, stats } = body;
  const dir = context.config.ephor.outputDir;
  try {
    await mkdir(dir, { recursive: true });
    for (const part of parts) await writeBodyFile(part, path.join(dir, partFileName(namespace, part, parts.length)));
  } catch (error) {
    const detail = `EPHOR_OUTPUT_DIR=${dir} cannot be written: ${messageOf(error)}`;
    context.log.error({ namespace, error: detail }, 'dry run: payload could not be written');
    return { namespace, delivered: false, status, stats, parts: parts.length, error: detail };
  }
  const bytes = parts.reduce((n, p) => n + p.bytes, 0);
  context.log.info(
    { namespace, status, parts: parts.length, bytes, directory: dir },
    'dry run: payload written, not posted',
  );
  return { namespace, delivered: true, status, stats, bytes, parts: parts.length };
}

function partFileName(namespace: string, part: BodyPart, count: number): string {
  return count > 1 ? `${namespace}.part-${part.label.index}-of-${part.label.count}.json` : `${namespace}.json`;
}

/** One SBOM request to EPHOR_OUTPUT_DIR/sboms; false (logged) when it cannot be written. */
export async function writeDryRunSbom(
  context: DeliveryContext,
  request: SbomIngestRequest,
  digestRef: string | undefined,
): Promise<boolean> {
  const dir = path.join(context.config.ephor.outputDir, 'sboms');
  const safeReference = request.image_reference.replace(/[^A-Za-z0-9._-]+/g, '_');
  const name = `${safeReference}.${digestOf(digestRef)?.slice(7, 19) ?? 'tag'}.json`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, name), JSON.stringify(request));
    return true;
  } catch (error) {
    const detail = `EPHOR_OUTPUT_DIR=${context.config.ephor.outputDir} cannot be written: ${messageOf(error)}`;
    context.log.error(
      { image_reference: request.image_reference, error: detail },
      'dry run: sbom could not be written',
    );
    return false;
  }
}
