"""Every engine stackgen knows, one module each; the stages reach them only through `engine_of`.

The order of ENGINES is the order the docs and error messages list them in.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from ..specbase import ModelCommon
from . import custom, external, llamacpp, ollama, vllm
from .base import Capabilities, Engine, EngineValues, ServedEngine, Server, accelerator

ENGINES: dict[str, Engine[Any]] = {e.name: e for e in (vllm.ENGINE, ollama.ENGINE, llamacpp.ENGINE, custom.ENGINE,
                                                        external.ENGINE)}
SERVED: dict[str, ServedEngine[Any]] = {name: e for name, e in ENGINES.items() if isinstance(e, ServedEngine)}

# models[] in the spec: one pydantic model per engine, told apart by `engine`. The union is built from ENGINES
# at import time, which no static checker can follow.
Model = Annotated[Union[tuple(e.spec for e in ENGINES.values())], Field(discriminator="engine")]  # type: ignore[valid-type]  # noqa: UP007 - a union of a tuple built at run time has no `|` form


def engine_of(model: ModelCommon) -> Engine[Any]:
    """The engine of a model of the spec: the one its `engine` field (the union's discriminator) names."""
    name: str = getattr(model, "engine")  # noqa: B009 - each engine's own spec model declares it, not ModelCommon
    return ENGINES[name]


__all__ = ["ENGINES", "SERVED", "Capabilities", "Engine", "EngineValues", "Model", "ServedEngine", "Server",
           "accelerator", "engine_of"]
