#!/usr/bin/env bash
# Generated files equal what their generators write today: the golden output under manifests/
# (tests/verify/test_golden.py) and the chart's engine sections (tests/verify/test_chart_contract.py).
# Fix: `make manifests` or `make chart`, then review the diff.
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$PWD/.tools/bin:$PATH" exec "${VENV:-.venv}/bin/python" -m pytest -q -p no:cacheprovider \
  tests/verify/test_golden.py tests/verify/test_chart_contract.py
