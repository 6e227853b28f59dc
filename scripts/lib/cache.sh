# shellcheck shell=bash
# A per-version build cache shared by the scripts that build or install slow things (Go binaries, the
# vLLM virtualenv). An entry is a directory named by a key that covers every input of the build; it
# counts only once `.complete` exists, so an interrupted build is redone, never half-used.
#
#   cache_open NAME KEY    sets CACHE_OUT (the entry) and takes its lock; returns 0 if complete
#   cache_close            marks the entry complete
# Env: STACKGEN_CACHE, the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/stackgen).

cache_root() { echo "${STACKGEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackgen}"; }

# The key: a short hash of the given strings (versions, flags, lock files' contents).
cache_key() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

cache_open() {
  local name=$1 key=$2
  CACHE_OUT=$(cache_root)/$name/$key
  mkdir -p "$CACHE_OUT"
  # One build per entry at a time: `make test` and a pytest fixture may both ask for it.
  exec 9>"$CACHE_OUT/.lock"
  if ! flock -w 3600 9; then
    echo "cache: timed out waiting for another build holding $CACHE_OUT/.lock" >&2
    exit 3
  fi
  [[ -f "$CACHE_OUT/.complete" ]]
}

cache_close() { touch "$CACHE_OUT/.complete"; }

# Debian packages a build needs, installed when missing (CI and developers run as root here).
need_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if (( ${#missing[@]} )); then
    echo "installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

go_command() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"
  elif command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else echo "no Go toolchain found (set GO=/path/to/go)" >&2; exit 2
  fi
}
