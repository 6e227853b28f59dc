"""Routing across a model's replicas: what stands between the gateway and a model's pods.

A Kubernetes Service spreads an agent's turns over the replicas at random, so each replica's prefix cache
holds only part of each conversation. A model served by more than one replica (or autoscaled) is therefore
put behind a router, vLLM's own (`vllm-router`, versions.yaml), that discovers the model's pods through the
API server and keeps each conversation on one replica. The gateway calls the router; the router calls the
pods. This module holds every decision about it; the chart's `model-router.yaml` maps them to objects.

The key a conversation is routed on: the `x-session-id` header, which every client stackgen writes sends
(one id per client object, see stackgen.agents) and which the gateway forwards for routed models. (The
OpenAI `user` field, which vllm-router also reads, does not get through LiteLLM 1.108.7 to vLLM.) The default,
`consistent_hash`, is chosen by measurement: with
those ids it holds the prefix-cache hit rate at the workload's ideal (tests/engines/test_routing.py,
bench/routing.py), and its choice depends only on the id and the set of ready pods, so any number of router
replicas agree. vllm-router's `cache_aware`, which could route a request without an id on its prompt, balanced
rather than kept prefixes when measured, and is not offered (docs/operations.md, "Routing across replicas").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

VERSION = "0.1.17"  # versions.yaml: vllm-router (the release the tests run; the chart's image is `latest`)

# The policies stackgen offers, by what they do for agents:
#   consistent_hash      a conversation's key picks its replica; new replicas take a share of new keys only
#   sticky_least_loaded  a new conversation goes to the least loaded replica and stays there
#   round_robin          no affinity (a baseline for measurements)
#   service              no router: the Service's random spread
Policy = Literal["consistent_hash", "sticky_least_loaded", "round_robin", "service"]
POLICIES: tuple[str, ...] = get_args(Policy)
DEFAULT_POLICY = "consistent_hash"
NO_ROUTER = "service"

# The header a client sends its conversation id in; vllm-router reads it before anything else.
SESSION_HEADER = "x-session-id"

PORT = 8000  # the router's serving port (also its Service's target)
METRICS_PORT = 29000  # its Prometheus endpoint
# What one router pod asks for: it relays bytes and hashes a header, so a fraction of a core is plenty
# for hundreds of requests per second (bench/RESULTS.md); its memory is its connection pool and metrics.
CPU = "100m"
MEMORY = "256Mi"
# Policies whose choice depends only on the request and the set of ready pods: any number of router replicas
# route a conversation alike, so two run (one survives a node drain). The others keep their choices in the
# router's memory, so one runs and a restart only costs each conversation one cache miss.
STATELESS = frozenset({"consistent_hash", "round_robin"})


@dataclass(frozen=True)
class RouterPlan:
    """The router in front of one model's replicas."""

    policy: str
    service: str  # its Service's name, which the gateway calls
    component: str  # the chart component of its objects (<model>-router)
    replicas: int
    cpu: str
    memory: str

    @property
    def url(self) -> str:
        return f"http://{self.service}/v1"


def component(model: str) -> str:
    return f"{model}-router"


def needs_router(replicas: int, autoscaled: bool) -> bool:
    """One replica has nothing to choose between; several, or an autoscaler's several, do."""
    return autoscaled or replicas > 1


def router(fullname: str, model: str, policy: str) -> RouterPlan:
    name = component(model)
    return RouterPlan(policy=policy, service=f"{fullname}-{name}", component=name,
                      replicas=2 if policy in STATELESS else 1, cpu=CPU, memory=MEMORY)
