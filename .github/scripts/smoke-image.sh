#!/usr/bin/env bash
# Smoke test of the release image, run by .github/workflows/release.yml before anything is pushed: builds the
# Dockerfile for each platform into the local Docker engine (arm64 runs under QEMU) and checks that the scanner
# reports the release's version and that the bundled Trivy is the pinned one.
# The same buildx builder then builds the pushed image from its cache, so the checked layers are the published ones.
#
# Usage: [REVISION=<commit>] bash .github/scripts/smoke-image.sh VERSION [PLATFORM...]
#   (default platforms: linux/amd64 linux/arm64; VERSION and REVISION are the build arguments of the pushed build)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "smoke-image: $*" >&2
  exit 1
}

version=${1:-}
[ -n "$version" ] || fail "usage: smoke-image.sh VERSION [PLATFORM...]"
shift
platforms=("$@")
[ "${#platforms[@]}" -gt 0 ] || platforms=(linux/amd64 linux/arm64)
trivy_version=$(sed -n 's/^ARG TRIVY_VERSION=//p' Dockerfile)
[ -n "$trivy_version" ] || fail "the Dockerfile has no 'ARG TRIVY_VERSION=' line"

for platform in "${platforms[@]}"; do
  tag="ephor-scanner-smoke:${platform//\//-}"
  docker buildx build --platform "$platform" --load --provenance=false --sbom=false \
    --build-arg "VERSION=$version" --build-arg "REVISION=${REVISION:-unknown}" --tag "$tag" .

  got=$(docker run --rm --platform "$platform" --network none "$tag" --version)
  [ "$got" = "$version" ] || fail "$platform: 'ephor-scanner --version' printed '$got', expected '$version'"

  trivy=$(docker run --rm --platform "$platform" --network none --entrypoint /usr/local/bin/trivy "$tag" --version)
  first=$(head -n 1 <<<"$trivy")
  [ "$first" = "Version: $trivy_version" ] ||
    fail "$platform: 'trivy --version' printed '$first', expected 'Version: $trivy_version'"

  echo "smoke-image: $platform ok (ephor-scanner $got, trivy $trivy_version)"
done
