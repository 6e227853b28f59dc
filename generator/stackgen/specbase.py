"""The parts of the stack spec every engine shares: secrets, profiles, the gateway, and the fields common to
all models and to all in-cluster models. Each engine's own model fields live in its module under engines/;
spec.py puts them together into the Stack.

Field names are camelCase, as in Kubernetes and Helm values. Every model forbids unknown keys so a typo is
an error at its path, never a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from . import grammars
from .routing import Policy as RoutingPolicy

# Kubernetes Service names are DNS-1035 labels: lower case, digits and '-', starting with a letter.
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = grammars.DNS_SUBDOMAIN
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
EXTENDED_RESOURCE = r"^[a-z0-9.-]+/[a-zA-Z0-9._-]+$"
# A MIG slice's resource name carries its memory: nvidia.com/mig-1g.10gb is a slice with 10 GB.
MIG_RESOURCE = re.compile(r"nvidia\.com/mig-\d+g\.(\d+)gb")
HTTP_URL = r"^https?://\S+$"
URL_PATH = r"^/\S*$"
GGUF_FILE = r"^\S+\.gguf$"
HOST_PORT = r"^[a-z0-9.-]+:[0-9]{1,5}$"
PARSER_NAME = r"^[a-z0-9_]+$"
REGISTRY = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([-a-z0-9._]*[a-z0-9])?)*$"
# Every pattern a spec field is checked against, in words: what a value must be, and how to write one.
# Refusals say these, never the pattern (load.py); a test keeps every pattern of the schema listed here.
PATTERN_WORDS: dict[str, tuple[str, str]] = {
    DNS_LABEL: ("a DNS label", "use lower-case letters, digits and '-', starting with a letter"),
    DNS_SUBDOMAIN: ("a DNS name", "use lower-case letters, digits, '-' and '.', e.g. redis.cache.svc"),
    QUANTITY: ("a Kubernetes quantity", "write e.g. 512Mi, 8Gi or 2"),
    ENV_NAME: ("an environment variable name", "use letters, digits and '_', not starting with a digit, e.g. GATEWAY_KEY"),
    SECRET_KEY: ("a Secret key", "use letters, digits, '-', '_' and '.', e.g. api-key"),
    EXTENDED_RESOURCE: ("a device plugin's resource name", "write e.g. nvidia.com/gpu or amd.com/gpu"),
    HTTP_URL: ("an http or https URL", "write the scheme and host, e.g. http://prometheus.monitoring:9090"),
    URL_PATH: ("a URL path", "start it with '/', e.g. /health"),
    GGUF_FILE: ("a GGUF file name", "name the .gguf file in the repository, e.g. model-q4_k_m.gguf"),
    HOST_PORT: ("a host and port", "write host:port without a scheme, e.g. keda-add-ons-http-external-scaler.keda:9090"),
    PARSER_NAME: ("a vLLM parser name", "use lower-case letters, digits and '_', e.g. hermes"),
    REGISTRY: ("a registry host", "write host[:port], and a path if the mirror keeps images under one, without a "
               "scheme, e.g. registry.internal:5000"),
}
# Environment variables whose names say they hold a credential must come from a Secret.
SECRET_LOOKING_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)

SECRET_FIX = "(secrets are references, not values: write {secretName: NAME, key: KEY} and create the Secret " \
    "with `kubectl create secret generic NAME --from-literal=KEY=...`)"


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def checked(value: str, problem: str | None, what: str, example: str) -> str:
    """A field validator's answer: the value, or a ValueError naming the rule and an example."""
    if problem:
        raise ValueError(f"{value!r} is not {what}: {problem} (write it like {example})")
    return value


def _image(value: str | None) -> str | None:
    return None if value is None else checked(value, grammars.image_reference(value), "an image reference",
                                              grammars.IMAGE_EXAMPLE)


