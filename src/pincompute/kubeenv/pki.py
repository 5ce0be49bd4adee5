"""The environment's credentials: a certificate authority, serving certificates, signing
keys, static tokens and the kubeconfigs that carry them.

Theory of operation
-------------------
One throw-away :class:`CertificateAuthority` (ECDSA P-256, made with
``cryptography``, valid for thirty days from five minutes ago so clock skew between
processes does not matter) signs every API server's serving certificate, so
kubeconfigs verify TLS for real.  A serving certificate names the loopback address,
the first service IP and the in-cluster DNS names of the ``kubernetes`` service.  Each
cluster gets its own service-account signing key pair and random static tokens, one
per identity of :data:`TOKEN_USERS` (``--token-auth-file``); all are in
``system:masters``, so RBAC authorises them without bindings.  A kubeconfig embeds
the CA and one token; :func:`combined_kubeconfig` holds one context per cluster.
Nothing here touches the file system.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "TOKEN_USERS", "CertificateAuthority", "ServingCertificate", "combined_kubeconfig",
    "kubeconfig", "new_tokens", "signing_key_pair", "token_auth_file",
]

#: The static-token identities of a cluster: who (the key of :func:`new_tokens`),
#: user name and uid.  The controller manager authenticates as itself so that its
#: requests are recognisable in the API server's log.
TOKEN_USERS: tuple[tuple[str, str, str], ...] = (
    ("admin", "admin", "admin-uid"),
    ("kcm", "system:kube-controller-manager", "kcm-uid"),
    ("kwok", "kwok", "kwok-uid"),
)
_GROUP = "system:masters"
_CA_NAME = "pincompute-kubeenv-ca"
#: What a serving certificate is valid for: loopback, the ``kubernetes`` service's IP
#: (first of the service range) and that service's DNS names.
_SERVING_IPS = ("127.0.0.1", "10.96.0.1")
_SERVING_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                  "kubernetes.default.svc.cluster.local")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ServingCertificate:
    """A TLS server's certificate and private key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """The environment's certificate authority; :meth:`new` makes one."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def new(cls) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
        not_before, not_after = _validity()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return cls(key=key, cert=cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def serving_certificate(self, *, cn: str) -> ServingCertificate:
        """A new key and a server certificate for it (common name ``cn``) signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = _validity()
        sans: list[x509.GeneralName] = [
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in _SERVING_IPS),
            *(x509.DNSName(n) for n in _SERVING_NAMES),
        ]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_encipherment=False, key_cert_sign=False,
                    crl_sign=False, content_commitment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))
        return ServingCertificate(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                                  key_pem=_key_pem(key))


def signing_key_pair() -> tuple[bytes, bytes]:
    """A new service-account token signing key: (private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return _key_pem(key), public


def new_tokens() -> dict[str, str]:
    """A fresh random token for each identity of :data:`TOKEN_USERS`, by who."""
    return {who: secrets.token_urlsafe(32) for who, _, _ in TOKEN_USERS}


def token_auth_file(tokens: Mapping[str, str]) -> bytes:
    """The API server's ``--token-auth-file`` (CSV) for ``tokens`` from :func:`new_tokens`."""
    return "".join(f'{tokens[who]},{user},{uid},"{_GROUP}"\n'
                   for who, user, uid in TOKEN_USERS).encode()


def _dump(config: Mapping[str, Any]) -> bytes:
    text: str = yaml.safe_dump(config, sort_keys=False)
    return text.encode()


def kubeconfig(name: str, server: str, ca_pem: bytes, token: str) -> bytes:
    """A kubeconfig of one cluster, one user (``token``) and one context, all ``name``."""
    return _dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": f"{name}-user", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-user",
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    })


def combined_kubeconfig(clusters: Iterable[tuple[str, str, str]], ca_pem: bytes) -> bytes:
    """A kubeconfig with a context per ``(name, server, admin token)``, the first current."""
    ca_data = base64.b64encode(ca_pem).decode()
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [],
                              "users": [], "contexts": [], "preferences": {}}
    for name, server, token in clusters:
        config["clusters"].append({"name": name, "cluster": {
            "server": server, "certificate-authority-data": ca_data}})
        config["users"].append({"name": f"{name}-admin", "user": {"token": token}})
        config["contexts"].append({"name": name, "context": {
            "cluster": name, "user": f"{name}-admin", "namespace": "default"}})
    config["current-context"] = config["contexts"][0]["name"]
    return _dump(config)
