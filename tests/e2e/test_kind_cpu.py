"""The built-in kind-cpu example on a real kind cluster: render, install, wait for every rollout,
`stackgen verify` (every model answers, both AutoGen configs load and reply), `helm test`, upgrade
with one more model and verify again, uninstall and check the namespace is empty.

Nothing is loaded into the nodes by hand: they pull the images the rendered values name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import specs
from .kube import Kube, say
from .stack import Stack

pytestmark = pytest.mark.kind

EXAMPLE = "kind-cpu"
ADDED_MODEL = "ollama-extra"


def _spec_for_this_machine(stackgen: str, vllm_enabled: bool) -> specs.Spec:
    spec = specs.example_spec(stackgen, EXAMPLE)
    if not vllm_enabled:
        spec, dropped = specs.drop_engine(spec, "vllm")
        say(f"without AVX-512 the vLLM CPU image cannot run: rendering {EXAMPLE} without {dropped}")
    return spec


def test_kind_cpu_install_verify_upgrade_uninstall(
    kube: Kube, stackgen: str, vllm_enabled: bool, tmp_path: Path
) -> None:
    spec = _spec_for_this_machine(stackgen, vllm_enabled)
    spec_file = specs.write_spec(spec, tmp_path / "spec.yaml")
    out = specs.render(stackgen, spec_file, tmp_path / "out")
    values = specs.load_yaml(out / "values.yaml")
    manifests = specs.manifest_objects(out)
    fullname = values.get("fullnameOverride") or EXAMPLE
    gateway_svc, gateway_port = f"{fullname}-gateway", int(values["gateway"].get("port", 4000))

    stack = Stack(kube=kube, stackgen=stackgen, release=fullname,
                  namespace=specs.namespace_of(spec, manifests))
    try:
        secrets = stack.prepare(values)

        stack.helm("install", out / "values.yaml")
        first = stack.wait(out)
        stack.verify(spec_file, out, gateway_svc, gateway_port)
        stack.helm_test()

        # Upgrade: the same stack plus one model (a copy of the Ollama model under a new name).
        source = specs.first_model_with_engine(spec, "ollama")
        grown = specs.add_model_copy(spec, source, ADDED_MODEL)
        grown_file = specs.write_spec(grown, tmp_path / "spec-upgrade.yaml")
        out2 = specs.render(stackgen, grown_file, tmp_path / "out-upgrade")
        stack.helm("upgrade", out2 / "values.yaml")
        second = stack.wait(out2)
        assert f"{fullname}-{ADDED_MODEL}" in set(second) - set(first), (
            f"the upgrade did not add a Deployment for {ADDED_MODEL}: {second}")
        # The gateway pods rolled (config checksum), so this is a new port-forward to new pods.
        stack.verify(grown_file, out2, gateway_svc, gateway_port)

        stack.uninstall_leaves_nothing(keep=secrets)
    finally:
        stack.teardown()