# An image the cluster will pull; refused here if no registry client would parse it.
ImageRef = Annotated[str | None, AfterValidator(_image)]


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        checked(key, grammars.label_key(key), "a Kubernetes label key", grammars.LABEL_EXAMPLE)
        checked(value, grammars.label_value(value), f"a Kubernetes label value (of {key})", grammars.LABEL_EXAMPLE)
    return labels


def _annotation_keys(annotations: dict[str, str]) -> dict[str, str]:
    for key in annotations:
        checked(key, grammars.label_key(key), "a Kubernetes annotation key", "nginx.ingress.kubernetes.io/proxy-body-size")
    return annotations


# Maps that become Kubernetes labels (or a label selector), and annotations: checked with the API server's
# own grammar, so that what validate accepts the API server accepts.
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_annotation_keys)]


def _refuse_literal_secret(value: Any) -> Any:
    if isinstance(value, (str, int, float)):
        raise ValueError(f"a secret must not be written in the spec {SECRET_FIX}")
    return value


class SecretRef(Base):
    """Where a secret value lives: a key of a Kubernetes Secret in the stack's namespace."""

    secretName: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253, description="Name of the Secret.")]
    key: Annotated[str, Field(pattern=SECRET_KEY, description="Key inside the Secret.")]


# The validator sits outside the Optional so a literal gets one clear message, not one per union member.
OptionalSecret = Annotated[SecretRef | None, BeforeValidator(_refuse_literal_secret)]
Quantity = Annotated[str | int, Field(description="A Kubernetes quantity such as 4, 500m or 32Gi.")]


class Gpu(Base):
    resource: str = Field(
        default="nvidia.com/gpu",
        pattern=EXTENDED_RESOURCE,
        description="Extended resource name: nvidia.com/gpu, amd.com/gpu, or a MIG profile such as nvidia.com/mig-1g.10gb.",
    )
    count: int = Field(default=1, ge=1, le=16, description="GPUs a pod on this profile may use (largest tensor parallel size).")
    memoryGiB: float | None = Field(default=None, gt=0, le=1024,
                                    description="Memory of one GPU in GiB (used for capacity checks).")
    product: str | None = Field(default=None, description="GPU product name, for documentation and placement (e.g. NVIDIA-L4).")

    @model_validator(mode="before")
    @classmethod
    def _mig_memory(cls, data: Any) -> Any:
        """A MIG slice's memory, from its resource name, when memoryGiB is not given: the fit check needs it."""
        if not isinstance(data, dict) or data.get("memoryGiB") is not None:
            return data
        found = MIG_RESOURCE.fullmatch(str(data.get("resource", "")))
        return {**data, "memoryGiB": float(found.group(1))} if found else data


class Toleration(Base):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None


class Profile(Base):
    """Where and how a model server runs: resources, GPUs and node placement."""

    gpu: Gpu | None = Field(default=None, description="GPUs of this profile; absent means CPU only.")
    cpu: Quantity = Field(default="2", description="CPU request of each model server pod.")
    memory: str = Field(default="8Gi", pattern=QUANTITY, description="Memory request and limit of each pod.")
    nodeSelector: Labels = Field(default_factory=dict, description="Node labels the pods must match.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints the pods tolerate.")
    affinity: dict[str, Any] | None = Field(default=None, description="A Kubernetes affinity, passed through.")
    runtimeClassName: str | None = Field(default=None, description="RuntimeClass, e.g. nvidia.")
    priorityClassName: str | None = Field(default=None, description="PriorityClass of the pods.")

    @field_validator("cpu")
    @classmethod
    def _cpu_quantity(cls, value: str | int) -> str:
        text = str(value)
        if not re.match(QUANTITY, text):
            raise ValueError(f"{text!r} is not a Kubernetes CPU quantity (write e.g. 2 or 500m)")
        return text


class Ingress(Base):
    host: str = Field(pattern=DNS_SUBDOMAIN, description="Host name agents outside the cluster use.")
    className: str | None = Field(default=None, description="IngressClass name, e.g. nginx.")
    tlsSecretName: str | None = Field(default=None, description="Secret with the TLS certificate; the URL is https when set.")
    annotations: Annotations = Field(default_factory=dict)


