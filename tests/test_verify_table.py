"""`stackgen verify`'s table: one line per check, whatever a reply or an error spans (a model's reply is free
text: the tiny Qwen2's tool call comes back as `<tool_call>` and JSON over several lines)."""

from __future__ import annotations

from stackgen.verify import Check, table


def test_every_check_is_one_line_and_keeps_its_words() -> None:
    checks = [Check("coder", "vllm", "autogen-0.2", True, 0.25, '<tool_call>\n{"name": "get_time"}\n</tool_call>'),
              Check("coder", "vllm", "autogen-0.4", False, None, "HTTP 500:\n  upstream\tfailed")]
    lines = table(checks).splitlines()
    assert len(lines) == 1 + len(checks) + 1, lines
    assert lines[1].endswith('<tool_call> {"name": "get_time"} </tool_call>')
    assert lines[2].split()[:4] == ["coder", "vllm", "autogen-0.4", "FAIL"]
    assert lines[2].endswith("HTTP 500: upstream failed")
    assert lines[-1] == "verify: 1 of 2 checks ok"
