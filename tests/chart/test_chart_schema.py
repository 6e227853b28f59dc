"""values.schema.json: Helm itself rejects bad values, naming the field; the schema is strict and documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .chartlib import CHART, CI_DIR, SCHEMA, template_error, walk

MINIMAL = "03-minimal.yaml"

# Objects whose keys are the user's (label names, env names, Kubernetes structures passed through).
FREE_FORM = {
    "global",
    "commonLabels",
    "gateway.secretEnv",
    "gateway.env",
    "gateway.config",
    "gateway.ingress.annotations",
    "gateway.podAnnotations",
    "gateway.nodeSelector",
    "gateway.affinity",
    "gateway.resources.requests",
    "gateway.resources.limits",
    "autogen.modelClients",
    "models",
    "models.*.env",
    "models.*.secretEnv",
    "models.*.resources.requests",
    "models.*.resources.limits",
    "models.*.nodeSelector",
    "models.*.affinity",
    "models.*.podAnnotations",
}


def test_every_key_has_a_description() -> None:
    missing = [path for path, written, _ in walk(SCHEMA) if not written.get("description")]
    assert not missing, f"keys without description: {missing}"


def test_every_object_is_closed_unless_free_form() -> None:
    open_objects = [
        path
        for path, _, schema in walk(SCHEMA)
        if schema.get("type") == "object" and schema.get("additionalProperties", True) is True
    ]
    assert SCHEMA["additionalProperties"] is False
    assert set(open_objects) <= FREE_FORM, f"objects accepting unknown keys: {set(open_objects) - FREE_FORM}"


def test_values_yaml_and_scenarios_satisfy_the_schema() -> None:
    # Defaults merged with each scenario, like Helm does for maps (scenario keys win).
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in sorted(CI_DIR.glob("*.yaml")):
        merged = _merge(defaults, yaml.safe_load(path.read_text()))
        jsonschema.Draft7Validator(SCHEMA).validate(merged)


def test_defaults_alone_are_rejected_for_the_missing_master_key(helm: str) -> None:
    # values.yaml leaves gateway.masterKey.secretName empty on purpose: installing needs a Secret.
    assert "secretName" in template_error(helm)


BAD_VALUES = [
    pytest.param(["gateway.replica=2"], "replica", id="typo-key"),
    pytest.param(["models.qwen.replicas=two"], "replicas", id="wrong-type"),
    pytest.param(["models.qwen.replicas=-1"], "replicas", id="negative-replicas"),
    pytest.param(["gateway.masterKey.secretName="], "secretName", id="empty-master-key-secret"),
    pytest.param(["gateway.masterKey.secretName=null"], "secretName", id="missing-master-key-secret"),
    pytest.param(["models.Bad_Name.engine=vllm", "models.Bad_Name.model=x"], "Bad_Name", id="bad-model-key"),
    pytest.param(["models.gateway.engine=vllm", "models.gateway.model=x"], "gateway", id="reserved-model-key"),
    pytest.param(["models.qwen.engine=no-such-engine"], "engine", id="unknown-engine"),
    pytest.param(["models.qwen.gpu.count=1.5"], "count", id="fractional-gpus"),
    pytest.param(["models.qwen.vllm.gpuMemoryUtilization=1.5"], "gpuMemoryUtilization", id="utilisation-over-1"),
    pytest.param(["models.qwen.cache.type=hostPath"], "type", id="unknown-cache-type"),
    pytest.param(["gateway.port=70000"], "port", id="port-out-of-range"),
]


@pytest.mark.parametrize(("sets", "field"), BAD_VALUES)
def test_schema_rejects(helm: str, sets: list[str], field: str) -> None:
    stderr = template_error(helm, (MINIMAL,), tuple(sets))
    assert "schema" in stderr, stderr
    assert field in stderr, stderr


def test_schema_rejects_model_without_engine(helm: str, tmp_path: Path) -> None:
    values = yaml.safe_load((CI_DIR / MINIMAL).read_text())
    values["models"]["noengine"] = {"model": "Qwen/Qwen2.5-0.5B-Instruct"}
    path = tmp_path / "noengine.yaml"
    path.write_text(yaml.safe_dump(values))
    stderr = template_error(helm, (str(path),))
    assert "engine" in stderr and "noengine" in stderr, stderr




def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return override
