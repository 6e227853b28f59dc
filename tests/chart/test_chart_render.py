"""Every scenario lints strictly, renders on Helm 3 and Helm 4, and is valid Kubernetes (strict schemas)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from stackgen.version import VERSION
from tests.support.paths import REPO

from .chartlib import CHART, CI_DIR, render, run_helm, template_text

OLDEST_KUBE = "1.30"  # Chart.yaml kubeVersion >=1.30
NEWEST_KUBE = ".".join(kubernetes_validate.latest_version().split(".")[:2])


def test_lint_strict(helm: str, scenario: str) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(CI_DIR / scenario))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_renders_objects(helm: str, scenario: str) -> None:
    objs = render(helm, (scenario,))
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    names = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), f"duplicate objects: {names}"


@pytest.mark.parametrize("kube", sorted({OLDEST_KUBE, NEWEST_KUBE}))
def test_objects_valid_for_kubernetes(helm: str, scenario: str, kube: str) -> None:
    errors = []
    for obj in render(helm, (scenario,)):
        try:
            kubernetes_validate.validate(obj, kube, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("kube", sorted({OLDEST_KUBE, NEWEST_KUBE}))
def test_strict_validation_catches_unknown_fields(helm: str, kube: str) -> None:
    # Guards the test above against passing vacuously: an unknown field deep in a pod must fail.
    deployment = next(o for o in render(helm, ("02-gpu-fleet.yaml",)) if o["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["gpuCount"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kube, strict=True)


def test_output_is_deterministic(helm: str, scenario: str) -> None:
    first = template_text(helm, (scenario,))
    template_text.cache_clear()
    assert template_text(helm, (scenario,)) == first


def test_helm3_and_helm4_render_the_same_objects(scenario: str) -> None:
    assert render("helm3", (scenario,)) == render("helm4", (scenario,))


def test_values_made_for_one_namespace_are_refused_in_another(helm: str) -> None:
    """stackgen's values name their namespace in PromQL and URLs: installed elsewhere, autoscaling and alerts
    would watch nothing. The chart refuses, saying how to install them; values that name none go anywhere."""
    made_for = ("--set", "namespace=llm")
    assert run_helm(helm, "template", "demo", str(CHART), "-n", "llm", "-f", str(CI_DIR / "03-minimal.yaml"),
                    *made_for).returncode == 0
    refused = run_helm(helm, "template", "demo", str(CHART), "-n", "other", "-f", str(CI_DIR / "03-minimal.yaml"),
                       *made_for)
    assert refused.returncode != 0
    assert ('these values were rendered for namespace "llm", which their autoscaling queries, alerts and agent URLs '
            'name, not "other": install them with -n llm, or set namespace: other in the stack spec and render again'
            ) in refused.stderr, refused.stderr
    assert run_helm(helm, "template", "demo", str(CHART), "-n", "other", "-f", str(CI_DIR / "03-minimal.yaml")
                    ).returncode == 0


def test_values_made_for_another_chart_version_are_refused(helm: str) -> None:
    """Values name the chart version they were made for, stackgen's own (#36); another version of the chart refuses
    them with the two versions and both ways out. Values that name none, as a hand-written file, go to any."""
    minimal = ("-f", str(CI_DIR / "03-minimal.yaml"))
    assert run_helm(helm, "template", "demo", str(CHART), *minimal, "--set", f"chartVersion={VERSION}").returncode == 0
    refused = run_helm(helm, "template", "demo", str(CHART), *minimal, "--set", "chartVersion=0.0.9")
    assert refused.returncode != 0
    assert (f"these values were rendered by stackgen 0.0.9, for version 0.0.9 of this chart, not {VERSION}: render "
            f"them again with stackgen {VERSION} (pip install stackgen=={VERSION}), or install version 0.0.9 of the "
            "chart") in refused.stderr, refused.stderr
    assert yaml.safe_load((REPO / "manifests" / "kind-cpu" / "values.yaml").read_text())["chartVersion"] == VERSION
