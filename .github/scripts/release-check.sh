#!/usr/bin/env bash
# Release gate, run by .github/workflows/release.yml before anything is built or pushed (and by test/release/).
# The tag, package.json's version, Chart.yaml's version and appVersion, and the image the chart installs by default
# must all name one version, and that image must be the one the workflow pushes; otherwise nothing is published.
#
# Usage: IMAGE=ghcr.io/ephor-scanner/ephor-scanner [HELM=helm] bash .github/scripts/release-check.sh vX.Y.Z
# Prints "version=X.Y.Z", also appended to $GITHUB_OUTPUT when that is set.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "release-check: $*" >&2
  exit 1
}

tag=${1:-}
[ -n "$tag" ] || fail "usage: release-check.sh TAG (a version tag such as v0.1.0)"
[ -n "${IMAGE:-}" ] || fail "IMAGE must name the image repository the release pushes to"
helm=${HELM:-helm}
chart=deploy/helm/ephor-scanner

semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
[[ $tag =~ $semver ]] || fail "tag '$tag' is not a version tag: expected vMAJOR.MINOR.PATCH or vMAJOR.MINOR.PATCH-PRERELEASE"
version=${tag#v}

package_version=$(node -p 'require("./package.json").version')
chart_yaml=$("$helm" show chart "$chart")
field() { sed -n "s/^$1: *//p" <<<"$chart_yaml" | tr -d "\"'"; }
chart_version=$(field version)
app_version=$(field appVersion)

problems=()
[ "$package_version" = "$version" ] || problems+=("package.json version is $package_version")
[ "$chart_version" = "$version" ] || problems+=("Chart.yaml version is $chart_version")
[ "$app_version" = "$version" ] || problems+=("Chart.yaml appVersion is $app_version")
if [ "${#problems[@]}" -gt 0 ]; then
  joined=$(printf '%s, ' "${problems[@]}")
  fail "tag $tag names version $version, but ${joined%, }. Set all three to $version (docs/releasing.md), commit, and tag that commit."
fi

# What a user gets from `helm install` with the chart's defaults: every container image it renders.
rendered=$("$helm" template ephor-scanner "$chart" --namespace ephor \
  --set ephor.apiUrl=http://ephor-api:8080 --set scan.namespaces=default)
images=$(sed -n 's/^ *image: *//p' <<<"$rendered" | tr -d "\"'" | sort -u)
want="$IMAGE:$version"
[ -n "$images" ] || fail "the chart rendered no container image"
[ "$images" = "$want" ] ||
  fail "the chart installs $(tr '\n' ' ' <<<"$images")by default, but this release publishes $want (values.yaml image.repository, image.tag)"

echo "version=$version"
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "version=$version" >>"$GITHUB_OUTPUT"; fi
