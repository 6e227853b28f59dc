#!/usr/bin/env python3
"""Trim a copy of KEDA's source to the scalers stackgen renders, so the node tier builds a third of KEDA.

KEDA compiles every scaler into one package (pkg/scalers) and names each in one switch
(pkg/scaling/scalers_builder.go, between TRIGGERS-START and TRIGGERS-END). The clients those scalers import
(Elasticsearch's typed API alone is about 960 packages, then AWS, Azure, GCP, Kafka, MongoDB and the rest) are
most of what a build compiles. The chart's ScaledObject uses the `prometheus` trigger, and `external-push` for a
model that sleeps (the HTTP add-on's scaler, stackgen.wake; the add-on's own ScaledObject uses `external`), so this
keeps those scalers and `cpu`/`memory` (none has a client of its own), deletes the other scaler files of the copy
and drops their cases from the switch: a ScaledObject with another trigger gets KEDA's own `no scaler found for
type` error.
Nothing else of KEDA changes; go.mod and go.sum (checked against sum.golang.org) still pin every dependency.

Usage: trim.py SRC   (SRC: a writable copy of github.com/kedacore/keda/v2 at the pinned version)
"""

import re
import sys
from pathlib import Path

TRIGGERS = {"prometheus": "prometheus_scaler.go", "cpu": "cpu_memory_scaler.go", "memory": "cpu_memory_scaler.go",
            "external": "external_scaler.go", "external-push": "external_scaler.go"}
# What every scaler shares; the rest of pkg/scalers/*.go is one file per scaler.
SHARED = {"scaler.go"}
# A constant the package shares but declares in one scaler's file (azure_queue_scaler.go).
SHARED_DECLARATIONS = 'package scalers\n\n// Declared in a scaler file trim.py deletes.\nconst externalMetricType = "External"\n'
CASE = re.compile(r'\s*case "([a-z0-9-]+)":')


def trim_switch(text: str) -> str:
    """The builder with only the kept triggers' cases between TRIGGERS-START and TRIGGERS-END."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "TRIGGERS-START" in line)
    end = next(i for i, line in enumerate(lines) if "TRIGGERS-END" in line)
    kept: list[str] = []
    keep = True
    for line in lines[start:end]:
        case = CASE.match(line)
        if case:
            keep = case.group(1) in TRIGGERS
        elif line.strip().startswith(("default:", "switch ")):
            keep = True
        elif line.strip().startswith("//") and "TRIGGERS" not in line:
            continue  # a comment on a dropped case
        if keep:
            kept.append(line)
    missing = set(TRIGGERS) - {m.group(1) for m in map(CASE.match, kept) if m}
    if missing:
        sys.exit(f"trim.py: the builder has no case for {sorted(missing)}: KEDA changed, update TRIGGERS")
    return "".join(lines[:start] + kept + lines[end:])


def main(src: Path) -> None:
    scalers = src / "pkg/scalers"
    keep = SHARED | set(TRIGGERS.values())
    for path in sorted(scalers.glob("*.go")):
        if not path.name.endswith("_test.go") and path.name not in keep:
            path.unlink()
    for path in scalers.glob("*_test.go"):
        path.unlink()  # they test the deleted scalers; nothing here runs KEDA's tests
    (scalers / "zz_stackgen_shared.go").write_text(SHARED_DECLARATIONS)
    builder = src / "pkg/scaling/scalers_builder.go"
    builder.write_text(trim_switch(builder.read_text()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
