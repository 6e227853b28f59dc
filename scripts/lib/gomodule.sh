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
#     runs in that copy; the trimmer's text is part of the cache key), GO_MODULE_ALIGN (MODULE@VERSION of another
#     build: the commands are built in a wrapper module whose dependencies shared with that module are raised or
#     lowered to its versions, so Go's build cache serves the packages that build compiled; docs/testing.md).

# shellcheck source=scripts/lib/cache.sh
source "${BASH_SOURCE[0]%/*}/cache.sh"

go_module_build() {
  local name=$1 module=$2 version=$3 ldflags=$4 trim=${GO_MODULE_TRIM:-} align=${GO_MODULE_ALIGN:-} go_cmd src module_dir main
  local target
  shift 4
  go_cmd=$(go_command)
  # The module's go.mod names the Go release it needs; never let the go command fetch another.
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
  # The key covers what changes the output (not the scripts' comments: an edit must not cost a rebuild).
  build_start "$name" "$(cache_key "$version" "$("$go_cmd" env GOVERSION)" "$ldflags" "$GOFLAGS" "${@##*:}" \
    "${trim:+$(cat "$trim")}" "$align")"
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
  if [[ -n $align ]]; then
    src=$BUILD_WORK/aligned
    go_module_align "$go_cmd" "$src" "$module@$version" "$align" "$@"
    log "aligned its dependencies to $align after $(build_seconds)s"
  fi
  for main in "$@"; do
    # In the module's own directory a command is ./PKG; in a wrapper, MODULE/PKG.
    target=./${main%%:*}
    [[ -n $align ]] && target=$module/${main%%:*}
    (cd "$src" && nice -n 10 "$go_cmd" build -p "$STACKGEN_JOBS" -trimpath -ldflags "$ldflags" \
      -o "$CACHE_OUT/${main#*:}" "$target")
    log "built ${main#*:} after $(build_seconds)s"
  done
  build_finish "$name=$version" "source=$module_dir" ${trim:+"trimmed_by=${trim##*/}"} ${align:+"aligned_to=$align"}
}

# go_module_align GO DIR MODULE@VERSION OTHER@VERSION PKG:OUT...: a wrapper module in DIR that requires
# MODULE@VERSION (its commands PKG kept by a tools.go), every dependency it shares with OTHER set to OTHER's
# version, and OTHER itself if it is among them; tidied through the Go module proxy, its go.sum checked as
# every download is.
go_module_align() {
  local go_cmd=$1 dir=$2 wanted=$3 other=$4 other_dir main
  shift 4
  mkdir -p "$dir"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for main in "$@"; do printf '\t_ "%s/%s"\n' "${wanted%@*}" "${main%%:*}"; done
    printf ')\n'
  } > "$dir/tools.go"
  other_dir=$("$go_cmd" mod download -json "$other" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  (
    cd "$dir" || exit 1
    export GOFLAGS=
    "$go_cmd" mod init "stackgen.local/aligned" 2> /dev/null
    "$go_cmd" mod edit -require="$wanted"
    "$go_cmd" mod tidy
    # Each module of the wrapper's graph that OTHER's graph holds at another version takes OTHER's.
    python3 - <("$go_cmd" list -m all) <(cd "$other_dir" && GOFLAGS=-mod=mod "$go_cmd" list -m all) "${wanted%@*}" \
      "$other" > requires <<'PY'
import sys
def versions(path):
    return dict(line.split()[:2] for line in open(path) if len(line.split()) >= 2)
ours, theirs, wanted = versions(sys.argv[1]), versions(sys.argv[2]), sys.argv[3]
other, other_version = sys.argv[4].rsplit("@", 1)
theirs[other] = other_version  # its own line in its graph has no version
for module, version in ours.items():
    if module != wanted and module in theirs and theirs[module] != version:
        print(f"-require={module}@{theirs[module]}")
PY
    if [[ -s requires ]]; then
      xargs "$go_cmd" mod edit < requires
      "$go_cmd" mod tidy
    fi
    rm -f requires
  )
}