class GatewayResources(Base):
    cpu: Quantity = Field(default="1", description="CPU request of a gateway pod.")
    memory: str = Field(default="1Gi", pattern=QUANTITY, description="Memory request of a gateway pod (limit is twice it).")


class Redis(Base):
    """Where the gateway replicas and workers share their state: rate-limit counters, cooldowns of failing
    backends. Without it each one keeps its own, so limits multiply by the replica count."""

    enabled: bool | None = Field(
        default=None, description="Default: on when gateway.replicas or gateway.numWorkers is above 1.")
    host: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN, description="An external Redis; default: the chart runs one (no persistence).")
    port: int = Field(default=6379, ge=1, le=65535)
    password: OptionalSecret = Field(
        default=None, description="Secret with the Redis password; default {secretName: <name>-redis-password, key: password}.")


class Gateway(Base):
    """The LiteLLM proxy in front of every model."""

    replicas: int = Field(default=2, ge=1, le=100)
    masterKey: OptionalSecret = Field(
        default=None,
        description="Secret with the gateway's master key; default {secretName: <name>-litellm-master-key, key: master-key}."
    )
    ingress: Ingress | None = None
    numWorkers: int = Field(default=1, ge=1, le=64, description="Uvicorn workers per gateway pod.")
    resources: GatewayResources = Field(default_factory=GatewayResources)
    image: ImageRef = Field(default=None, description="Image override, repository:tag.")
    numRetries: int = Field(default=2, ge=0, le=10, description="Retries of a failed request, on another replica or fallback.")
    timeoutSeconds: int = Field(default=600, ge=1, description="Time allowed for one model call.")
    redis: Redis = Field(default_factory=Redis, description="Shared state of the gateway's replicas and workers.")


class Monitoring(Base):
    """Objects for a cluster with the Prometheus Operator: monitors of the gateway and of every model server
    that exports metrics, alert rules, and a Grafana dashboard."""

    enabled: bool = Field(default=False, description="Render the PodMonitor, ServiceMonitor, PrometheusRule and dashboard.")
    labels: Labels = Field(
        default_factory=dict,
        description="Labels your Prometheus selects monitors and rules by, e.g. {release: kube-prometheus-stack}.")
    dashboard: bool = Field(default=True, description="A Grafana dashboard ConfigMap, labelled for Grafana's sidecar.")
    prometheusNamespace: str = Field(
        default="monitoring", pattern=DNS_LABEL, max_length=63,
        description="The namespace of the Prometheus that scrapes the stack: the model servers' NetworkPolicies "
        "admit its pods to their metrics.")


class Mirror(Base):
    """The cluster's own mirrors, for a cluster with no route out: every image the chart runs, every Ollama
    model and every Hugging Face download comes from them."""

    registry: str = Field(
        pattern=REGISTRY, description="The OCI registry that holds every image the stack runs, under its source's "
        "path (ghcr.io/berriai/litellm as <registry>/berriai/litellm, Docker Hub's redis as <registry>/library/redis), "
        "and its Ollama models (<registry>/library/qwen2.5:0.5b).")
    insecure: bool = Field(default=False, description="Ollama pulls its models from the registry over plain HTTP. The "
                           "nodes' container runtime has its own configuration for pulling images.")
    huggingFace: str | None = Field(
        default=None, pattern=HTTP_URL, description="A Hugging Face Hub mirror: HF_ENDPOINT of every server that "
        "downloads weights or adapters from the Hub (vLLM, llama.cpp).")


class AutoGen(Base):
    apiKeyEnv: str = Field(
        default="OPENAI_API_KEY",
        pattern=ENV_NAME,
        description="Environment variable that holds the gateway key for agents. OPENAI_API_KEY needs no code.",
    )


# No ReadWriteOncePod: a surge pod or the preload Job beside a server could never mount it. No ReadOnlyMany: the
# servers (or the preload Job) write the cache.
AccessMode = Literal["ReadWriteOnce", "ReadWriteMany"]


