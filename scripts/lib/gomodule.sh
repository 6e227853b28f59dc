# shellcheck shell=bash
# Build commands of a released Go module, in the module's own directory as the Go proxy serves it: its go.mod
# and go.sum (checked against sum.golang.org) pin every dependency, so there is no wrapper module and no patch.
# Cached per version with scripts/lib/cache.sh (source that first).
#
#   go_module_build NAME MODULE VERSION LDFLAGS PKG:OUT...
#     builds each ./PKG of MODULE@VERSION into OUT in the cache entry NAME (unless complete), and prints the
#     entry's directory as the last line of stdout.
# Env: GO (go command), GO_JOBS (parallel compile jobs, default 2).

go_module_build() {
  local name=$1 module=$2 version=$3 ldflags=$4 go_cmd start src main
  shift 4
  go_cmd=$(go_command)
  # The module's go.mod names the Go release it needs; never let the go command fetch another.
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
  # The key covers what changes the output (not the scripts' comments: an edit must not cost a rebuild).
  if cache_open "$name" "$(cache_key "$version" "$("$go_cmd" env GOVERSION)" "$ldflags" "$GOFLAGS" "${@##*:}")"; then
    echo "$name: cached in $CACHE_OUT" >&2
    echo "$CACHE_OUT"
    return 0
  fi
  start=$(date +%s)
  echo "$name: downloading $module@$version and its dependencies (needs the Go module proxy unless cached)" >&2
  src=$("$go_cmd" mod download -json "$module@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  (cd "$src" && "$go_cmd" mod download)
  echo "$name: modules ready after $(( $(date +%s) - start ))s" >&2
  for main in "$@"; do
    (cd "$src" && nice -n 10 "$go_cmd" build -p "${GO_JOBS:-2}" -trimpath -ldflags "$ldflags" \
      -o "$CACHE_OUT/${main#*:}" "./${main%%:*}")
    echo "$name: built ${main#*:} after $(( $(date +%s) - start ))s" >&2
  done
  printf '%s\n' "$name=$version" "source=$src" "build_seconds=$(( $(date +%s) - start ))" > "$CACHE_OUT/versions.txt"
  cache_close
  echo "$CACHE_OUT"
}
