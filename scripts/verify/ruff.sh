#!/usr/bin/env bash
# Lint every Python file with ruff, by the rules of pyproject.toml's [tool.ruff].
# Fix: `.venv/bin/ruff check --fix .`, then mend by hand what it cannot.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${VENV:-.venv}/bin/ruff" check .
