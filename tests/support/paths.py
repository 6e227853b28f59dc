"""The repository's places every tier reads, computed once."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "inference-stack"
SCRIPTS = REPO / "scripts"
# Where `make setup` installs helm 3 and 4 and kubectl (scripts/install-tools.sh).
TOOLS = REPO / ".tools" / "bin"
