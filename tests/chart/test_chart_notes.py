"""NOTES.txt and the chart README.

NOTES are rendered with `helm4 install --dry-run=client`: Helm 3.17 contacts the cluster even for a
client dry run and `helm template` never renders NOTES, so without a cluster only Helm 4 can show them.
"""

from __future__ import annotations

import re

from .chartlib import CHART, CI_DIR, NAMESPACE, RELEASE, SCHEMA, fullname, run_helm, scenario_values, walk


def notes(scenario: str) -> str:
    proc = run_helm(
        "helm4", "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(CI_DIR / scenario), "--dry-run=client"
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("NOTES:", 1)[1]


def test_notes_tell_how_to_reach_the_gateway() -> None:
    values = scenario_values("02-gpu-fleet.yaml")
    gateway = f"{fullname(values)}-gateway"
    text = notes("02-gpu-fleet.yaml")
    assert f"http://{gateway}.{NAMESPACE}.svc.cluster.local:4000/v1" in text
    assert f"kubectl -n {NAMESPACE} port-forward svc/{gateway} 4000:4000" in text
    assert f"https://{values['gateway']['ingress']['host']}/v1" in text
    key = values["gateway"]["masterKey"]
    assert f"get secret {key['secretName']} -o jsonpath='{{.data.{key['key']}}}' | base64 -d" in text
    assert f"ConfigMap {fullname(values)}-autogen" in text and "out/autogen/" in text
    assert f"helm test {RELEASE}" in text


def test_notes_without_ingress_or_autogen() -> None:
    text = notes("03-minimal.yaml")
    assert "Ingress" not in text
    assert "No AutoGen ConfigMap" in text and "out/autogen/" in text


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    table = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE))
    keys = {path.replace("*", "<name>") for path, _, _ in walk(SCHEMA)}
    # Keys under user-named maps (secretEnv.<NAME>.secretName...) are documented with their map.
    keys = {k for k in keys if ".<name>." not in k.removeprefix("models.<name>.")}
    assert not keys - documented, f"values missing from the README table: {sorted(keys - documented)}"
    assert not documented - keys, f"README documents unknown values: {sorted(documented - keys)}"
