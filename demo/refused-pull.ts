// What Trivy 0.69 prints when the registry refuses to let it pull an image, for the demo's private image. The demo
// needs nothing outside this repository, so the text is assembled here for its own reference, in Trivy's format:
// the FATAL line of pkg/log with the error chain of `trivy image --image-src remote` (the scanner's only source) from
// pkg/fanal/image/image.go at v0.69.3, ending in go-containerregistry's transport.Error ("GET <url>: <CODE>:
// <message>; <detail>"). The detail is what a CNCF distribution registry answers a pull without credentials
// (registry/handlers/app.go: UNAUTHORIZED with the requested access records), the same answer Docker Hub gives; the
// captured texts are in ../shared/fixtures/trivy/errors.md §2-3 (entry unauthorized-remote of errors.json).

/** Trivy's error chain (after "Fatal error\t") when the registry of `ref` (`registry/repository@digest`) refuses it. */
export function refusedPull(ref: string): string {
  const at = ref.indexOf('@');
  const [registry, ...path] = ref.slice(0, at).split('/');
  const repository = path.join('/');
  const manifest = `https://${registry}/v2/${repository}/manifests/${ref.slice(at + 1)}`;
  const detail = `[map[Action:pull Class: Name:${repository} Type:repository]]`;
  return (
    'run error: image scan error: scan error: unable to initialize a scan service: unable to initialize artifact: ' +
    `unable to initialize container image: unable to find the specified image "${ref}" in ["remote"]: ` +
    `1 error occurred:\n\t* remote error: GET ${manifest}: UNAUTHORIZED: authentication required; ${detail}\n\n`
  );
}
