"""How the federation reaches a member cluster: a MemberCluster's ``spec.connection``.

A connection is read in two steps, so the cluster set can tell whether anything
changed *before* it tears a working member down:

1. :meth:`Connector.resolve` reads what the connection names — the region's
   in-process store for ``Embedded``; for ``Kubeconfig`` the file, the inline
   document, or the Secret on the host — and returns a :class:`Credentials` with a
   **fingerprint**: a digest of everything that decides which server is reached and
   how (type, context, the kubeconfig's bytes).  Editing the MemberCluster, editing
   the file, or rotating the Secret's kubeconfig all change it; anything else
   (labels, taints, status) does not.
2. :meth:`Credentials.client` builds the client.  Embedded stores belong to the
   region, so their clients are borrowed (``owned`` is false: the cluster set must
   not close them); kubeconfig clients are the cluster set's to close.

Kubeconfig Secrets are read from ``pincompute-system`` only: on a real host the
federation's RBAC lets it read Secrets there and nowhere else (least privilege, see
:mod:`pincompute.install`), so a ``kubeconfigSecretRef`` naming another namespace
is refused (``SecretNamespaceRefused``) without asking the server, and never watched.

Every failure is a :class:`ConnectError` with one line saying what is wrong and
where, which the cluster set reports on the MemberCluster and retries with
back-off: a missing file or Secret may appear later, a store may be opened later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from pincompute.kube import objects
from pincompute.kube.backends.kubernetes import (
    KubeConfigError,
    KubernetesClient,
    config_from_text,
)
from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import SECRETS
from pincompute.model.platform import ClusterConnection, SecretKeyRef
from pincompute.model.wellknown import SYSTEM_NAMESPACE

EmbeddedResolver = Callable[[str], KubeClient | None]
"""The region's in-process cluster of a name (``None``: there is none)."""


class ConnectError(Exception):
    """A member cluster cannot be reached; the message is one line saying why."""

    def __init__(self, message: str, *, reason: str = "ConnectFailed") -> None:
        super().__init__(message)
        self.reason = reason


def connection_of(mc: Mapping[str, Any]) -> ClusterConnection:
    """The typed connection of a MemberCluster (defaults applied)."""
    raw = (mc.get("spec") or {}).get("connection") or {}
    try:
        return ClusterConnection.model_validate(raw)
    except pydantic.ValidationError as e:
        # The API server validated it on write; only a hand-edited store gets here.
        raise ConnectError(f"spec.connection is invalid: {e.errors()[0]['msg']}",
                           reason="InvalidConnection") from None


def secret_ref_of(mc: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(namespace, name)`` of the Secret a MemberCluster's kubeconfig is in, if any.

    ``None`` also for a Secret outside ``pincompute-system``: it is refused, not watched.
    """
    try:
        ref = connection_of(mc).kubeconfig_secret_ref
    except ConnectError:
        return None
    if ref is None or ref.namespace != SYSTEM_NAMESPACE:
        return None
    return (ref.namespace, ref.name)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a connection resolved to; :meth:`client` connects."""

    fingerprint: str
    build: Callable[[], KubeClient]
    owned: bool
    """Whether the client is the cluster set's to close (not a borrowed region store)."""

    def client(self) -> KubeClient:
        return self.build()


class Connector:
    """Resolves MemberCluster connections against one host (for Secrets) and region."""

    def __init__(self, *, host: KubeClient, embedded: EmbeddedResolver | None = None,
                 client_options: Mapping[str, Any] | None = None) -> None:
        self.host = host
        self.embedded = embedded
        self.client_options = dict(client_options or {})

    async def resolve(self, mc: Mapping[str, Any]) -> Credentials:
        name = objects.name_of(mc)
        conn = connection_of(mc)
        if conn.type == "Embedded":
            return self._embedded(name)
        if conn.kubeconfig_path is not None:
            return self._from_file(name, conn.kubeconfig_path, conn.context)
        if conn.kubeconfig is not None:
            return self._from_text(conn.kubeconfig, conn.context, source="inline kubeconfig")
        assert conn.kubeconfig_secret_ref is not None  # the model requires one source
        text = await self._read_secret(conn.kubeconfig_secret_ref)
        ref = conn.kubeconfig_secret_ref
        return self._from_text(text, conn.context,
                               source=f"secret {ref.namespace}/{ref.name} key {ref.key}")

    def _embedded(self, name: str) -> Credentials:
        client = self.embedded(name) if self.embedded is not None else None
        if client is None:
            where = ("this region has no embedded cluster of that name"
                     if self.embedded is not None else
                     "a federation on real clusters needs type Kubeconfig")
            raise ConnectError(f"connection type Embedded: {where}", reason="NoEmbeddedCluster")
        return Credentials(fingerprint=_digest("Embedded", name),
                           build=lambda: client, owned=False)

    def _from_file(self, name: str, path: str, context: str | None) -> Credentials:
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as e:
            raise ConnectError(f"kubeconfig {path}: {e.strerror or e}",
                               reason="KubeconfigUnreadable") from None

        def build() -> KubeClient:
            try:
                # The path comes from an object: it could name a file a pod wrote, so
                # no credential plugin it declares is ever run.
                return KubernetesClient.from_kubeconfig(path, context=context,
                                                        allow_exec=False, **self.client_options)
            except KubeConfigError as e:
                raise ConnectError(str(e), reason="InvalidKubeconfig") from None

        # The file's bytes are in the fingerprint: an edited file is a new connection.
        return Credentials(fingerprint=_digest("Kubeconfig", "path", path, context or "",
                                               data.decode(errors="replace")),
                           build=build, owned=True)

    def _from_text(self, text: str, context: str | None, *, source: str) -> Credentials:
        try:
            config = config_from_text(text, context=context, source=source)
        except KubeConfigError as e:
            raise ConnectError(str(e), reason="InvalidKubeconfig") from None

        def build() -> KubeClient:
            try:
                return KubernetesClient(config, **self.client_options)
            except KubeConfigError as e:
                raise ConnectError(f"{source}: {e}", reason="InvalidKubeconfig") from None

        return Credentials(fingerprint=_digest("Kubeconfig", "text", context or "", text),
                           build=build, owned=True)

    async def _read_secret(self, ref: SecretKeyRef) -> str:
        where = f"secret {ref.namespace}/{ref.name}"
        if ref.namespace != SYSTEM_NAMESPACE:
            # The federation may read Secrets in its own namespace only; a reference
            # elsewhere would be a way to make it read (and use) a tenant's Secret.
            raise ConnectError(f"{where}: member kubeconfig Secrets must be in namespace "
                               f"{SYSTEM_NAMESPACE}; move the Secret there",
                               reason="SecretNamespaceRefused")
        try:
            secret = await self.host.get(SECRETS, ref.name, namespace=ref.namespace)
        except NotFound:
            raise ConnectError(f"{where} does not exist", reason="SecretNotFound") from None
        except ApiError as e:
            raise ConnectError(f"{where}: {e.message}", reason="SecretUnreadable") from None
        value = (secret.get("data") or {}).get(ref.key)
        if value is None:
            raise ConnectError(f"{where} has no key {ref.key}", reason="SecretKeyMissing")
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ConnectError(f"{where} key {ref.key} is not base64-encoded UTF-8",
                               reason="InvalidKubeconfig") from None


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()
