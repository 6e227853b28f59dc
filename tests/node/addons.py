"""What a cluster must already have for stackgen's autoscaling and its groups, put on the real node as a platform
team would:

- KEDA (versions.yaml `keda`) from its own manifests: `config/minimal` of its Go module, rendered by
  kubectl's built-in kustomize. That is the operator, the metrics API server behind the
  `v1beta1.external.metrics.k8s.io` APIService, the CRDs, and KEDA's own RBAC, unchanged. Trimmed, by
  KEDA's `minimal` itself: the admission webhooks (they validate ScaledObjects a human writes; stackgen's
  are checked by `validate` and the chart's schema). The images are made here (`Project.images_of`) from
  scripts/keda/build.sh's operator and adapter, with `IfNotPresent`, since no registry is reachable. They are
  not among scripts/node/build.sh's: the node starts without waiting for KEDA's build, which the background
  chain finishes while the tier's first modules run.
- Debian's Prometheus in namespace `monitoring` behind Service `prometheus-operated`: the address the
  Prometheus Operator gives its Prometheus, so the spec's default `prometheusUrl` is the right one. It
  scrapes what the chart's PodMonitor selects (the release's model pods, `/metrics` on their serving port)
  and labels each series with its namespace, as the Operator does. Debian builds Prometheus without its
  Kubernetes discovery, so it finds the pods through cluster DNS instead: a headless Service of the test's
  selects the model pods, ready or not (a pod that is stopping is still scraped while it drains), and
  Prometheus resolves it every 5 s. It scrapes every 5 s, not the PodMonitor's 15 s, so that the test's
  timings show KEDA's and the HPA's share rather than a scrape's.
- LeaderWorkerSet's controller (versions.yaml `lws`) from its own `config/default`: its CRDs, the controller manager,
  its webhooks (they give each pod of a group its leader's address and its index) with the certificates it makes
  and rotates itself, and its RBAC. Its image is made from scripts/lws/build.sh's manager. Fitted to the 2-core
  node (`fit`): one replica instead of two (its leader election picks one anyway), asking for 100m of CPU and
  128 MiB instead of a whole core and a GiB each.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.crds import module_file
from tests.e2e.kube import Kube, timed
from tests.pins import pin
from tests.support.paths import SCRIPTS
from tests.support.prebuild import built
from tests.support.tools import tool

from .conftest import NodeCluster, report

KEDA_NAMESPACE = "keda"
PROMETHEUS_NAMESPACE = "monitoring"
PROMETHEUS_SERVICE = "prometheus-operated"
PROMETHEUS_PORT = 9090
SCRAPE_SECONDS = 5
# KEDA's manifests name these images (tag `latest`); each is one static binary of scripts/keda/build.sh, run as
# KEDA's own images run it.
KEDA_IMAGES = {"ghcr.io/kedacore/keda": ("keda", "ghcr.io/kedacore/keda"),
               "ghcr.io/kedacore/keda-metrics-apiserver": ("keda-adapter", "ghcr.io/kedacore/keda-metrics-apiserver")}
# The HTTP add-on's manifests name theirs by ko's import paths; each is a binary of scripts/http-add-on/build.sh, under
# the name the project publishes it by.
ADDON_IMAGES = {"ko://github.com/kedacore/http-add-on/interceptor": ("interceptor", "ghcr.io/kedacore/http-add-on-interceptor"),
                "ko://github.com/kedacore/http-add-on/scaler": ("scaler", "ghcr.io/kedacore/http-add-on-scaler")}
# LWS's kustomization names its manager's image by its staging repository; the binary of scripts/lws/build.sh, under
# the name the project publishes it by.
LWS_IMAGES = {"us-central1-docker.pkg.dev/k8s-staging-images/lws/lws": ("manager", "registry.k8s.io/lws/lws")}
LWS_NAMESPACE = "lws-system"
STATIC_USER = "65532:65532"  # the distroless user the projects' images run as


@dataclass(frozen=True)
class Project:
    """A Go project whose released manifests the node applies, with images made here from its binaries."""

    name: str
    module: str
    pin: str  # its versions.yaml name
    build: str  # the script under scripts/ that builds its binaries
    namespace: str
    deployments: tuple[str, ...]  # the Deployments its manifests make, in `namespace`
    # The image its manifests name (without a tag) -> the binary it runs, and the repository it is published as.
    images: dict[str, tuple[str, str]]
    configs: tuple[str, ...]  # the kustomize directories of its module that the node applies
    tag_prefix: str = ""  # what its published tags put before the bare version
    fit: Callable[[dict[str, Any]], None] | None = None  # changes a Deployment of its to fit the node

    def ref(self, image: str) -> str:
        """The reference the node knows an image by: its published repository, at the pinned version."""
        return f"{self.images[image][1]}:{self.tag_prefix}{pin(self.pin).lstrip('v')}"

    def images_of(self, binaries: Path, work: Path) -> dict[Path, str]:
        """An image archive of each binary, as its only file (scripts/node/oci.py, as the node's other static
        images): archive -> the reference it holds."""
        archives = {}
        for image, (binary, _) in self.images.items():
            layer = work / binary
            layer.mkdir(parents=True)
            shutil.copy2(binaries / binary, layer / binary)
            config = work / f"{binary}.json"
            config.write_text(json.dumps({"Entrypoint": [f"/{binary}"], "User": STATIC_USER}))
            archive = work / f"{binary}.tar"
            subprocess.run([sys.executable, str(SCRIPTS / "node" / "oci.py"), str(archive), self.ref(image),
                            str(config), str(layer)], check=True, capture_output=True, text=True, timeout=300)
            archives[archive] = self.ref(image)
        return archives

    def objects(self, kubectl: str) -> list[dict[str, Any]]:
        """Its manifests, rendered by kubectl's kustomize, their images pointed at those of `images_of`."""
        objects = []
        for directory in self.configs:
            config = module_file(self.module, pin(self.pin), f"{directory}/kustomization.yaml").parent
            text = subprocess.run([kubectl, "kustomize", str(config)], capture_output=True, text=True, timeout=120,
                                  check=True).stdout
            objects += [doc for doc in yaml.safe_load_all(text) if doc]
        for obj in objects:
            if obj["kind"] != "Deployment":
                continue
            if self.fit:
                self.fit(obj)
            for container in obj["spec"]["template"]["spec"]["containers"]:
                image = container["image"]
                if ":" in image.rsplit("/", 1)[-1]:  # a tag, not ko://'s scheme
                    image = image.rsplit(":", 1)[0]
                if image not in self.images:
                    raise AssertionError(f"{self.module}'s manifests name an image the node has no build of: "
                                         f"{container['image']}")
                container["image"] = self.ref(image)
                container["imagePullPolicy"] = "IfNotPresent"
        return objects


