"""The gateway's check before a call to a model that may be asleep: is the interceptor that wakes it there?

LiteLLM loads this module from its config's directory when `litellm_settings.callbacks` names `stackgen_wake.check`
(stackgen names it for every stack with a model at `minReplicas: 0`; the chart's gateway ConfigMap then carries
this file beside config.yaml).

The gateway calls such a model through KEDA's HTTP add-on interceptor, which accepts the connection at once and
holds the call until the model is up; so the gateway waits for that model as long as a wake and an answer take.
With the interceptor down, its Service has no endpoint, and a connection to it is not always refused: where the
network policy controller accepts a pod's traffic before kube-proxy's reject rule sees it (kube-router, on the
node tier), the SYN is lost. LiteLLM gives a connect the same timeout as the whole call, so the agent would wait
out the wake's budget, once for each retry, and then get a timeout that names no cause.

So before each call to such a model (a deployment that sends ROUTE_HEADER), a bare TCP connect to its api_base,
bounded by CONNECT_SECONDS. If it does not connect, the call fails at once with a 503 that says what is down,
and the gateway's log names the address.
A connect that succeeds is closed unused: the call then opens its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import litellm
from litellm.integrations.custom_logger import CustomLogger

ROUTE_HEADER = "x-stackgen-route"  # stackgen.wake.ROUTE_HEADER (tests/test_autoscaling.py keeps them equal)
# An interceptor that is up accepts in well under a second, even across nodes; a lost SYN is retried at 1 s and 3 s.
CONNECT_SECONDS = 5.0
LOG = logging.getLogger("stackgen_wake")


class WakeCheck(CustomLogger):  # type: ignore[misc]  # LiteLLM has no type hints here
    async def async_pre_call_check(self, deployment: dict[str, Any], parent_otel_span: Any) -> None:
        params = deployment.get("litellm_params") or {}
        route = (params.get("extra_headers") or {}).get(ROUTE_HEADER)
        if not route:
            return
        url = urlsplit(params.get("api_base") or "")
        host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_SECONDS)
        except OSError as error:  # wait_for's TimeoutError is one
            why = f"{type(error).__name__}: {error}" if str(error) else f"no connection in {CONNECT_SECONDS:g}s"
            # The address goes to the gateway's log only: LiteLLM masks cluster-internal names in what it answers.
            LOG.error("stackgen_wake: route %s: interceptor %s:%s cannot be reached (%s)", route, host, port, why)
            raise litellm.ServiceUnavailableError(
                message=f"the model behind route {route} may be asleep, and the interceptor that wakes it cannot "
                        f"be reached ({why}): check KEDA's HTTP add-on interceptor (the gateway's log names "
                        "its address)",
                llm_provider="stackgen", model=str(params.get("model"))) from None
        writer.close()


check = WakeCheck()
