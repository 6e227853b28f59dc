"""No secret reaches a rendered file: every file of every example (manifests included, by the real helm)
is rendered while the keys the local stacks run with are in the environment, then searched for them
and for anything shaped like a credential."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from stackgen.gateway import MASTER_KEY_ENV
from stackgen.render import render_files

from .conftest import EXAMPLES, ExamplePool

# Shapes of credentials: OpenAI/LiteLLM-style keys, Hugging Face tokens, PEM keys, bearer headers (a token on the
# same line: a ServiceMonitor's `authorization: {type: Bearer, credentials: {name, key}}` names a Secret).
SECRET_SHAPES = [re.compile(p) for p in (r"\bsk-[A-Za-z0-9_-]{8,}", r"hf_[A-Za-z0-9]{20,}",
                                         r"-----BEGIN [A-Z ]*PRIVATE KEY-----", r"(?i)bearer[ \t]+[A-Za-z0-9._-]{8,}")]
SECRET_NAMES = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


@pytest.mark.parametrize("example", EXAMPLES)
def test_no_secret_in_any_rendered_file(example_stacks: ExamplePool, example: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    local = example_stacks.get(example)
    used = {MASTER_KEY_ENV: local.gateway.master_key, local.gateway_key_env: local.gateway.master_key,
            **local.provider_keys}
    for name, value in used.items():
        monkeypatch.setenv(name, value)

    files = render_files(local.plan.stack, gateway_url=local.gateway.api_base)

    assert any(rel.startswith("manifests/") for rel in files)
    for rel, text in files.items():
        for value in used.values():
            assert value not in text, f"{rel} contains a key the stack runs with"
        for shape in SECRET_SHAPES:
            assert not shape.search(text), f"{rel} has something shaped like a credential: {shape.pattern}"
    # Keys are references: the gateway config names variables, the pods fill them from Secrets.
    config = yaml.safe_load(files["litellm/config.yaml"])
    assert config["general_settings"]["master_key"] == f"os.environ/{MASTER_KEY_ENV}"
    for entry in config["model_list"]:
        key = entry["litellm_params"]["api_key"]
        assert key == "none" or re.fullmatch(r"os\.environ/[A-Z][A-Z0-9_]*", key), entry
    docs = [yaml.safe_load(text) for rel, text in files.items() if rel.startswith("manifests/")]
    assert not [d for d in docs if d.get("kind") == "Secret"], "the chart must not create Secrets"
    for doc in docs:
        for container in _containers(doc):
            for var in container.get("env", []):
                if SECRET_NAMES.search(var["name"]):
                    assert "value" not in var and "secretKeyRef" in var.get("valueFrom", {}), (doc["kind"], var)
