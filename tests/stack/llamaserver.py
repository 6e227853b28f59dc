"""Run one llama.cpp server (xllamacpp, in-process) until SIGTERM/SIGINT.

Each model server lives in its own process so a test can kill it to simulate a
crashed model pod. The harness runs this file by path (it imports nothing from
the test package); from the repository root this also works:

    python -m tests.stack.llamaserver --model PATH [--port N] [--alias NAME] [--ready-file F]
                                      [--api-key-env NAME]

With ``--port 0`` (the default) llama.cpp binds a free port itself, which avoids
the race of probing a port and binding it later; the bound address is written
to ``--ready-file`` (atomically) and printed on stdout once the server listens.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="path to a GGUF file")
    parser.add_argument("--port", type=int, default=0, help="0 lets the server pick a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--alias", action="append", default=[], help="served model name(s)")
    # A tool-calling prompt is ~500 tokens (one a byte); agents' system prompts add more.
    parser.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    parser.add_argument("--threads", type=int, default=1)
    # Requests that set no max_tokens (AutoGen's) stop here; a tool call takes ~100 tokens.
    parser.add_argument("--n-predict", type=int, default=256, help="server-side cap on generated tokens")
    parser.add_argument("--api-key-env", metavar="NAME",
                        help="refuse requests without the key in this variable, as a hosted provider does")
    parser.add_argument("--ready-file", type=Path, help="where to write the listening URL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Imported late so `--help` works without loading the native library.
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = 1
    params.n_predict = args.n_predict
    # Two cores are shared by several servers and the gateway: one thread each.
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.warmup = False
    # Prometheus counters let tests see which server actually answered a request.
    params.endpoint_metrics = True
    if args.alias:
        params.model_alias = set(args.alias)
    if args.api_key_env:
        params.api_keys = [os.environ[args.api_key_env]]

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    server = xllamacpp.Server(params)  # serves HTTP from a background thread
    address: str = server.listening_address
    if args.ready_file is not None:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(address)
        os.replace(tmp, args.ready_file)
    print(address, flush=True)

    stop.wait()
    # Dropping the last reference runs the native destructor, which stops the
    # HTTP loop; exiting right after keeps shutdown fast.
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
