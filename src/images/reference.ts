// The container image reference grammar of distribution/reference (the one Docker, containerd and Kubernetes use),
// with Docker's normalisation: `nginx` → `docker.io/library/nginx:latest`.
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component ( "/" path-component )*
//   domain     := host [ ":" port ]          host := domain-name | "[" IPv6 "]"
//   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" hex           (sha256 → exactly 64 lowercase hex)

export const DOCKER_HUB = 'docker.io';
const LEGACY_DOCKER_HUB = 'index.docker.io';
const MAX_NAME_LENGTH = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const ANCHORED_IDENTIFIER = /^[a-f0-9]{64}$/;

export interface ImageReference {
  /** Registry host, normalised (`docker.io` for Docker Hub). */
  domain: string;
  /** Repository path inside the registry, e.g. `library/nginx`. */
  path: string;
  tag?: string;
  digest?: string;
}

/** An image string that is not a valid reference (named apart from the JavaScript global `ReferenceError`). */
export class ImageReferenceError extends Error {
  override name = 'ImageReferenceError';
}

export function parseReference(input: string): ImageReference {
  const text = input;
  if (text.length === 0) throw new ImageReferenceError('image reference is empty');
  if (text.trim() !== text || /\s/.test(text)) throw new ImageReferenceError('image reference contains whitespace');

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageReferenceError(`invalid digest "${digest}"`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) {
      throw new ImageReferenceError('a sha256 digest must be 64 lowercase hex characters');
    }
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new ImageReferenceError(`invalid tag "${tag}"`);
  }

  const name = rest;
  if (name.length === 0) throw new ImageReferenceError('image reference has no repository name');
  if (ANCHORED_IDENTIFIER.test(name)) {
    throw new ImageReferenceError('a 64-character hex string is an image ID, not a repository name');
  }
  const { domain, path } = splitDomain(name);
  if (!DOMAIN.test(domain)) throw new ImageReferenceError(`invalid registry host "${domain}"`);
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ImageReferenceError(
        component.toLowerCase() !== component
          ? 'repository name must be lowercase'
          : `invalid repository path component "${component}"`,
      );
    }
  }
  if (`${domain}/${path}`.length > MAX_NAME_LENGTH)
    throw new ImageReferenceError(`repository name is longer than ${MAX_NAME_LENGTH} characters`);
  return { domain, path, tag, digest };
}

/**
 * Docker's rule: the first component is a registry host when it contains '.' or ':', is `localhost`, or has
 * uppercase letters; otherwise the image is on Docker Hub, where official images live under `library/`.
 */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash >= 0 ? name.slice(0, slash) : '';
  const isHost = slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  let domain = isHost ? first : DOCKER_HUB;
  let path = isHost ? name.slice(slash + 1) : name;
  if (domain === LEGACY_DOCKER_HUB) domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  return { domain, path };
}

/** `docker.io/library/nginx` */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * What Trivy scans, and the key that deduplicates scans: the digest when there is one (it pins the content, so
 * `nginx:1.25@sha256:x` and `nginx@sha256:x` are one scan), otherwise the tag, `latest` when none is written.
 */
export function scanKeyOf(ref: ImageReference): string {
  return ref.digest ? `${repositoryOf(ref)}@${ref.digest}` : `${repositoryOf(ref)}:${ref.tag ?? 'latest'}`;
}

/**
 * `image_name` / `image_tag` as sent to Ephor. Matches the Go scanner for every reference it handled correctly
 * (`nginx` → `docker.io/library/nginx` + `latest`, `nginx@sha256:x` → tag `sha256:x`); for `repo:tag@digest`
 * the tag is kept as the tag (the Go scanner put it into the name).
 */
export function payloadNameOf(ref: ImageReference): { imageName: string; imageTag: string } {
  return { imageName: repositoryOf(ref), imageTag: ref.tag ?? ref.digest ?? 'latest' };
}