def _one_small_replica(deployment: dict[str, Any]) -> None:
    deployment["spec"]["replicas"] = 1
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        container.setdefault("resources", {})["requests"] = {"cpu": "100m", "memory": "128Mi"}


KEDA = Project("KEDA", "github.com/kedacore/keda/v2", "keda", "keda/build.sh", KEDA_NAMESPACE,
               ("keda-operator", "keda-metrics-apiserver"), KEDA_IMAGES, ("config/minimal",))
# The CRDs, the interceptor and the external scaler; not the operator (stackgen renders no HTTPScaledObject).
HTTP_ADDON = Project("HTTP add-on", "github.com/kedacore/http-add-on", "http-add-on", "http-add-on/build.sh",
                     KEDA_NAMESPACE, ("keda-add-ons-http-interceptor", "keda-add-ons-http-scaler"), ADDON_IMAGES,
                     ("config/crd", "config/interceptor", "config/scaler"))
LWS = Project("LWS", "sigs.k8s.io/lws", "lws", "lws/build.sh", LWS_NAMESPACE, ("lws-controller-manager",), LWS_IMAGES,
              ("config/default",), tag_prefix="v", fit=_one_small_replica)


def apply_all(kube: Kube, objects: list[dict[str, Any]]) -> None:
    # Server-side: KEDA's CRDs are too big for client-side apply's last-applied annotation.
    kube.run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(objects),
             timeout=180)


@contextlib.contextmanager
def installed(node_cluster: NodeCluster, project: Project, work: Path, ready: Callable[[], None] = lambda: None,
              ) -> Iterator[Kube]:
    """A project's own manifests applied, with images made here from its build, its Deployments rolled out and
    `ready` waited for; deleted afterwards."""
    kube = node_cluster.kube()
    report[f"{project.name} imported"] = node_cluster.node.import_archives(project.images_of(built(project.build), work))
    objects = project.objects(tool("kubectl"))
    start = time.monotonic()
    try:
        apply_all(kube, objects)
        kube.wait_rollouts(project.namespace, list(project.deployments), 300)
        ready()
        report[f"{project.name} Ready"] = f"{time.monotonic() - start:.0f}s"
        yield kube
    finally:
        with timed(f"{project.name} removed"):
            kube.run("delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=120s",
                     stdin=yaml.safe_dump_all(objects), timeout=150, check=False)


def prometheus_objects(ref: str, namespace: str, release: str, component: str, port: int) -> list[dict[str, Any]]:
    """Debian's Prometheus, scraping the model servers of `component` in `release` (namespace `namespace`)."""
    meta = {"name": "prometheus", "namespace": PROMETHEUS_NAMESPACE}
    labels = {"app.kubernetes.io/name": "prometheus"}
    targets = f"{release}-{component}-scraped"
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "scrape_configs": [{
            "job_name": "model-servers",
            "dns_sd_configs": [{"names": [f"{targets}.{namespace}.svc.cluster.local"], "type": "A", "port": port,
                                "refresh_interval": f"{SCRAPE_SECONDS}s"}],
            "relabel_configs": [{"target_label": "namespace", "replacement": namespace}],
        }],
    }
    pod = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "prometheus", "image": ref, "imagePullPolicy": "IfNotPresent",
            "args": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                     f"--web.listen-address=:{PROMETHEUS_PORT}"],
            "ports": [{"name": "web", "containerPort": PROMETHEUS_PORT}],
            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 2},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"},
                             {"name": "data", "mountPath": "/prometheus"}],
        }],
        "volumes": [{"name": "config", "configMap": {"name": "prometheus"}}, {"name": "data", "emptyDir": {}}],
    }
    selector = {"app.kubernetes.io/name": "inference-stack", "app.kubernetes.io/instance": release,
                "app.kubernetes.io/component": component}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROMETHEUS_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"prometheus.yml": yaml.safe_dump(config, sort_keys=False)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {**meta, "name": PROMETHEUS_SERVICE},
         "spec": {"selector": labels, "ports": [{"name": "web", "port": PROMETHEUS_PORT, "targetPort": "web"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": targets, "namespace": namespace},
         "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector,
                  "ports": [{"name": "http", "port": port, "targetPort": port}]}},
    ]
