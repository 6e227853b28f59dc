"""The chart's engine contract is written from the engine modules (stackgen.chartgen, `make chart`): the
values schema's engine sections and enum, values.yaml's engine images and the README's rows of both. A hand
edit of any of them, or an engine module changed without `make chart`, fails here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from stackgen import chartgen, examples
from stackgen.engines import SERVED
from stackgen.plan import plan
from tests.support.paths import CHART


def test_the_chart_holds_what_the_engine_modules_generate() -> None:
    stale = [str(path.relative_to(CHART)) for path, text in chartgen.generated(CHART).items() if path.read_text() != text]
    assert not stale, f"{', '.join(stale)} differ from the engine modules: run `make chart` and review the diff"


def test_generation_is_idempotent() -> None:
    for path, text in chartgen.generated(CHART).items():
        assert path.read_text() == text  # a second run writes the same bytes (the test above passed)


@pytest.mark.parametrize("edit", ["schema-bound", "schema-enum", "values-tag", "readme-row"])
def test_a_hand_edit_of_the_engine_sections_is_caught(tmp_path: Path, edit: str) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    schema_path, values_path, readme_path = chart / "values.schema.json", chart / "values.yaml", chart / "README.md"
    if edit.startswith("schema"):
        schema = json.loads(schema_path.read_text())
        model = schema["definitions"]["model"]["properties"]
        if edit == "schema-bound":
            model["vllm"]["properties"]["maxModelLen"]["minimum"] = 128
        else:
            model["engine"]["enum"].remove("custom")
        schema_path.write_text(chartgen.format_json(schema) + "\n")
        edited = schema_path
    elif edit == "values-tag":
        text = values_path.read_text()
        values_path.write_text(text.replace("repository: ollama/ollama", "repository: ollama/ollama-mirror", 1))
        edited = values_path
    else:
        text = readme_path.read_text()
        readme_path.write_text(text.replace("| `models.<name>.vllm.dtype` |", "| `models.<name>.vllm.dtype` | `auto` |", 1))
        edited = readme_path
    assert edited.read_text() != (CHART / edited.name).read_text()
    assert chartgen.generated(chart)[edited] == (CHART / edited.name).read_text()


def test_every_engine_value_the_plan_resolves_fits_its_generated_section() -> None:
    """The values the generator writes are instances of the models the schema is generated from."""
    seen = set()
    for name in examples.names():
        for m in plan(examples.resolve(name).stack).served:
            assert isinstance(m.settings, SERVED[m.engine_name].values)
            seen.add(m.engine_name)
    assert seen >= {"vllm", "ollama"}


def test_a_removed_engine_leaves_no_keys_behind() -> None:
    current = json.loads((CHART / "values.schema.json").read_text())
    fewer = {name: e for name, e in SERVED.items() if name != "llamacpp"}
    schema = chartgen.schema(current, fewer)
    assert "llamacpp" not in schema["definitions"]["model"]["properties"]
    assert "llamacpp" not in schema["properties"]["images"]["properties"]
    assert schema["definitions"]["model"]["properties"]["engine"]["enum"] == list(fewer)
    old = chartgen.old_engines(current)
    values = chartgen.values_yaml((CHART / "values.yaml").read_text(), old, fewer)
    readme = chartgen.readme((CHART / "README.md").read_text(), old, fewer)
    chart_images = set(yaml.safe_load((CHART / "values.yaml").read_text())["images"])
    assert set(yaml.safe_load(values)["images"]) == chart_images - {"llamacpp"}
    assert "| `models.<name>.llamacpp" not in readme and "| `images.llamacpp" not in readme
    assert "| `models.<name>.vllm.maxModelLen` |" in readme
