// One SBOM ingest body (contract §4): `format` exactly cyclonedx or spdx, `image_reference` exactly the
// `image_name:image_tag` of the containers in the scan payload (how Ephor links an SBOM to them), the digest, and
// the compact document no larger than the API accepts (checked here: an oversize SBOM is skipped, not sent).
import { readFile } from 'node:fs/promises';
import type { SbomIngestRequest } from './contract.js';

/**
 * Ephor's limit on the compact `sbom` object (5 MiB), measured like the server does, with a margin for its
 * re-serialisation.
 */
export const MAX_SBOM_BYTES = 5 * 1024 * 1024 - 64 * 1024;

export type SbomBody =
  { ok: true; request: SbomIngestRequest } | { ok: false; reason: 'too_large' | 'unreadable'; detail: string };

export async function sbomRequest(
  file: string,
  input: { imageReference: string; imageDigest?: string; scanGroupId: string; trivyFormat: 'cyclonedx' | 'spdx-json' },
): Promise<SbomBody> {
  let sbom: Record<string, unknown>;
  try {
    sbom = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    return { ok: false, reason: 'unreadable', detail: `the SBOM Trivy wrote is not JSON: ${(error as Error).message}` };
  }
  const bytes = Buffer.byteLength(JSON.stringify(sbom));
  if (bytes > MAX_SBOM_BYTES)
    return {
      ok: false,
      reason: 'too_large',
      detail: `the SBOM is ${bytes} bytes compact; Ephor accepts at most 5 MiB`,
    };
  const request: SbomIngestRequest = {
    image_reference: input.imageReference,
    scan_group_id: input.scanGroupId,
    // Trivy calls SPDX JSON "spdx-json"; Ephor accepts only "spdx".
    format: input.trivyFormat === 'cyclonedx' ? 'cyclonedx' : 'spdx',
    sbom,
  };
  if (input.imageDigest) request.image_digest = input.imageDigest;
  return { ok: true, request };
}

/** `repo@sha256:…` → `sha256:…` */
export function digestOf(reference: string | undefined): string | undefined {
  const at = reference?.indexOf('@') ?? -1;
  return at >= 0 ? reference!.slice(at + 1) : undefined;
}
