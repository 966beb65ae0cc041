// `status.containerStatuses[].imageID` → the registry digest a container actually runs, as `repo@sha256:…`.
// Runtimes write it in several forms; only some of them name a registry digest:
//   docker-pullable://nginx@sha256:…      dockershim: a registry digest
//   docker.io/library/nginx@sha256:…      containerd / CRI-O: a registry digest
//   docker://sha256:… or sha256:…         a local image ID (config digest): not pullable, no registry digest
//   ""                                    not pulled yet
import { ImageReferenceError, parseReference, repositoryOf } from './reference.js';

const RUNTIME_PREFIXES = ['docker-pullable://', 'docker://', 'containerd://', 'cri-o://'];

export function registryDigestOf(imageID: string | undefined): string | undefined {
  if (!imageID) return undefined;
  let id = imageID.trim();
  for (const prefix of RUNTIME_PREFIXES) {
    if (id.startsWith(prefix)) {
      id = id.slice(prefix.length);
      break;
    }
  }
  if (!id.includes('@')) return undefined; // a bare image ID
  try {
    const ref = parseReference(id);
    return ref.digest?.startsWith('sha256:') ? `${repositoryOf(ref)}@${ref.digest}` : undefined;
  } catch (error) {
    if (error instanceof ImageReferenceError) return undefined;
    throw error;
  }
}
