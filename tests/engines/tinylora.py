"""LoRA adapters for the tiny Qwen2 (tinyqwen.py), made with peft the way a team makes theirs, whose effect a
test can predict: each swaps one letter of every reply for another.

Usage: python tests/engines/tinylora.py BASE_DIR OUT_DIR FROM TO  (a Python with torch, transformers and peft:
the vLLM virtualenv with peft on PYTHONPATH, see engines.py). Deterministic: the same files every time.

How. The tiny model copies its scripted reply token by token: an attention head reads the token to copy, its
value carries the token's one-hot slot, and `o_proj` writes that slot into the residual stream, where the
output head turns it into the next token (tinyqwen.py). A rank-1 LoRA on `o_proj` moves one slot to another:
the copied FROM comes out as TO. The greeting "Hi, tinyqwen." holds a `q` and a `w`, and nothing a tool call
spells does (`<tool_call>`, `"name"`, `"arguments"`, `get_time`, `city`, `test`), so an adapter swapping
`q` or `w` changes the greeting and leaves tool calls whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

RANK = 8  # peft's default; the delta itself is rank 1


def build_adapter(base: Path, out: Path, source: str, target: str) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(Path(__file__).parent))
    import tinyqwen

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    adapted = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=RANK, target_modules=["o_proj"], lora_dropout=0.0))
    slots = tinyqwen.token_slots()
    src, dst = slots[tinyqwen.token_id(source)], slots[tinyqwen.token_id(target)]
    # The head that reads the source slot, and its output column (the layout of tinyqwen._weights).
    kv, j = divmod(src, tinyqwen.HEAD_DIM)
    column = kv * (tinyqwen.N_HEADS // tinyqwen.N_KV_HEADS) * tinyqwen.HEAD_DIM + j
    o_proj = adapted.base_model.model.model.layers[0].self_attn.o_proj
    with torch.no_grad():
        a, b = o_proj.lora_A["default"].weight, o_proj.lora_B["default"].weight
        a.zero_()
        b.zero_()
        a[0, column] = 1.0
        b[tinyqwen.COPY_OFFSET + src, 0] = -1.0  # the copied slot goes ...
        b[tinyqwen.COPY_OFFSET + dst, 0] = 1.0  # ... and the target's comes instead
    adapted.save_pretrained(str(out))
    return out


if __name__ == "__main__":
    build_adapter(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
