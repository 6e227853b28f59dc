#!/usr/bin/env bash
# make test after its setup: the static checks, the builds, then pytest's two sessions at once. The node tier (a
# real node: containerd, the kubelet, its images) runs in a session of its own beside the others, because it spends
# most of its time waiting (for its images' builds, for pods to start and models to load) and the other tiers leave
# the machine's cores half idle (docs/testing.md, "What a whole run costs"). Each session starts its own background
# chain of the builds its tiers need (tests/support/prebuild.py); the scripts' cache locks keep a build from
# running twice.
#
# The node session's output goes to NODE_LOG and is printed when both are done; the other session's goes to the
# terminal as it runs. Fails if either fails. Ctrl-C stops both, each running its teardown.
#
# First `make verify` and the Debian packages the tests run (scripts/test-debs.sh), and beside them and after them
# the builds the sessions need early, at full speed, in the stages tests/support/prebuild.py lists
# (`BEFORE_SESSIONS`); llama-server, which only the engines tier runs, is left to that session's background chain,
# which has the earlier tiers' quarter of an hour to build it in. Warm, each is a cache hit of a second.
#
# One run at a time on a machine: a second waits for the first. Two at once would share two cores, and their
# node tiers would take turns through the node's own lock (tests/node/network.py), the second's wait counted
# against its time; each run's timings would be the other's to spoil.
#
# Usage: scripts/test.sh
# Env:   PY (python with the test extras; default .venv/bin/python), VENV (its virtualenv, for scripts/verify.sh),
#        TEST_MARKERS (pytest -m expression; default `not bench`), NODE_LOG (default .pytest-node.log),
#        PYTEST_ARGS (more arguments for both sessions), PYTHON (the interpreter of vLLM's virtualenv, as
#        scripts/engines/vllm-cpu.sh)
set -uo pipefail

py=${PY:-.venv/bin/python}
markers=${TEST_MARKERS:-not bench}
node_log=${NODE_LOG:-.pytest-node.log}
# shellcheck disable=SC2206  # PYTEST_ARGS is a list of words by design
extra=(${PYTEST_ARGS:-})
no_tests=5  # pytest's status when the selection holds no test

lock=${STACKGEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stackgen}/test.lock
mkdir -p "$(dirname "$lock")"
exec 8>"$lock"  # held by this shell only: every command below is started with 8>&-
if ! flock -n 8; then
  echo "another make test is running on this machine (its lock: $lock); waiting for it to end" >&2
  flock -w 5400 8 || { echo "still running after 90 minutes; giving up" >&2; exit 1; }
fi

# The first stage of builds (no Debian package needed) runs beside the static checks and the Debian packages, which
# spend most of their minute or two downloading; a failed check stops it.
set -m
"$py" -m tests.support.prebuild 1 8>&- &
first=$!
set +m
if ! VENV=${VENV:-.venv} bash scripts/verify.sh 8>&- || ! bash scripts/test-debs.sh 8>&-; then
  kill -TERM -- "-$first" 2>/dev/null
  wait "$first"
  exit 1
fi
wait "$first" || exit 1
"$py" -m tests.support.prebuild 2 8>&- || exit 1

# Job control on for this one start: the session gets its own process group, and SIGINT is not ignored in it
# (without job control, bash starts background commands with SIGINT ignored). SIGINT, not SIGTERM: pytest takes
# it as Ctrl-C and still runs its fixtures' teardown (the node's processes, its network namespace).
set -m
"$py" -m pytest --ignore=tests/verify -m "($markers) and node" --durations=20 "${extra[@]}" > "$node_log" 2>&1 8>&- &
node=$!
set +m
trap 'kill -INT "$node" 2>/dev/null; wait "$node"' INT TERM
echo "the node tier runs beside the other tiers (pid $node); its output: $node_log, printed when it ends"

"$py" -m pytest --ignore=tests/verify -m "($markers) and not node" --durations=40 "${extra[@]}" 8>&-
others=$?
wait "$node"
node_status=$?
trap - INT TERM

echo
echo "======================== the node tier ($node_log) ========================"
cat "$node_log"
status=0
for part in "others:$others" "node:$node_status"; do
  code=${part#*:}
  if [[ $code != 0 && $code != "$no_tests" ]]; then
    echo "the ${part%%:*} session failed (pytest status $code)" >&2
    status=1
  fi
done
exit "$status"
