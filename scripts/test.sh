#!/usr/bin/env bash
# The one test command (README and .ci/run): type check, lint, build the bundle the e2e tests run, then every test file.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests read real fixtures from the shared folder beside the clone (never copied into the repository).
shared=${EPHOR_SHARED_DIR:-../shared}
if [ ! -d "$shared/fixtures" ]; then
  echo "scripts/test.sh: the shared folder '$(realpath -m "$shared")' (with its fixtures/) is missing: the tests read real Trivy reports and Kubernetes responses from it. Put it beside the clone as ../shared, or set EPHOR_SHARED_DIR to where it is." >&2
  exit 1
fi
bash scripts/ensure-helm.sh >/dev/null   # the chart tests run the real helm binary (fetched once into .cache/)
npx tsc --noEmit
npm run lint --silent   # typescript-eslint (strict, type-checked) and Prettier's check
npm run build --silent
if [ "$#" -gt 0 ]; then
  TESTS=("$@")
else
  mapfile -t TESTS < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
fi
if [ "${#TESTS[@]}" -eq 0 ]; then
  echo "scripts/test.sh: no test files found under test/" >&2
  exit 1
fi
echo "running ${#TESTS[@]} test files"
exec node --import tsx --test --test-concurrency=2 "${TESTS[@]}"
