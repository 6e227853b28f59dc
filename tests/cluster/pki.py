"""Certificates and keys of the test control plane: one CA, the apiserver's serving cert,
a client cert per component, the service-account signing key, and the aggregation layer's front proxy (a CA
of its own and the client cert the apiserver shows to aggregated API servers such as KEDA's)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The real node's name (tests/node); its kubelet's certificate names it.
NODE_NAME = "stackgen-node"
# Every client identity but kube-router's maps onto a binding the apiserver bootstraps itself (no RBAC set-up
# needed); the node tier binds kube-router's to a read-only role (tests/node/policy.py).
CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    # kwok writes node and pod status for many nodes: simplest honest identity is an admin.
    "kwok": ("kwok-controller", "system:masters"),
    # The node tier (tests/node): a real kubelet in group system:nodes (the Node authorizer), kube-proxy
    # as the user system:node-proxier is bound to, and the apiserver's client for kubelet logs, exec and
    # port-forward (the kubelet authorizes any certificate of this CA).
    "node": (f"system:node:{NODE_NAME}", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", None),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", None),
    "kube-router": ("stackgen:kube-router", None),
}

# The name the apiserver's front-proxy client cert carries (--requestheader-allowed-names).
FRONT_PROXY_CLIENT = "front-proxy-client"


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def front_proxy_ca(self) -> Path:
        return self.dir / "front-proxy-ca.crt"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           signer: ec.EllipticCurvePrivateKey, *, ca: bool = False,
           server_ips: tuple[str, ...] = (), server_names: tuple[str, ...] = (),
           client: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               # A little slack before "now": the apiserver rejects certs from the future.
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_ips or server_names:
        alt: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        alt += [x509.DNSName(n) for n in server_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(directory: Path, server_ips: tuple[str, ...] = ("127.0.0.1",)) -> Pki:
    """A fresh CA per cluster: nothing is shared with other runs on the machine. ``server_ips`` are the
    apiserver's addresses: where it listens, and the `kubernetes` Service's ClusterIP."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("stackgen-test-ca")
    _write_key(pki.key("ca"), ca_key)
    _write_cert(pki.ca_cert, _issue(ca_name, ca_key, ca_name, ca_key, ca=True))

    server_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(pki.key("apiserver"), server_key)
    _write_cert(pki.cert("apiserver"), _issue(
        _name("kube-apiserver"), server_key, ca_name, ca_key,
        server_ips=server_ips,
        server_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")))

    for client, (cn, org) in CLIENTS.items():
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(pki.key(client), key)
        _write_cert(pki.cert(client), _issue(_name(cn, org), key, ca_name, ca_key, client=True))

    # The aggregation layer: a CA that only signs the front proxy's client cert, as kubeadm makes it, so that
    # no other client of the cluster CA can pose as the apiserver to an aggregated API server.
    proxy_ca_key = ec.generate_private_key(ec.SECP256R1())
    proxy_ca_name = _name("stackgen-test-front-proxy-ca")
    _write_cert(pki.front_proxy_ca, _issue(proxy_ca_name, proxy_ca_key, proxy_ca_name, proxy_ca_key, ca=True))
    proxy_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(pki.key(FRONT_PROXY_CLIENT), proxy_key)
    _write_cert(pki.cert(FRONT_PROXY_CLIENT), _issue(_name(FRONT_PROXY_CLIENT), proxy_key, proxy_ca_name,
                                                     proxy_ca_key, client=True))

    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki


def kubeconfig(pki: Pki, client: str, server: str) -> str:
    """A kubeconfig for one client identity; the file references the PEM files (nothing inlined)."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: stackgen-test
  cluster:
    server: {server}
    certificate-authority: {pki.ca_cert}
users:
- name: {client}
  user:
    client-certificate: {pki.cert(client)}
    client-key: {pki.key(client)}
contexts:
- name: stackgen-test
  context: {{cluster: stackgen-test, user: {client}}}
current-context: stackgen-test
"""
