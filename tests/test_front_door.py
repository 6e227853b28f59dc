"""The front door under generated input: whatever a user hands `stackgen validate`, it ends in exit 0, or in
exit 2 with each line `FILE[:LINE]: [PATH: ]MESSAGE[ (FIX)]`; never a traceback. What it accepts renders,
passes `helm lint --strict` on the chart and loads in the real LiteLLM proxy's config loader.

Inputs come from hypothesis, derandomised so CI sees the same cases every run, and bounded in count:
raw bytes for the loader, and specs near the edges of every field (a valid stack with every engine, its
leaves replaced by edge values, keys dropped or misspelt). Cases that once broke the tool are pinned as
`@example`s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stackgen.cli import cli
from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files
from tests.support.edges import BASE, EDGES, PATHS, mutate
from tests.support.paths import REPO

CASES = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# Every refusal line: the file, perhaps a line, perhaps a field path, the message, perhaps a fix.
LINE = re.compile(r"^(?P<file>[^:]+):(?:(?P<line>\d+):)? \S.*$")

def assert_clean_exit(result: Any, source: Path) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = [ln for ln in result.output.splitlines() if ln]
        assert lines, "refused without a reason"
        for ln in lines:
            found = LINE.match(ln)
            assert found and found["file"] == str(source), ln


@CASES
@given(raw=st.binary(max_size=600))
@example(raw=b"name: x\nmodels: [\xe9]\n")  # not UTF-8: once a UnicodeDecodeError traceback
@example(raw=b"\xff\xfe")
@example(raw=b"a: &a [*a]")  # a recursive alias
def test_raw_bytes_never_crash_the_loader(raw: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("raw") / "stack.yaml"
    path.write_bytes(raw)
    assert_clean_exit(CliRunner().invoke(cli, ["validate", str(path)]), path)


ACCEPTED: list[dict[str, Any]] = []  # specs validate accepted, for the installability checks below


@CASES
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(EDGES),
                                st.sampled_from(["set", "set", "drop", "misspell"])), max_size=3))
@example(edits=[(("models", 1, "model"), "a b;c", "set")])  # an Ollama tag with a space and ';'
@example(edits=[(("models", 4, "provider"), "together_ai", "set")])  # LiteLLM's name for Together
@example(edits=[(("models", 0, "engine"), "llama.cpp", "set")])
@example(edits=[(("profiles", "l4", "gpu", "resource"), "nvidia", "set")])
@example(edits=[(("models", 1, "keepAlive"), "forever", "set")])
@example(edits=[(("gateway", "image"), "ghcr.io/Acme/Server:1", "set")])
@example(edits=[(("profiles", "l4", "gpu", "memoryGiB"), 1e308, "set")])  # an infinite fit check: once a traceback
@example(edits=[(("models",), True, "set"), (("models", 4), " ", "set")])
def test_near_valid_specs_are_accepted_or_refused_with_a_reason(edits: list[tuple[tuple[Any, ...], Any, str]],
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    spec = mutate(edits)
    path = tmp_path_factory.mktemp("spec") / "stack.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert_clean_exit(result, path)
    for line in result.output.splitlines() if result.exit_code == 2 else []:
        assert line.endswith(")"), f"a refusal without its fix: {line}"
    if result.exit_code == 0:
        # Accepted means it renders (the library, without helm) and gets the installability checks.
        rendered = render_files(load_text(path.read_text()), with_manifests=False)
        assert "values.yaml" in rendered
        if len(ACCEPTED) < 12 and spec not in ACCEPTED:
            ACCEPTED.append(spec)


def test_what_validate_accepts_lints_and_loads_in_litellm(tmp_path: Path) -> None:
    """Accepted specs (the ones the property test kept, and the base): the chart lints them strictly and the
    real LiteLLM loads their gateway config. Any failure is a validation gap to close in the spec model."""
    specs = [BASE, *ACCEPTED]  # the property test keeps up to 12 (run alone, only the base is checked)
    configs = []
    for i, spec in enumerate(specs):
        try:
            files = render_files(plan(load_text(yaml.safe_dump(spec))).stack, with_manifests=False)
        except StackgenError as exc:  # pragma: no cover - the property test accepted it
            raise AssertionError(f"accepted spec {i} now refused: {exc}") from exc
        values = tmp_path / f"values-{i}.yaml"
        values.write_text(files["values.yaml"])
        lint = subprocess.run(["helm", "lint", "--strict", str(REPO / "charts" / "inference-stack"), "-f", str(values)],
                              capture_output=True, text=True, check=False)
        assert lint.returncode == 0, f"spec {i}:\n{yaml.safe_dump(spec)}\n{lint.stdout}{lint.stderr}"
        config = tmp_path / f"litellm-{i}.yaml"
        config.write_text(files["litellm/config.yaml"])
        configs.append(str(config))
    loader = """
import asyncio, json, sys
from litellm.proxy.proxy_server import ProxyConfig
for path in sys.argv[1:]:
    router = asyncio.run(ProxyConfig().load_config(router=None, config_file_path=path))[0]
    print(json.dumps([d["model_name"] for d in router.model_list]))
"""
    # The proxy's own loader, offline: no cost-map download, no telemetry; keys are references it resolves.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY_DISABLED": "true",
           "LITELLM_MASTER_KEY": "sk-test", "MISTRAL_API_KEY": "x", "CLOUD_API_KEY": "x"}
    done = subprocess.run([sys.executable, "-c", loader, *configs], capture_output=True, text=True, env=env,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    assert [sorted(names) for names in loaded] == [sorted(m["name"] for m in s["models"]) for s in specs]
