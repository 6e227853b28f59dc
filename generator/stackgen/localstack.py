"""Re-point a rendered LiteLLM gateway config at model servers running on this machine.

The gateway config stackgen renders addresses in-cluster model servers by their
Service DNS names (``http://<fullname>-<key>/v1``). To exercise that same config
against local stand-ins (llama.cpp servers in the tests, or `stackgen verify
--local`), only those addresses change; everything else (model names, provider
prefixes, router settings, auth) stays exactly as rendered, so what is checked
is the config that ships.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["point_at_local"]


def point_at_local(config: Mapping[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    """Return a deep copy of ``config`` with each named model's ``api_base`` replaced.

    ``config`` is a LiteLLM proxy config (``model_list`` of ``{model_name,
    litellm_params}`` entries). ``urls`` maps a ``model_name`` to the base URL of
    an OpenAI-compatible server, ending in ``/v1`` like the in-cluster addresses
    it stands in for. Every entry carrying that ``model_name`` is re-pointed, so
    replicas of one model all go to the given URL. Entries not named in ``urls``
    (external providers, for instance) are copied unchanged. The input is not
    modified.

    Raises ValueError naming every ``model_name`` in ``urls`` that the config
    lacks, or every URL that does not end in ``/v1``; both are caller mistakes
    that would otherwise surface later as a confusing 404 from the gateway.
    """
    bad_urls = sorted(name for name, url in urls.items() if not url.rstrip("/").endswith("/v1"))
    if bad_urls:
        raise ValueError(f"local URL must end in /v1 for model(s): {', '.join(bad_urls)}")

    result: dict[str, Any] = copy.deepcopy(dict(config))
    entries = result.get("model_list") or []
    present = {entry.get("model_name") for entry in entries if isinstance(entry, Mapping)}
    missing = sorted(name for name in urls if name not in present)
    if missing:
        raise ValueError(f"gateway config has no model_list entry for: {', '.join(missing)}")

    for entry in entries:
        name = entry.get("model_name") if isinstance(entry, dict) else None
        if name in urls:
            params = entry.setdefault("litellm_params", {})
            params["api_base"] = urls[name].rstrip("/")
    return result
