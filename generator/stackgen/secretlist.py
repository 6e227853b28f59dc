"""Every Secret a stack reads, known before the install (`stackgen secrets`): its name, its keys, what each is
for, and the kubectl line that creates it. stackgen never sees a value; the chart only names the Secrets, and
the lines below fill each key from a shell variable the user sets, or from a random value where any will do."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from .engines.external import HOSTED
from .plan import Plan
from .specbase import SecretRef

RANDOM = '"$(openssl rand -hex 24)"'  # for a value stackgen's own parts choose, which nobody types
MASTER_KEY = '"sk-$(openssl rand -hex 24)"'  # LiteLLM takes a master key only with its sk- prefix
TLS_KEYS = ("tls.crt", "tls.key")  # a kubernetes.io/tls Secret, which `kubectl create secret tls` makes


@dataclass(frozen=True)
class Needed:
    """One key of one Secret in the stack's namespace, and where the stack reads it."""

    secret: str
    key: str
    purpose: str
    value: str  # the shell word the kubectl line fills it with


def needed(plan: Plan) -> list[Needed]:
    """In the order: the gateway's, then each model's as the spec lists them; a key read twice is listed once."""
    found: list[Needed] = [_key(plan.master_key, "the gateway's master key: agents send it as their API key",
                                MASTER_KEY)]
    if plan.redis:
        found.append(_key(plan.redis.password, "the password of the Redis the gateway's replicas share",
                          RANDOM if plan.redis.in_chart else "\"$REDIS_PASSWORD\""))
    ingress = plan.stack.gateway.ingress
    if ingress and ingress.tlsSecretName:
        found += [Needed(ingress.tlsSecretName, key, f"the certificate of {ingress.host}", "") for key in TLS_KEYS]
    for m in plan.models:
        if m.api_key and m.api_key_env:
            provider = m.label.removeprefix("external/")
            what = f"{provider}'s API key" if provider in HOSTED else f"the API key of {m.api_base}"
            found.append(_key(m.api_key, f"{m.name}: {what}", f'"${m.api_key_env}"'))
    for s in plan.served:
        if s.hf_token:
            found.append(_key(s.hf_token, f"{s.name}: a Hugging Face token that may download {s.spec.model}",
                              '"$HF_TOKEN"'))
        for name, value in s.env.items():
            if isinstance(value, SecretRef):
                found.append(_key(value, f"{s.name}: its server's environment variable {name}", f'"${name}"'))
    merged: dict[tuple[str, str], Needed] = {}
    for n in found:
        same = merged.get((n.secret, n.key))
        merged[n.secret, n.key] = n if same is None else Needed(n.secret, n.key, f"{same.purpose}; {n.purpose}",
                                                                 same.value)
    return list(merged.values())


def _key(ref: SecretRef, purpose: str, value: str) -> Needed:
    return Needed(ref.secretName, ref.key, purpose, value)


def create_lines(plan: Plan, only: set[str] | None = None) -> list[str]:
    """One `kubectl create secret generic` a Secret (of `only`, if given), every key of it on the line."""
    by_secret: dict[str, list[Needed]] = {}
    for n in needed(plan):
        if only is None or n.secret in only:
            by_secret.setdefault(n.secret, []).append(n)
    namespace = plan.stack.namespace
    return [f"kubectl -n {namespace} create secret tls {name} --cert=<certificate file> --key=<key file>"
            if tuple(n.key for n in keys) == TLS_KEYS else
            f"kubectl -n {namespace} create secret generic {name} "
            + " ".join(f"--from-literal={n.key}={n.value}" for n in keys) for name, keys in by_secret.items()]


def present(plan: Plan, kubectl: list[str]) -> dict[str, set[str] | None]:
    """The keys each needed Secret holds in the cluster (None: no such Secret, or kubectl may not read it), read
    with `kubectl` (its context and kubeconfig given)."""
    held: dict[str, set[str] | None] = {}
    for name in dict.fromkeys(n.secret for n in needed(plan)):
        done = subprocess.run([*kubectl, "get", "secret", name, "-n", plan.stack.namespace, "-o", "json"],
                              capture_output=True, text=True, timeout=60, check=False)
        held[name] = set(json.loads(done.stdout).get("data") or {}) if done.returncode == 0 else None
    return held


def report(plan: Plan, held: dict[str, set[str] | None] | None = None) -> tuple[str, bool]:
    """The text `stackgen secrets` prints, and whether every key is there (without `held`: not known, False).
    The create lines cover the Secrets that do not exist; a Secret that exists without a key is named apart."""
    rows = needed(plan)
    lines = [f"Secrets that stack {plan.stack.name} reads in namespace {plan.stack.namespace} (no value is ever in "
             "the rendered files):"]
    for n in rows:
        state = ""
        if held is not None:
            keys = held[n.secret]
            state = "  [exists]" if keys is not None and n.key in keys else "  [missing]"
        lines.append(f"  {n.secret} / {n.key}: {n.purpose}{state}")
    absent = {n.secret for n in rows if held is None or held[n.secret] is None}
    partial: dict[str, list[str]] = {}  # Secrets that exist without a key the stack reads
    for n in rows:
        if held is not None and held[n.secret] is not None and n.key not in (held[n.secret] or set()):
            partial.setdefault(n.secret, []).append(n.key)
    if not absent and not partial:
        lines.append("Every one exists.")
        return "\n".join(lines) + "\n", True
    if absent:
        lines.append("Create " + ("them" if held is None else "the missing ones") + " before `helm install`:")
        lines += [f"  {line}" for line in create_lines(plan, absent)]
    for name, lacking in partial.items():
        lines.append(f"  Secret {name} exists without {', '.join(lacking)}: add "
                     f"{'it' if len(lacking) == 1 else 'them'} (kubectl -n {plan.stack.namespace} edit secret {name})")
    return "\n".join(lines) + "\n", False
