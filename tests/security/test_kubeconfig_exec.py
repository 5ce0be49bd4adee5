"""Kubeconfigs from objects run nothing on the controller's host and read none of its files.

A MemberCluster (inline kubeconfig or a Secret it points to) is written through the
API, so whoever may write one would otherwise choose a command the control plane
runs (an ``exec`` credential plugin) or a file it reads and sends (``tokenFile``).
The attack: a kubeconfig whose plugin creates a file; the file must never appear.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pincompute.federation.connection import ConnectError, Connector
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.kubernetes import KubeConfigError, KubernetesClient, load_config
from pincompute.kube.backends.kubernetes.client import config_from_text
from pincompute.kube.errors import Unavailable
from pincompute.kube.resource import NAMESPACES, SECRETS
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS

CREDENTIAL = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",
                         "kind": "ExecCredential", "status": {"token": "t"}})


def kubeconfig(user: dict[str, Any], **cluster: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1", **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    })


def exec_plugin(marker: Path) -> dict[str, Any]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "/bin/sh",
                     "args": ["-c", f"touch {marker}; echo '{CREDENTIAL}'"]}}


async def connect(host: EmbeddedStore, name: str) -> None:
    """What the federation's cluster set does with a MemberCluster: resolve, then dial."""
    mc = await host.client().get(MEMBERCLUSTERS, name)
    credentials = await Connector(host=host.client()).resolve(mc)
    client = credentials.client()
    try:
        await client.list(NAMESPACES)
    finally:
        await client.close()  # type: ignore[attr-defined]


@pytest.fixture
async def host() -> AsyncIterator[EmbeddedStore]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    await store.client().create(NAMESPACES, {"metadata": {"name": "pincompute-system"}})
    yield store
    await store.close()


async def test_the_attack_is_real_when_exec_is_allowed(tmp_path: Path) -> None:
    """The control: the same kubeconfig, trusted, does run its plugin."""
    marker = tmp_path / "pwned"
    client = KubernetesClient(config_from_text(kubeconfig(exec_plugin(marker)),
                                               allow_exec=True), retries=1)
    with pytest.raises(Unavailable):  # nothing listens on port 1
        await client.list(NAMESPACES)
    await client.close()
    assert marker.exists()


async def test_an_inline_kubeconfig_in_a_member_cluster_cannot_run_a_plugin(
        host: EmbeddedStore, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    await host.client().create(MEMBERCLUSTERS, {
        "metadata": {"name": "evil"},
        "spec": {"zone": "zone-a", "connection": {
            "type": "Kubeconfig", "kubeconfig": kubeconfig(exec_plugin(marker))}}})
    with pytest.raises(ConnectError, match="credential plugin"):
        await connect(host, "evil")
    assert not marker.exists()


async def test_a_kubeconfig_secret_cannot_run_a_plugin(host: EmbeddedStore,
                                                       tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = kubeconfig(exec_plugin(marker)).encode()
    await host.client().create(SECRETS, {
        "metadata": {"name": "evil-kubeconfig"},
        "data": {"kubeconfig": base64.b64encode(text).decode()}}, namespace="pincompute-system")
    await host.client().create(MEMBERCLUSTERS, {
        "metadata": {"name": "evil"},
        "spec": {"zone": "zone-a", "connection": {
            "type": "Kubeconfig", "kubeconfigSecretRef": {"name": "evil-kubeconfig"}}}})
    with pytest.raises(ConnectError, match="credential plugin"):
        await connect(host, "evil")
    assert not marker.exists()


@pytest.mark.parametrize(("user", "cluster", "message"), [
    ({"auth-provider": {"name": "gcp", "config": {"cmd-path": "/bin/sh"}}}, {},
     "auth-provider"),
    ({"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}, {}, "tokenFile"),
    ({"client-certificate": "/etc/ssl/c.pem", "client-key": "/etc/ssl/k.pem"}, {},
     "client-certificate, client-key"),
    ({"token": "t"}, {"certificate-authority": "/etc/ssl/ca.pem"}, "certificate-authority"),
])
def test_kubeconfig_text_may_not_reach_into_the_host(user: dict[str, Any],
                                                     cluster: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(KubeConfigError, match=message) as err:
        config_from_text(kubeconfig(user, **cluster), source="member cluster evil")
    assert "member cluster evil" in str(err.value) and "\n" not in str(err.value)


def test_yaml_aliases_are_refused() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n"
    with pytest.raises(KubeConfigError, match="aliases"):
        config_from_text(bomb)


def test_embedded_credentials_are_fine() -> None:
    assert config_from_text(kubeconfig({"token": "t"})).user.token == "t"  # type: ignore[union-attr]


def test_the_users_own_file_may_run_a_plugin_unless_told_not_to(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig(exec_plugin(tmp_path / "pwned")))
    assert load_config(path).user.exec is not None  # type: ignore[union-attr]
    with pytest.raises(KubeConfigError, match="credential plugin"):
        load_config(path, allow_exec=False)
    assert not (tmp_path / "pwned").exists()  # loading runs nothing; only a request would


async def test_a_kubeconfig_file_named_by_a_member_cluster_cannot_run_a_plugin(
        host: EmbeddedStore, tmp_path: Path) -> None:
    """The path is the object writer's choice: it may name a file a pod wrote in its volume."""
    marker = tmp_path / "pwned"
    planted = tmp_path / "volume" / "kubeconfig"
    planted.parent.mkdir()
    planted.write_text(kubeconfig(exec_plugin(marker)))
    await host.client().create(MEMBERCLUSTERS, {
        "metadata": {"name": "evil"},
        "spec": {"zone": "zone-a", "connection": {
            "type": "Kubeconfig", "kubeconfigPath": str(planted)}}})
    with pytest.raises(ConnectError, match="credential plugin"):
        await connect(host, "evil")
    assert not marker.exists()
