#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, KEDA's operator and metrics API server from its Go module, at
# the version versions.yaml pins (`keda`), for the node tier's autoscaling test (tests/node).
#
# KEDA's own go.mod and go.sum (in the module zip the Go proxy serves, checked against sum.golang.org) pin
# every dependency, so the build runs in the module's directory as released: no wrapper module, no patch.
# The admission webhooks binary is not built: the node tier installs config/minimal, which has none.
#
# Usage: scripts/keda/build.sh   -> the LAST line of stdout is a directory holding `keda` and `keda-adapter`
# Env:   STACKGEN_CACHE (cache root), GO (go command), KEDA_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/../lib/cache.sh"

log() { echo "keda: $*" >&2; }

version=$("$here/../versions.py" keda)
module=github.com/kedacore/keda/v2
go_cmd=$(go_command)
# KEDA's go.mod names the Go release it needs; never let the go command fetch another.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
ldflags="-s -w -X=$module/version.Version=${version#v} -X=$module/version.GitCommit=$version"
# The key covers what changes the output (not this script's comments: an edit must not cost a rebuild).
key=$(cache_key "$version" "$("$go_cmd" env GOVERSION)" "$ldflags" "$GOFLAGS" keda keda-adapter)
if cache_open keda "$key"; then
  log "cached in $CACHE_OUT"
  echo "$CACHE_OUT"
  exit 0
fi

start=$(date +%s)
log "downloading $module@$version and its dependencies (needs the Go module proxy unless cached)"
src=$("$go_cmd" mod download -json "$module@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
(cd "$src" && "$go_cmd" mod download)
log "modules ready after $(( $(date +%s) - start ))s"
for main in operator:keda adapter:keda-adapter; do
  (cd "$src" && nice -n 10 "$go_cmd" build -p "${KEDA_JOBS:-2}" -trimpath -ldflags "$ldflags" \
    -o "$CACHE_OUT/${main#*:}" "./cmd/${main%%:*}")
  log "built ${main#*:} after $(( $(date +%s) - start ))s"
done
printf '%s\n' "keda=$version" "source=$src" "build_seconds=$(( $(date +%s) - start ))" > "$CACHE_OUT/versions.txt"
cache_close
echo "$CACHE_OUT"
