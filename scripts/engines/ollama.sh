#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, the Ollama server from its Go module at the version in
# versions.yaml, and the Docker distribution registry its pull test pulls from.
#
# Usage: scripts/engines/ollama.sh   -> the LAST line of stdout is the bin dir (ollama, registry)
# Env:   STACKGEN_CACHE (cache root), GO (go command), STACKGEN_JOBS (parallel compile jobs, default 2)
#
# A Go module zip leaves out every vendor/ directory, so the headers llama.cpp vendors inside Ollama
# are missing from it. They come from Debian (nlohmann/json, stb) and from the miniaudio sdist on PyPI
# (the Python binding's, which carries the C library's miniaudio.h), at the version in versions.yaml.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/../lib/cache.sh"

ollama_version=$("$here/../versions.py" ollama)
registry_version=$("$here/../versions.py" distribution)
miniaudio_version=$("$here/../versions.py" miniaudio)
go_cmd=$(go_command)
go_version=$("$go_cmd" env GOVERSION)
# -X sets the version the binary reports; without it `ollama -v` says 0.0.0.
ollama_ldflags="-s -w -X github.com/ollama/ollama/version.Version=$ollama_version"
cgo_flags="-O1"

key=$(cache_key "ollama=$ollama_version" "registry=$registry_version" "miniaudio=$miniaudio_version" \
  "$go_version" "$ollama_ldflags" "cgo=$cgo_flags")
build_start ollama "$key" bin
need_debs nlohmann-json3-dev libstb-dev g++ python3-pip
work=$BUILD_WORK

# Headers, each reachable both as <dir/header.h> and as <header.h>: llama.cpp's sources use both forms.
inc=$work/include
mkdir -p "$inc/miniaudio" "$inc/stb"
ln -s /usr/include/nlohmann "$inc/nlohmann"
for h in /usr/include/stb/*.h; do ln -s "$h" "$inc/stb/"; ln -s "$h" "$inc/"; done
python3 -m pip download --quiet --no-deps --no-binary :all: "miniaudio==$miniaudio_version" -d "$work/sdist" >&2
tar -xzf "$work"/sdist/miniaudio-*.tar.gz -C "$work/sdist"
miniaudio_h=$(find "$work/sdist" -name miniaudio.h -print -quit)
[[ -n "$miniaudio_h" ]] || die "no miniaudio.h in the miniaudio $miniaudio_version sdist" 4
cp "$miniaudio_h" "$inc/miniaudio/miniaudio.h"
cp "$miniaudio_h" "$inc/miniaudio.h"

export GOTOOLCHAIN=local GOBIN=$work/bin
log "building ollama $ollama_version with $go_version (about 3 min on 2 cores)"
# cgo's default flags are `-g -O2`. The stripped binary (-s -w) throws the debug information away, and the
# tests' models are tiny, so the C++ builds at -O1: 132 s for Ollama against 250 s at -O2 (2 cores, the rest of
# the build cached), with no test here limited by Ollama's speed.
CGO_ENABLED=1 CGO_CPPFLAGS="-I$inc" CGO_CFLAGS="$cgo_flags" CGO_CXXFLAGS="$cgo_flags" nice -n 10 "$go_cmd" install -p "$STACKGEN_JOBS" -trimpath \
  -ldflags "$ollama_ldflags" "github.com/ollama/ollama@v$ollama_version"
log "built ollama in $(build_seconds)s"
CGO_ENABLED=0 nice -n 10 "$go_cmd" install -p "$STACKGEN_JOBS" -trimpath -ldflags "-s -w" \
  "github.com/distribution/distribution/v3/cmd/registry@$registry_version"
# Checked before it is cached: each binary runs and reports the pinned version.
reported=$("$work/bin/ollama" -v 2>&1 || true)
[[ $reported == *"$ollama_version"* ]] || die "the built ollama reports '$reported', not $ollama_version" 4
reported=$("$work/bin/registry" --version 2>&1 || true)
[[ $reported == *"${registry_version#v}"* ]] || die "the built registry reports '$reported', not $registry_version" 4

build_finish "ollama=$ollama_version" "registry=$registry_version" "miniaudio=$miniaudio_version" "go=$go_version"
