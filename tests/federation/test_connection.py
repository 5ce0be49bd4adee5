"""Resolving MemberCluster connections: each source, its fingerprint, and its failures."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pincompute.federation.connection import ConnectError, Connector, secret_ref_of
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.kubernetes import KubernetesClient
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, SECRETS

from .conftest import SYSTEM, kubeconfig


def member(connection: dict, name: str = "zone-a-1") -> dict:
    return {"metadata": {"name": name}, "spec": {"zone": "zone-a", "connection": connection}}


@pytest.fixture
async def host() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": SYSTEM}})
    yield client
    await store.close()


async def _secret(host: KubeClient, name: str, text: str, *, key: str = "kubeconfig") -> None:
    await host.create(SECRETS, {"metadata": {"name": name}, "data": {
        key: base64.b64encode(text.encode()).decode()}}, namespace=SYSTEM)


async def _fails(connector: Connector, mc: dict) -> ConnectError:
    with pytest.raises(ConnectError) as failure:
        await connector.resolve(mc)
    return failure.value


async def test_embedded_clusters_are_borrowed_from_the_region(host: KubeClient) -> None:
    store = await EmbeddedStore.open(path=None)
    try:
        clients = {"zone-a-1": store.client()}
        connector = Connector(host=host, embedded=clients.get)
        credentials = await connector.resolve(member({"type": "Embedded"}))
        assert credentials.client() is clients["zone-a-1"] and not credentials.owned
        again = await connector.resolve(member({}))  # Embedded is the default
        assert again.fingerprint == credentials.fingerprint
        missing = await _fails(connector, member({"type": "Embedded"}, name="zone-q-1"))
        assert missing.reason == "NoEmbeddedCluster"
        real = await _fails(Connector(host=host), member({"type": "Embedded"}))
        assert "needs type Kubeconfig" in str(real)
    finally:
        await store.close()


async def test_a_kubeconfig_file_and_its_edits(host: KubeClient, tmp_path: Path) -> None:
    path = tmp_path / "member.kubeconfig"
    connector = Connector(host=host)
    mc = member({"type": "Kubeconfig", "kubeconfigPath": str(path)})
    missing = await _fails(connector, mc)
    assert missing.reason == "KubeconfigUnreadable" and str(path) in str(missing)

    path.write_text(kubeconfig())
    credentials = await connector.resolve(mc)
    client = credentials.client()
    try:
        assert isinstance(client, KubernetesClient) and credentials.owned
        assert client.server == "https://127.0.0.1:6443"
    finally:
        await client.close()
    assert (await connector.resolve(mc)).fingerprint == credentials.fingerprint
    path.write_text(kubeconfig(token="rotated"))
    assert (await connector.resolve(mc)).fingerprint != credentials.fingerprint

    path.write_text("not: a kubeconfig")
    broken = await connector.resolve(mc)  # the file reads; building the client fails
    with pytest.raises(ConnectError) as failure:
        broken.client()
    assert failure.value.reason == "InvalidKubeconfig"


async def test_an_inline_kubeconfig(host: KubeClient) -> None:
    connector = Connector(host=host)
    credentials = await connector.resolve(member({"type": "Kubeconfig",
                                                  "kubeconfig": kubeconfig()}))
    client = credentials.client()
    await client.close()
    other = await connector.resolve(member({"type": "Kubeconfig", "context": "main",
                                            "kubeconfig": kubeconfig()}))
    assert other.fingerprint != credentials.fingerprint  # the context is part of it
    bad = await _fails(connector, member({"type": "Kubeconfig", "kubeconfig": "[1, 2]"}))
    assert bad.reason == "InvalidKubeconfig"


async def test_a_kubeconfig_in_a_secret_and_its_rotation(host: KubeClient) -> None:
    connector = Connector(host=host)
    mc = member({"type": "Kubeconfig", "kubeconfigSecretRef": {"name": "zone-a-1"}})
    assert secret_ref_of(mc) == (SYSTEM, "zone-a-1")
    assert secret_ref_of(member({"type": "Embedded"})) is None
    assert (await _fails(connector, mc)).reason == "SecretNotFound"

    await _secret(host, "zone-a-1", kubeconfig(), key="config")
    assert (await _fails(connector, mc)).reason == "SecretKeyMissing"
    keyed = member({"type": "Kubeconfig",
                    "kubeconfigSecretRef": {"name": "zone-a-1", "key": "config"}})
    credentials = await connector.resolve(keyed)
    assert credentials.owned

    secret = await host.get(SECRETS, "zone-a-1", namespace=SYSTEM)
    secret["data"]["config"] = base64.b64encode(kubeconfig(token="new").encode()).decode()
    await host.update(SECRETS, secret)
    assert (await connector.resolve(keyed)).fingerprint != credentials.fingerprint

    secret = await host.get(SECRETS, "zone-a-1", namespace=SYSTEM)
    secret["data"]["config"] = "%%%"
    await host.update(SECRETS, secret)
    assert (await _fails(connector, keyed)).reason == "InvalidKubeconfig"


async def test_a_kubeconfig_secret_outside_the_system_namespace_is_refused(
        host: KubeClient) -> None:
    # The federation may read Secrets in pincompute-system only: a reference elsewhere
    # (a tenant's namespace) is refused before anything is read, and never watched.
    await host.create(NAMESPACES, {"metadata": {"name": "tenant"}})
    await host.create(SECRETS, {"metadata": {"name": "theirs"}, "data": {
        "kubeconfig": base64.b64encode(kubeconfig().encode()).decode()}},
        namespace="tenant")
    mc = member({"type": "Kubeconfig",
                 "kubeconfigSecretRef": {"name": "theirs", "namespace": "tenant"}})
    refused = await _fails(Connector(host=host), mc)
    assert refused.reason == "SecretNamespaceRefused"
    assert "tenant/theirs" in str(refused) and "pincompute-system" in str(refused)
    assert secret_ref_of(mc) is None
