"""OUT/agents/: a client module per agent framework, selected with --frameworks; the modules import and build
their clients as written, with the key from the environment only. The real round trips are in
tests/engines/test_frameworks.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackgen import agents, examples
from stackgen.agents import autogen
from stackgen.agents.base import load_module
from stackgen.cli import cli
from stackgen.plan import plan
from stackgen.render import render_files, write_tree
from tests.support.paths import REPO

URL = "http://127.0.0.1:4000/v1"


def rendered(name: str = "hybrid", frameworks: tuple[str, ...] = agents.NAMES) -> dict[str, str]:
    return render_files(examples.resolve(name).stack, URL, with_manifests=False, frameworks=frameworks)


def test_every_framework_is_rendered_by_default() -> None:
    files = rendered()
    for framework in agents.MODULES.values():
        assert framework.path in files
    assert {"agents/README.md", "autogen/OAI_CONFIG_LIST", "autogen/model_clients.json", "autogen/README.md"} <= set(files)


def test_selection_writes_only_the_selected_frameworks_and_leaves_the_rest_byte_identical() -> None:
    everything = rendered()
    only = rendered(frameworks=("langchain",))
    assert set(only) == {"values.yaml", "litellm/config.yaml", "agents/README.md", "agents/langchain_models.py"}
    assert {rel: everything[rel] for rel in only if rel != "agents/README.md"} == {
        rel: text for rel, text in only.items() if rel != "agents/README.md"}
    classic = rendered(frameworks=("ag2-classic",))
    assert "autogen/model_clients.json" not in classic and "agents/README.md" not in classic
    assert classic["autogen/OAI_CONFIG_LIST"] == everything["autogen/OAI_CONFIG_LIST"]
    # Its README is the full one without the unselected file's section.
    head, sections = everything["autogen/README.md"].split("\n## ", 1)
    assert classic["autogen/README.md"] == head + "\n## " + sections.split("\n## ")[0]
    assert "model_clients.json" not in classic["autogen/README.md"]


def test_rendering_is_deterministic() -> None:
    assert rendered("gpu-fleet") == rendered("gpu-fleet")


@pytest.mark.parametrize("text, want", [(None, agents.NAMES), ("all", agents.NAMES),
                                        ("langchain, ag2", ("ag2", "langchain"))])
def test_parse_keeps_the_registry_order(text: str | None, want: tuple[str, ...]) -> None:
    assert agents.parse(text) == want


def test_cli_refuses_an_unknown_framework(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "kind-cpu", "--no-manifests", "-o", str(tmp_path / "out"),
                                      "--frameworks", "ag2,crewai"])
    assert result.exit_code == 2
    assert "--frameworks: unknown framework 'crewai' (known: ag2-classic, autogen-0.4, ag2," in result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["verify", "kind-cpu", "--local", "--frameworks", "crewai"])
    assert result.exit_code == 2 and "unknown framework 'crewai'" in result.output


def test_cli_writes_the_selected_frameworks(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["render", "kind-cpu", "--no-manifests", "-o", str(out),
                                      "--frameworks", "openai-agents,autogen-0.4"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "agents").iterdir()) == ["README.md", "openai_agents_models.py"]
    assert sorted(p.name for p in (out / "autogen").iterdir()) == ["README.md", "model_clients.json"]


@pytest.mark.parametrize("name", list(agents.MODULES))
def test_generated_module_builds_a_client_per_model_with_the_key_from_the_environment(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = examples.resolve("hybrid").stack
    env = stack.autogen.apiKeyEnv
    write_tree(tmp_path / "out", rendered())
    framework = agents.MODULES[name]
    text = (tmp_path / "out" / framework.path).read_text()
    assert "sk-" not in text and f"API_KEY_ENV = {env!r}" in text and f"GATEWAY_URL = {URL!r}" in text
    module = load_module(tmp_path / "out" / framework.path)
    factory = getattr(module, framework.function.split("(")[0])
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(KeyError):
        factory(plan(stack).models[0].name)  # no key in the environment: refused, nothing guessed
    monkeypatch.setenv(env, "sk-from-env")
    for m in plan(stack).models:
        assert factory(m.name) is not None
    with pytest.raises(KeyError, match="not a model of stack hybrid"):
        factory("nope")
    # Code that holds the key hands it over without the environment, as `stackgen verify` does.
    monkeypatch.delenv(env)
    given = framework.load(tmp_path / "out", agents.Client("sk-handed-over"))
    assert getattr(given, framework.function.split("(")[0])(plan(stack).models[0].name) is not None


def test_capabilities_are_in_each_frameworks_terms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = examples.resolve("hybrid").stack
    monkeypatch.setenv(stack.autogen.apiKeyEnv, "sk-from-env")
    write_tree(tmp_path / "out", rendered())
    resolved = plan(stack)
    langchain = load_module(tmp_path / "out" / agents.MODULES["langchain"].path)
    framework = load_module(tmp_path / "out" / agents.MODULES["agent-framework"].path)
    for m in resolved.models:
        profile = langchain.chat_model(m.name).profile
        assert profile["tool_calling"] == m.capabilities.tools
        assert profile["image_inputs"] == m.capabilities.vision
        assert profile.get("max_input_tokens") == m.context_length
        props = framework.client(m.name).additional_properties
        assert props["tools"] == m.capabilities.tools and props["context_length"] == m.context_length


def test_agents_readme_shows_every_framework() -> None:
    readme = rendered()["agents/README.md"]
    for framework in agents.MODULES.values():
        assert f"from {framework.module} import" in readme and framework.requirement in readme
    assert json.dumps(URL)[1:-1] in readme


def test_pins_match_the_extras() -> None:
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    pinned = sorted(req for f in agents.MODULES.values() for req in f.requirement.split())
    assert sorted(extras["frameworks"]) == pinned
    # The AutoGen README's install lines pin what the autogen extra pins. The classic one adds the `openai`
    # extra, which the project's environment cannot: it wants openai<3, and ag2[openai] wants >=3.27.
    assert {autogen.CLASSIC_REQUIREMENT.replace("[openai]", ""), autogen.COMPONENT_REQUIREMENT} <= set(extras["autogen"])
    assert any("frameworks" in req for req in extras["test"] if req.startswith("stackgen["))