class Cache(Base):
    type: Literal["emptyDir", "persistentVolumeClaim"] = "emptyDir"
    size: str | None = Field(default=None, pattern=QUANTITY, description="Volume size; default from the model's size.")
    storageClassName: str | None = None
    accessModes: list[AccessMode] | None = Field(
        default=None, min_length=1, description="The claim's access modes; default [ReadWriteOnce]. Replicas on "
        "several nodes share one volume only with ReadWriteMany.")
    preload: bool = Field(
        default=False, description="Fill the volume once, with a Job, before any server starts; the servers then "
        "mount it read-only and download nothing (persistentVolumeClaim only).")


def _env_value(value: Any) -> Any:
    if isinstance(value, (int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value


EnvValue = Annotated[str | SecretRef, BeforeValidator(_env_value)]


class Limits(Base):
    """What every agent together may send this model, per minute, across all gateway replicas (with Redis)."""

    rpm: int | None = Field(default=None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(default=None, ge=1, description="Tokens (prompt and completion) per minute.")


class ModelCommon(Base):
    name: str = Field(pattern=DNS_LABEL, max_length=50, description="The name agents use, in the gateway and in AutoGen.")
    tags: list[str] = Field(default_factory=list, description="AutoGen filter tags.")
    fallbacks: list[str] = Field(default_factory=list, description="Models the gateway tries, in order, when this one fails.")
    toolCalling: bool = Field(default=False, description="Enable tool (function) calling for this model.")
    limits: Limits | None = Field(default=None, description="Per-minute limits the gateway enforces: {rpm, tpm}.")


class Autoscaling(Base):
    """KEDA scales the model's Deployment on its server's queue (requests waiting for a slot), read from
    Prometheus; with minReplicas 0 the model sleeps when idle, and a call wakes it (stackgen.wake)."""

    minReplicas: int = Field(default=1, ge=0, le=100, description="Fewest replicas. 0: the model sleeps after idleSeconds "
                             "with no call, and the next call wakes it through KEDA's HTTP add-on, which holds it until "
                             "a replica is Ready (docs/operations.md, \"Scale to zero\").")
    idleSeconds: int | None = Field(
        default=None, ge=60, le=86400,
        description="With minReplicas 0: how long no call may be in flight or waiting before the last replica goes "
        "(KEDA's cooldownPeriod); default 900.")
    wakeSeconds: int | None = Field(
        default=None, ge=30, le=3600,
        description="With minReplicas 0: how long a call may wait for the first replica to be Ready; the gateway's "
        "timeout for the model and the add-on interceptor's grow by it. Default 600.")
    interceptorUrl: str = Field(
        default="http://keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local:8080", pattern=HTTP_URL,
        description="With minReplicas 0: the proxy Service of KEDA's HTTP add-on (its chart's default), which the "
        "gateway calls for this model; an in-cluster Service, whose namespace the model's NetworkPolicy admits.")
    scalerAddress: str = Field(
        default="keda-add-ons-http-external-scaler.keda.svc.cluster.local:9090", pattern=HOST_PORT,
        description="With minReplicas 0: the HTTP add-on's external scaler (host:port), which tells KEDA of the calls "
        "the interceptor holds.")
    maxReplicas: int = Field(ge=1, le=100, description="Most replicas; `stackgen plan --cluster` checks that they fit.")
    targetQueue: int = Field(default=5, ge=1, description="Requests waiting per replica that call for one more.")
    scaleDownDelaySeconds: int = Field(
        default=300, ge=0, le=3600,
        description="How long the queue must stay low before a replica goes (the HPA's scale-down window); "
        "keep it longer than a replica takes to start.")
    prometheusUrl: str = Field(
        default="http://prometheus-operated.monitoring.svc.cluster.local:9090", pattern=HTTP_URL,
        description="Prometheus that scrapes the model servers (default: the Prometheus Operator's); an in-cluster "
        "Service, whose namespace the model's NetworkPolicy admits to the server's metrics.")

    @property
    def prometheus_namespace(self) -> str | None:
        """The namespace of prometheusUrl's Service (http://<service>.<namespace>.svc[.<domain>]:<port>), if it
        names one."""
        return _service_namespace(self.prometheusUrl)

    @property
    def interceptor_namespace(self) -> str | None:
        """The namespace of interceptorUrl's Service, if it names one."""
        return _service_namespace(self.interceptorUrl)


def _service_namespace(url: str) -> str | None:
    """<namespace> of http://<service>.<namespace>.svc[.<domain>]:<port>, if the URL names an in-cluster Service."""
    parts = (urlsplit(url).hostname or "").split(".")
    return parts[1] if len(parts) >= 3 and parts[2] == "svc" and re.fullmatch(DNS_LABEL, parts[1]) else None


class Router(Base):
    """The router stackgen puts in front of a model's replicas (vllm-router)."""

    image: ImageRef = Field(default=None, description="Image override, repository:tag; default the chart's images.router.")


class Adapter(Base):
    """A LoRA adapter the model's server loads beside the base weights; agents ask for it by its name, as for a
    model, and get the base model's abilities."""

    name: str = Field(pattern=DNS_LABEL, max_length=50,
                      description="The name agents ask for; unique among the stack's models and adapters.")
    source: str = Field(
        min_length=1,
        description="A Hugging Face id (namespace/name), downloaded into the model's cache when the server starts, "
        "or the absolute path of an adapter directory inside the model's cache volume.")
    rank: int = Field(ge=1, le=512, description="The adapter's LoRA rank (`r` in its adapter_config.json); it sizes "
                      "the server's largest rank and the adapters' memory.")
    tags: list[str] | None = Field(default=None, description="AutoGen filter tags; default the base model's.")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        problem = None if value.startswith("/") else grammars.hf_repo(value)
        return checked(value, problem, "a Hugging Face id or an absolute path", "my-org/sql-agent-lora")


class ServedModel(ModelCommon):
    """Fields shared by model servers that run in the cluster."""

    model: str = Field(min_length=1, description="What the engine serves: a Hugging Face id (vLLM, llama.cpp), an Ollama "
                       "name, or the id a custom server answers to.")
    profile: str = Field(description="Key of `profiles` this server runs on.")
    replicas: int = Field(default=1, ge=0, le=100)
    image: ImageRef = Field(default=None, description="Image override, repository:tag.")
    args: list[str] = Field(default_factory=list, description="Extra arguments for the server.")
    env: dict[str, EnvValue] = Field(default_factory=dict,
                                     description="Extra environment: NAME: value or NAME: {secretName, key}.")
    cache: Cache = Field(default_factory=Cache, description="Model cache volume.")
    autoscaling: Autoscaling | None = Field(default=None, description="Scale on queue depth with KEDA instead of fixed replicas.")
    routing: RoutingPolicy | None = Field(
        default=None,
        description="How replicas share requests: a router policy (consistent_hash keeps each conversation on one "
        "replica, sticky_least_loaded, round_robin) or `service` (the Service's random spread). Default: "
        "consistent_hash for a vLLM model with more than one replica or autoscaling.")
    contextLength: int | None = Field(
        default=None, ge=128,
        description="vLLM: the native context length of an uncatalogued model. Ollama and llama.cpp: the context "
        "served, default min(model's, 8192). custom: the context the server serves.",
    )
    family: str | None = Field(default=None, description="AutoGen model family, for uncatalogued models.")
    vision: bool | None = Field(default=None, description="Whether the model takes images (uncatalogued models).")
    adapters: list[Adapter] = Field(
        default_factory=list,
        description="LoRA adapters served beside the base model, each a model name of its own (vLLM).")

    @field_validator("env")
    @classmethod
    def _no_literal_secrets(cls, env: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        for name, value in env.items():
            if not re.match(ENV_NAME, name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if isinstance(value, str) and SECRET_LOOKING_ENV.search(name):
                raise ValueError(f"{name} looks like a credential but is given as a literal value {SECRET_FIX}")
        return env
