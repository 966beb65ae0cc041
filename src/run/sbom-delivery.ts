// The SBOMs (SBOM_ENABLED), after the namespaces: one POST per `image_name:image_tag` that ran the image, so that
// each container links to it (Ephor links SBOMs by exactly that string). SBOM failures are counted in the summary
// and never change the exit code.
import { digestOf, sbomRequest } from '../ephor/sbom.js';
import type { DeliveryContext } from './deliveries.js';
import { writeDryRunSbom } from './dry-run.js';
import type { SbomSource } from './ledger.js';

export async function deliverSboms(context: DeliveryContext, scanKey: string, source: SbomSource): Promise<void> {
  const { config, log, ledger, run } = context;
  for (const imageReference of ledger.imageReferences(scanKey)) {
    const body = await sbomRequest(source.file, {
      imageReference,
      imageDigest: digestOf(source.digestRef),
      scanGroupId: run.scanGroupId,
      trivyFormat: config.sbom.format,
    });
    if (!body.ok) {
      ledger.sboms.skipped++;
      log.warn(
        { image: scanKey, image_reference: imageReference, reason: body.reason, detail: body.detail },
        'sbom not delivered',
      );
      continue;
    }
    if (config.ephor.dryRun) {
      if (await writeDryRunSbom(context, body.request, source.digestRef)) ledger.sboms.delivered++;
      else ledger.sboms.failed++;
      continue;
    }
    const result = await context.ephor.deliverSbom(body.request, context.guard);
    if (result.ok) {
      ledger.sboms.delivered++;
      log.info(
        { image: scanKey, image_reference: imageReference, status: result.response.status, bytes: result.bytes },
        'sbom delivered',
      );
    } else {
      ledger.sboms.failed++;
      log.error(
        { image: scanKey, image_reference: imageReference, error: result.error, status: result.status },
        'failed to deliver sbom',
      );
    }
  }
}
