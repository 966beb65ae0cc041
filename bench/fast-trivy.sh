#!/bin/bash
# Benchmark stand-in for the Trivy CLI (bash + coreutils only, so that starting it costs a few milliseconds of CPU,
# unlike the Node stand-in test/support/fake-trivy.mjs). It does what the scanner asks of Trivy, in Trivy's layout:
#
#   trivy version --format json             one JSON line: Version, and VulnerabilityDB / JavaDB from the cache
#   trivy image --download-db-only …        <cache>/db/trivy.db + metadata.json
#   trivy image --download-java-db-only …   <cache>/java-db/trivy-java.db + metadata.json
#   trivy image … --output FILE … REF       sleeps FAST_TRIVY_LATENCY_MS, then writes a real-sized report to FILE
#   trivy server …                          test/support/fake-trivy.mjs's server ($FAST_TRIVY_SERVER_STAND_IN)
#
# The report is a real Trivy report cut by bench/run.ts into $FAST_TRIVY_REPORT/part-0 … part-K, with the scanned
# reference (`ref`) or its digest reference (`digest`) written between consecutive parts as
# $FAST_TRIVY_REPORT/slots lists them (ArtifactName, Metadata.RepoDigests, the OS result's Target).
# Every flag the scanner passes is accepted (src/trivy/scan.ts scanArgs, src/trivy/database.ts); any other flag is
# refused as Trivy's flag parser refuses it, so a change of the scanner's argv shows up instead of passing silently.
#
# Environment: FAST_TRIVY_LATENCY_MS (default 0), FAST_TRIVY_REPORT (required for scans), FAST_TRIVY_VERSION
# (default 0.69.3), FAST_TRIVY_SLEEP_FIFO (optional: a FIFO nobody writes to; waiting on it with bash's `read -t`
# spares the `sleep` process). The cache directory is --cache-dir, else $TRIVY_CACHE_DIR, else ~/.cache/trivy.
#
# Cost: on the benchmark machine starting any process costs about 10 ms of CPU, so a scan here costs two process
# starts (bash, then cat exec'ed in its place), about 11 ms of CPU; `#!/bin/bash` rather than `/usr/bin/env bash`
# saves a third.
set -u

VERSION="${FAST_TRIVY_VERSION:-0.69.3}"

fatal() {
  printf '%s\tFATAL\tFatal error\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >&2
  exit 1
}

usage_error() {
  printf 'Error: %s\n' "$1" >&2
  exit 1
}

cache_dir="${TRIVY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trivy}"
format=table
output=
download=
positional=()

command="${1:-}"
[ "$#" -gt 0 ] && shift
case "$command" in
  image | i | version) ;;
  # The incremental scenario's Trivy server: the Node stand-in's (one process per run, so its start-up cost is paid
  # once), with its layer cache in files under --cache-dir.
  server | s) exec node "${FAST_TRIVY_SERVER_STAND_IN:?FAST_TRIVY_SERVER_STAND_IN is not set}" server "$@" ;;
  --version | -v) command=version ;;
  '') usage_error 'fast-trivy: no command (expected image or version)' ;;
  *) usage_error "unknown command \"$command\" for \"trivy\"" ;;
esac

# Flags that take a value (as `--flag value` or `--flag=value`), and boolean flags (`--flag` or `--flag=true|false`).
while [ "$#" -gt 0 ]; do
  arg="$1"
  shift
  case "$arg" in
    --*=*) name="${arg%%=*}" value="${arg#*=}" inline=1 ;;
    --*) name="$arg" value= inline= ;;
    -*) usage_error "unknown shorthand flag: '${arg#-}' in $arg" ;;
    *) positional+=("$arg"); continue ;;
  esac
  case "$command:$name" in
    version:--format | image:--format | image:--output | image:--scanners | image:--image-src | image:--cache-dir | \
      image:--timeout | image:--severity | image:--db-repository | image:--java-db-repository)
      if [ -z "$inline" ]; then
        [ "$#" -gt 0 ] || usage_error "flag needs an argument: $name"
        value="$1"
        shift
      fi
      case "$name" in
        --format) format="$value" ;;
        --output) output="$value" ;;
        --cache-dir) cache_dir="$value" ;;
      esac
      ;;
    image:--list-all-pkgs | image:--no-progress | image:--skip-db-update | image:--skip-java-db-update | \
      image:--skip-version-check | image:--disable-telemetry | image:--download-db-only | image:--download-java-db-only)
      case "${value:-true}" in
        true | false) ;;
        *) usage_error "invalid argument \"$value\" for \"$name\" flag: strconv.ParseBool: parsing \"$value\": invalid syntax" ;;
      esac
      if [ "${value:-true}" = true ]; then
        case "$name" in
          --download-db-only) download=db ;;
          --download-java-db-only) download=java-db ;;
        esac
      fi
      ;;
    *) usage_error "unknown flag: $name" ;;
  esac
