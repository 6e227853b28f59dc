"""Every engine stackgen knows, one module each; the stages reach them only through `engine_of`.

The order of ENGINES is the order the docs and error messages list them in.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from ..specbase import ModelCommon
from . import custom, external, llamacpp, ollama, vllm
from .base import Engine, ServedEngine, Server, accelerator

ENGINES: dict[str, Engine] = {e.name: e for e in (vllm.ENGINE, ollama.ENGINE, llamacpp.ENGINE, custom.ENGINE,
                                                   external.ENGINE)}
SERVED: dict[str, ServedEngine] = {name: e for name, e in ENGINES.items() if isinstance(e, ServedEngine)}

# models[] in the spec: one pydantic model per engine, told apart by `engine`.
Model = Annotated[Union[tuple(e.spec for e in ENGINES.values())], Field(discriminator="engine")]  # type: ignore[valid-type]


def engine_of(model: ModelCommon) -> Engine:
    return ENGINES[model.engine]  # type: ignore[attr-defined]


__all__ = ["ENGINES", "SERVED", "Engine", "Model", "ServedEngine", "Server", "accelerator", "engine_of"]
