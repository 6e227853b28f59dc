# shellcheck shell=bash
# Build commands of a released Go module, in the module's own directory as the Go proxy serves it: its go.mod
# and go.sum (checked against sum.golang.org) pin every dependency, so there is no wrapper module.
# Cached per version by the build skeleton of scripts/lib/cache.sh, which this sources.
#
#   go_module_build NAME MODULE VERSION LDFLAGS PKG:OUT...
#     builds each ./PKG of MODULE@VERSION into OUT in the cache entry NAME (unless complete) and prints the
#     entry's directory as the last line of stdout: a script's last command (a complete entry ends the script).
# Env: GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2), GO_MODULE_TRIM (an executable that
#     trims a writable copy of the module's source, given as its argument, before the build: the build then
#     runs in that copy; the trimmer's text is part of the cache key).

# shellcheck source=scripts/lib/cache.sh
source "${BASH_SOURCE[0]%/*}/cache.sh"

go_module_build() {
  local name=$1 module=$2 version=$3 ldflags=$4 trim=${GO_MODULE_TRIM:-} go_cmd src module_dir main
  shift 4
  go_cmd=$(go_command)
  # The module's go.mod names the Go release it needs; never let the go command fetch another.
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
  # The key covers what changes the output (not the scripts' comments: an edit must not cost a rebuild).
  build_start "$name" "$(cache_key "$version" "$("$go_cmd" env GOVERSION)" "$ldflags" "$GOFLAGS" "${@##*:}" \
    "${trim:+$(cat "$trim")}")"
  log "downloading $module@$version and its dependencies (needs the Go module proxy unless cached)"
  src=$("$go_cmd" mod download -json "$module@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  (cd "$src" && "$go_cmd" mod download)
  module_dir=$src
  log "modules ready after $(build_seconds)s"
  if [[ -n $trim ]]; then
    cp -r "$src" "$BUILD_WORK/src"
    chmod -R u+w "$BUILD_WORK/src"  # the module cache is read-only
    src=$BUILD_WORK/src
    "$trim" "$src"
    log "trimmed the source with ${trim##*/}"
  fi
  for main in "$@"; do
    (cd "$src" && nice -n 10 "$go_cmd" build -p "$STACKGEN_JOBS" -trimpath -ldflags "$ldflags" \
      -o "$CACHE_OUT/${main#*:}" "./${main%%:*}")
    log "built ${main#*:} after $(build_seconds)s"
  done
  build_finish "$name=$version" "source=$module_dir" ${trim:+"trimmed_by=${trim##*/}"}
}
