#!/usr/bin/env bash
# Package charts/inference-stack, sign it with Helm's provenance (an OpenPGP signature over the package's
# SHA-256 and Chart.yaml, in a .prov file beside it), check the signature, and push both to an OCI registry.
#
#   usage: scripts/chart/publish.sh oci://REGISTRY/PATH KEY_NAME SECRET_KEYRING PUBLIC_KEYRING [helm push flags]
#   e.g.   scripts/chart/publish.sh oci://ghcr.io/acme/charts "Acme Charts" ~/.gnupg/secring.gpg ~/.gnupg/pubring.gpg
#
# The keyrings are binary (not ASCII-armoured) OpenPGP files, as Helm reads them: `gpg --export-secret-keys
# NAME > secring.gpg` and `gpg --export NAME > pubring.gpg`. The key must have no passphrase, or HELM_KEY_PASSPHRASE
# must hold it. Users verify with the public keyring: helm install ... oci://REGISTRY/PATH/inference-stack
# --version VERSION --verify --keyring pubring.gpg (docs/operations.md). Extra arguments go to `helm push`
# (--plain-http for a registry without TLS); helm push reports the reference and the digest it pushed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/log.sh
source "$here/../lib/log.sh"

[[ $# -ge 4 ]] || die "usage: publish.sh oci://REGISTRY/PATH KEY_NAME SECRET_KEYRING PUBLIC_KEYRING [helm push flags]" 2
target=$1 key=$2 secret=$3 public=$4
shift 4
[[ $target == oci://* ]] || die "the registry must be written oci://HOST[:PORT]/PATH, not $target" 2
helm=${HELM:-helm}
chart="$here/../../charts/inference-stack"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$helm" package --sign --key "$key" --keyring "$secret" --destination "$work" "$chart" >&2
package=$(find "$work" -name 'inference-stack-*.tgz' -print -quit)
[[ -f "$package.prov" ]] || die "helm package wrote no provenance file beside $package" 4
# Refuse to publish what users could not verify with the public key handed to them.
"$helm" verify --keyring "$public" "$package" >&2
log "signed ${package##*/} with '$key'; pushing it and its provenance to $target"
"$helm" push "$package" "$target" "$@"
