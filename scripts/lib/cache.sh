# shellcheck shell=bash
# The one skeleton of the scripts that build or install slow things (Go binaries, the vLLM virtualenv,
# llama-server, the node's images), with a per-version cache: an entry is a directory named by a key that
# covers every input of the build, and counts only once `.complete` exists, so an interrupted build is redone,
# never half-used. A build script works out its key with `cache_key STRING...` (a short hash), then:
#
#   build_start NAME KEY [RESULT]  opens the entry NAME/KEY as $CACHE_OUT and holds its lock until the script
#       ends (one build per entry: `make test` and a pytest fixture may both ask for it). A complete entry:
#       prints ENTRY/RESULT and ends the script (status 0). Else: starts the clock, makes $BUILD_WORK, an empty
#       directory in the entry (same file system: publishing is a rename) removed however the script ends, and
#       returns. RESULT is a path in the entry (bin, venv), else the entry itself.
#   build_seconds                  seconds since build_start, for progress logs
#   build_finish [LINE...]         moves $BUILD_WORK/RESULT, if built there, to ENTRY/RESULT; writes versions.txt
#       (the LINEs, build_seconds=N), marks the entry complete and prints ENTRY/RESULT, the last line of stdout.
#   cache_prune                    removes the other entries of NAME that no build holds
#   need_debs PKG...               installs the Debian packages that are missing
#   go_command                     the go command: $GO, else go on PATH, else /usr/local/go/bin/go
# Env: STACKGEN_CACHE, the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/stackgen); STACKGEN_JOBS, the
# parallel compile jobs of every build (default 2: the CI machine has 2 cores); GOGC and GOMEMLIMIT, for Go's
# compiles (default off and 2GiB).

# shellcheck source=scripts/lib/log.sh
source "${BASH_SOURCE[0]%/*}/log.sh"

STACKGEN_JOBS=${STACKGEN_JOBS:-2}
# Go's compiler and linker collect garbage only once a process's heap nears 2 GiB, not at every doubling: a quarter
# less CPU for the same output (k8s.io/client-go/kubernetes from an empty build cache: 173 s of user time at Go's
# default, 134 s so; docs/testing.md). A caller's own setting wins.
export GOGC=${GOGC:-off} GOMEMLIMIT=${GOMEMLIMIT:-2GiB}
[[ $STACKGEN_JOBS =~ ^[1-9][0-9]*$ ]] || die "STACKGEN_JOBS is '$STACKGEN_JOBS', not a number of jobs" 2

# The key: a short hash of the given strings (versions, flags, lock files' contents).
cache_key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

build_start() {
  CACHE_OUT=${STACKGEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackgen}/$1/$2
  BUILD_RESULT=${3:-}
  local result=$CACHE_OUT${BUILD_RESULT:+/$BUILD_RESULT}
  mkdir -p "$CACHE_OUT"
  exec 9>"$CACHE_OUT/.lock"
  flock -w 3600 9 || die "timed out waiting for another build holding $CACHE_OUT/.lock" 3
  if [[ -f "$CACHE_OUT/.complete" ]]; then
    log "cached in $result ($(paste -sd ' ' "$CACHE_OUT/versions.txt" 2>/dev/null))"
    echo "$result"
    exit 0
  fi
  BUILD_START=$SECONDS
  BUILD_WORK=$(mktemp -d "$CACHE_OUT/.build.XXXXXX")
  trap 'rm -rf "$BUILD_WORK"' EXIT
}

build_seconds() { echo $(( SECONDS - BUILD_START )); }

build_finish() {
  local result=$CACHE_OUT${BUILD_RESULT:+/$BUILD_RESULT}
  if [[ -n $BUILD_RESULT && -e $BUILD_WORK/$BUILD_RESULT ]]; then
    rm -rf "$result"  # what an interrupted build left
    mv "$BUILD_WORK/$BUILD_RESULT" "$result"
  fi
  [[ -e $result ]] || die "the build left nothing at $result" 4
  printf '%s\n' "$@" "build_seconds=$(build_seconds)" > "$CACHE_OUT/versions.txt"
  touch "$CACHE_OUT/.complete"
  log "done in $(build_seconds)s"
  echo "$result"
}

# Each under its own lock, so an entry another build or test run holds is left alone.
cache_prune() {
  local old
  for old in "${CACHE_OUT%/*}"/*/; do
    old=${old%/}
    [[ $old == "$CACHE_OUT" ]] && continue
    if (exec 8>"$old/.lock" && flock -n 8 && rm -rf "$old"); then
      log "removed the superseded entry $old"
    else
      log "kept the superseded entry $old: it is in use"
    fi
  done
}

# Debian packages a build needs, installed when missing (CI and developers run as root here).
need_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if (( ${#missing[@]} )); then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

go_command() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"
  elif command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else die "no Go toolchain found (set GO=/path/to/go)" 2
  fi
}
