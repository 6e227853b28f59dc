#!/usr/bin/env bash
# versions.yaml is the one place of every pin: each ref it lists holds the pinned version, and no line of the
# repository names a pinned package's version where no ref covers it (tests/verify/test_versions.py).
# Fix: bump the `version` in versions.yaml and each place the failure names, or add the ref.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${VENV:-.venv}/bin/python" -m pytest -q -p no:cacheprovider tests/verify/test_versions.py
