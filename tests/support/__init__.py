"""What the test tiers share instead of each keeping a copy: the spec pieces they start from."""

from __future__ import annotations

# The vLLM model every tier that starts vLLM serves: the tiny Qwen2 of tests/engines/tinyqwen.py, under
# Qwen2.5-0.5B's id, whose catalog facts size it. A models[] item; a spec adds its own fields after it.
VLLM_CODER = """\
  - name: coder
    engine: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    profile: cpu
    maxModelLen: 4096
"""
# The profile it runs on.
CPU_PROFILE = '  cpu: {cpu: "2", memory: 6Gi}\n'
