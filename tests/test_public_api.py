"""The public surface is `stackgen.__all__`; this list changes only on purpose."""

from __future__ import annotations

import pytest

import stackgen

EXPECTED = ["Plan", "Problem", "Stack", "StackgenError", "load_spec", "load_text", "plan", "render_files", "write_tree"]


def test_exported_names_do_not_drift() -> None:
    assert sorted(stackgen.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(stackgen, name) is not None, name


def test_library_use_without_the_cli() -> None:
    stack = stackgen.load_text("name: demo\nmodels:\n  - {name: desk, engine: external, baseUrl: 'http://127.0.0.1:1234/v1'}\n")
    resolved = stackgen.plan(stack)
    files = stackgen.render_files(stack, with_manifests=False)
    assert resolved.models[0].name == "desk"
    assert '"model": "desk"' in files["autogen/OAI_CONFIG_LIST"]



@pytest.mark.parametrize("empty", [None, ""])
def test_load_spec_has_no_silent_default(empty: str | None) -> None:
    """The CLI's commands that document a default pass it; the library refuses an empty SPEC."""
    with pytest.raises(stackgen.StackgenError, match="no spec was given.*kind-cpu"):
        stackgen.load_spec(empty)  # type: ignore[arg-type]