done

# Trivy's metadata.json (pkg/db): schema version and times; NextUpdate 24 h (DB) or 72 h (Java DB) after UpdatedAt.
write_db() {
  local dir="$cache_dir/$1" file="$2" schema="$3" next_hours="$4"
  mkdir -p "$dir" || fatal "init error: DB error: failed to create $dir"
  printf 'fast-trivy db\n' >"$dir/$file"
  printf '{"Version":%s,"NextUpdate":"%s","UpdatedAt":"%s","DownloadedAt":"%s"}' "$schema" \
    "$(date -u -d "$((next_hours - 1)) hours" +%Y-%m-%dT%H:%M:%S.%NZ)" \
    "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%S.%NZ)" \
    "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" >"$dir/metadata.json.tmp"
  mv -f "$dir/metadata.json.tmp" "$dir/metadata.json"
}

if [ "$command" = version ]; then
  [ "$format" = json ] || { printf 'Version: %s\n' "$VERSION"; exit 0; }
  line="{\"Version\":\"$VERSION\""
  for db in db:VulnerabilityDB java-db:JavaDB; do
    meta="$cache_dir/${db%%:*}/metadata.json"
    if [ -s "$meta" ]; then
      IFS= read -r -d '' content <"$meta"
      line="$line,\"${db#*:}\":$content"
    fi
  done
  printf '%s}\n' "$line"
  exit 0
fi

case "$download" in
  db) write_db db trivy.db 2 24; exit 0 ;;
  java-db) write_db java-db trivy-java.db 1 72; exit 0 ;;
esac

[ "${#positional[@]}" -eq 1 ] || fatal "Require at least 1 argument or --input option"
ref="${positional[0]}"
[ "$format" = json ] || fatal "fast-trivy only writes --format json reports"
[ -n "$output" ] || fatal "fast-trivy needs --output"
report="${FAST_TRIVY_REPORT:?FAST_TRIVY_REPORT is not set}"

latency="${FAST_TRIVY_LATENCY_MS:-0}"
if [ "$latency" -gt 0 ]; then
  printf -v seconds '%d.%03d' $((latency / 1000)) $((latency % 1000))
  if [ -p "${FAST_TRIVY_SLEEP_FIFO:-}" ]; then
    IFS= read -r -t "$seconds" _ <>"$FAST_TRIVY_SLEEP_FIFO" # times out: nothing is ever written to it
  else
    sleep "$seconds"
  fi
fi

# Metadata.RepoDigests names the repository with the digest scanned; a tag reference (never the case in the
# benchmark: its Pods run digests) gets the report's own digest ($FAST_TRIVY_REPORT/digest).
repository="${ref%%@*}"
last_segment="${repository##*/}"
[[ "$last_segment" == *:* ]] && repository="${repository%:*}"
if [[ "$ref" == *@* ]]; then
  digest="${ref#*@}"
else
  IFS= read -r digest <"$report/digest"
fi
digest_ref="$repository@$digest"

# The small parts and the references with builtins, then the bulk of the report by cat in place of this shell.
i=0
{
  while IFS= read -r slot; do
    IFS= read -r -d '' part <"$report/part-$i"
    printf '%s' "$part"
    case "$slot" in
      ref) printf '%s' "$ref" ;;
      digest) printf '%s' "$digest_ref" ;;
    esac
    i=$((i + 1))
  done <"$report/slots"
} >"$output" || fatal "run error: unable to write results: failed to create an output file: open $output"
exec cat "$report/part-$i" >>"$output"
