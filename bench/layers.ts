// The incremental scenario's images, as layers: what bench/fast-trivy.c takes per scan. 40 base layers shared the
// way real images share them (8 OS layers; 16 runtime families of 2 layers each on one of those OS layers), so each
// image is 1 OS layer + 2 runtime layers of its family + its own application layers; an image with a new digest (a
// redeploy) has new application layers on the same base. Each layer takes a fixed time between minMs and maxMs
// (drawn from its name) to download and analyse; the manifest and config take manifestMs per scan.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { imageDigest, isChanged } from './cluster.js';

export interface LayerModel {
  /** Manifest and config of one image (ms). */
  manifestMs: number;
  /** Download and analysis of one layer: between these (ms), the same for a layer every time. */
  minMs: number;
  maxMs: number;
  /** Application layers of each image (its own). */
  appLayers: number;
}

export const OS_LAYERS = 8;
export const FAMILIES = 16;
/** 8 OS layers + 16 families × 2 runtime layers. */
export const BASE_LAYERS = OS_LAYERS + FAMILIES * 2;

export interface Layer {
  id: string;
  ms: number;
}

function durationOf(id: string, model: LayerModel): number {
  const hash = createHash('sha256').update(id).digest().readUInt32BE(0);
  return model.minMs + (hash % (model.maxMs - model.minMs + 1));
}

/** Image `index`'s layers, bottom first: its family's three base layers, then its own (new ones after a redeploy). */
export function imageLayers(index: number, changed: boolean, model: LayerModel): Layer[] {
  const family = index % FAMILIES;
  const digest = imageDigest(index, changed).slice('sha256:'.length, 'sha256:'.length + 16);
  const ids = [
    `sha256:base-os-${family % OS_LAYERS}`,
    `sha256:base-rt-${family}-a`,
    `sha256:base-rt-${family}-b`,
    ...Array.from({ length: model.appLayers }, (_, j) => `sha256:app-${digest}-${j}`),
  ];
  return ids.map((id) => ({ id, ms: durationOf(id, model) }));
}

export interface LayerStats {
  /** Distinct layers of the run's images, and how many of them are base layers. */
  distinct: number;
  base: number;
  /** Layers summed over images (what ephemeral scans take in all). */
  perImageTotal: number;
}

/** FAST_TRIVY_LAYERS: one line per image digest, "<digest> <diffID>:<ms> …". */
export async function writeLayersFile(
  file: string,
  images: number,
  changedEvery: number,
  model: LayerModel,
): Promise<LayerStats> {
  const lines: string[] = [];
  const distinct = new Set<string>();
  let total = 0;
  for (let i = 0; i < images; i++) {
    const changed = isChanged(i, changedEvery);
    const layers = imageLayers(i, changed, model);
    for (const layer of layers) distinct.add(layer.id);
    total += layers.length;
    lines.push(`${imageDigest(i, changed)} ${layers.map((l) => `${l.id}:${l.ms}`).join(' ')}`);
  }
  await writeFile(file, `${lines.join('\n')}\n`);
  return {
    distinct: distinct.size,
    base: [...distinct].filter((id) => id.startsWith('sha256:base-')).length,
    perImageTotal: total,
  };
}
