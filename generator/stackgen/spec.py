"""The stack spec: the one YAML file a platform team writes, as pydantic models.

Field names are camelCase, as in Kubernetes and Helm values. Every model forbids unknown keys so a typo is
an error at its path, never a silently ignored setting. `Stack.model_json_schema()` is the schema editors use.
The shared parts are in specbase.py; each engine's model fields are in its module under engines/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field

from . import engines
from .engines.custom import CustomModel
from .engines.external import ExternalModel
from .engines.llamacpp import LlamacppModel
from .engines.ollama import OllamaModel
from .engines.vllm import VllmModel
from .specbase import DNS_LABEL, AutoGen, Base, Gateway, Mirror, ModelCommon, Monitoring, Profile, Router, SecretRef

if TYPE_CHECKING:
    # For type checkers: every engine's model is a ModelCommon. At run time it is the discriminated union
    # of every engine's spec model, built from the registry (engines.Model).
    Model = ModelCommon
else:
    Model = engines.Model

__all__ = ["CustomModel", "ExternalModel", "LlamacppModel", "OllamaModel", "Profile", "SecretRef", "Stack",
           "VllmModel"]


class Stack(Base):
    """One inference stack: a gateway, model servers and external routes."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"title": "stackgen stack spec"})

    name: str = Field(pattern=DNS_LABEL, max_length=30, description="Prefixes every object; a DNS-1035 label.")
    namespace: str = Field(default="default", pattern=DNS_LABEL, max_length=63)
    gateway: Gateway = Field(default_factory=Gateway)
    autogen: AutoGen = Field(default_factory=AutoGen)
    monitoring: Monitoring = Field(default_factory=Monitoring,
                                   description="Metrics, alerts and a dashboard (Prometheus Operator).")
    router: Router = Field(default_factory=Router, description="The router in front of every model with several replicas.")
    mirror: Mirror | None = Field(default=None, description="The cluster's own registry and Hugging Face mirror, for a "
                                  "cluster with no route out (docs/operations.md, air-gapped clusters).")
    profiles: dict[str, Profile] = Field(default_factory=dict)
    models: list[Model] = Field(min_length=1)
