#!/usr/bin/env bash
# Build, or reuse from the per-machine cache, llama.cpp's `llama-server`: the binary that the official
# server image (ghcr.io/ggml-org/llama.cpp:server, entrypoint /app/llama-server) runs, so the tests can
# start it with the command line the chart renders. No registry reachable here ships that binary (the
# bindings' wheels carry libraries or a Python extension, not the server), but the sdist of the xllamacpp
# bindings on PyPI carries llama.cpp's full source in thirdparty/llama.cpp, at the llama.cpp build its
# version ends in (xllamacpp 2026.10.11549 is llama.cpp b11549). This builds the llama-server target of
# that source, CPU only, at the version in versions.yaml (`xllamacpp`).
#
# Usage: scripts/engines/llamacpp.sh   -> the LAST line of stdout is the bin dir (llama-server)
# Env:   STACKGEN_CACHE (cache root), STACKGEN_JOBS (parallel compile jobs, default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cache.sh
source "$here/../lib/cache.sh"

sdist_package=xllamacpp
sdist_version=$("$here/../versions.py" xllamacpp)
# xllamacpp's versions are YEAR.MONTH.BUILD, with a fourth part for a re-release of the same build.
if [[ $sdist_version =~ ^[0-9]{4}\.[0-9]+\.([0-9]+)(\.[0-9]+)?$ ]]; then
  build_number=${BASH_REMATCH[1]}
else
  die "cannot read a llama.cpp build number from $sdist_package $sdist_version" 2
fi
# The sdist has no .git, so the build number is passed in (else llama.cpp asks git, which reports 0 or,
# under a checkout, that checkout's count); the commit is not in the sdist and stays "unknown".
# GGML_NATIVE (-march=native): the binary only ever runs on the machine that built it (the cache is per
# machine, and the key below covers the CPU's flags), and native AVX2/AVX-512 kernels keep the tests fast.
# LLAMA_USE_PREBUILT_UI and LLAMA_BUILD_UI off: else the build fetches the web UI from Hugging Face or
# runs npm; the server then has no embedded UI, and its API is unchanged. LLAMA_OPENSSL off: nothing here
# downloads models (-hf needs HTTPS). This llama.cpp has no LLAMA_CURL any more (it warns if it is set).
# Static: llama-server is one file, needing only the C/C++ runtime and libgomp. -O1, not Release's -O3: the tests'
# models are tiny, and the build takes 269 s on 2 cores against 397 s.
cmake_flags=(
  -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_CCACHE=OFF
  -DLLAMA_BUILD_NUMBER="$build_number" -DLLAMA_BUILD_COMMIT=unknown
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG"
)
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo || true)

key=$(cache_key "$sdist_package=$sdist_version" "${cmake_flags[*]}" "$cpu_flags")
build_start llamacpp "$key" bin
need_debs cmake g++ ninja-build python3-pip
work=$BUILD_WORK

# --no-binary for this package alone: pip still builds the sdist's metadata, and `:all:` would make it
# compile the build requirements (Cython) from source too: 6.5 min instead of seconds, measured here.
log "downloading the $sdist_package $sdist_version sdist"
python3 -m pip download --quiet --no-deps --no-binary "$sdist_package" \
  "$sdist_package==$sdist_version" -d "$work/sdist" >&2
tar -xzf "$work/sdist/$sdist_package-$sdist_version.tar.gz" -C "$work"
src=$work/$sdist_package-$sdist_version/thirdparty/llama.cpp
[[ -f "$src/tools/server/CMakeLists.txt" ]] ||
  die "no llama.cpp server source in the $sdist_package $sdist_version sdist" 4
log "sdist ready after $(build_seconds)s"

nice -n 10 cmake -S "$src" -B "$work/build" "${cmake_flags[@]}" >&2
log "configured after $(build_seconds)s; building llama-server b$build_number (about 5 min on 2 cores)"
nice -n 10 cmake --build "$work/build" --target llama-server -j "$STACKGEN_JOBS" >&2
log "built llama-server in $(build_seconds)s"

mkdir -p "$work/bin"
cp "$work/build/bin/llama-server" "$work/bin/"
# `--version` prints, on stderr, "version: 0.6.0-dev (build BUILD, commit COMMIT)" and the compiler
# (before llama.cpp 0.x version numbers, "version: BUILD (COMMIT)").
server_version=$("$work/bin/llama-server" --version 2>&1)
log "$server_version"
reports_build="(version: |build )${build_number}[^0-9]"
[[ $server_version =~ $reports_build ]] || die "llama-server does not report build $build_number" 5

build_finish "sdist=$sdist_package==$sdist_version" "llama.cpp=b$build_number" "cmake=$(cmake --version | head -n1)" \
  "flags=${cmake_flags[*]}" "$server_version"
