"""The conventions the member operators share: labels, ownership, shards, status, Events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.names import label_value
from pincompute.kube.objects import set_owner
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NAMESPACES, PODS
from pincompute.kube.selectors import selector_from_dict
from pincompute.member.operator import (
    CREATED,
    NORMAL,
    OWNER_INDEX,
    WARNING,
    event_recorder,
    index_owned,
    is_controlled_by,
    observe,
    owner_selector,
    shard_of,
    workload_labels,
)
from pincompute.member.podtemplate import pod_for
from pincompute.model.wellknown import (
    APP_KIND_LABEL,
    APP_LABEL,
    INDEX_LABEL,
    OWNER_UID_LABEL,
    REVISION_LABEL,
    ROLE_LABEL,
    WORKLOAD_KIND_LABEL,
    WORKLOAD_NAME_LABEL,
)
from pincompute.runtime.informer import SharedInformer
from tests.waiting import eventually


def owner(name: str = "web", uid: str = "u-1", kind: str = "PinApp") -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "default", "uid": uid, "generation": 3},
            "spec": {"replicas": 2}}


def test_workload_labels_name_the_owner_and_are_valid_label_values() -> None:
    labels = workload_labels(owner(), revision="abc", index=2, role="worker")
    assert labels == {OWNER_UID_LABEL: "u-1", WORKLOAD_KIND_LABEL: "pinapp",
                      WORKLOAD_NAME_LABEL: "web", "app.kubernetes.io/name": "web",
                      "app.kubernetes.io/part-of": "pincompute", REVISION_LABEL: "abc",
                      INDEX_LABEL: "2", ROLE_LABEL: "worker", APP_LABEL: "web",
                      APP_KIND_LABEL: "pinapp"}
    long = workload_labels(owner(name="a" * 70 + ".b"))
    assert WORKLOAD_NAME_LABEL not in long and "app.kubernetes.io/name" not in long
    assert APP_LABEL not in long
    assert all(not label_value(v) for v in long.values())


def test_the_app_labels_are_handed_down_the_ownership_chain() -> None:
    """A PinApp's PinPod carries the PinApp's app labels; the PinPod's pod inherits them
    (service discovery groups pods by app)."""
    app = owner(name="web")
    pinpod = owner(name="web-0", uid="u-2", kind="PinPod")
    pinpod["metadata"]["labels"] = workload_labels(app)
    labels = workload_labels(pinpod)
    assert labels[APP_LABEL] == "web" and labels[APP_KIND_LABEL] == "pinapp"
    assert labels[WORKLOAD_NAME_LABEL] == "web-0" and labels[WORKLOAD_KIND_LABEL] == "pinpod"


def test_owner_selector_selects_the_owners_pods_only() -> None:
    template = {"spec": {"containers": [{"name": "main", "image": "x"}]}}
    mine = pod_for(template, name="a", namespace="default", owner=owner(), backend="embedded")
    other = pod_for(template, name="b", namespace="default", owner=owner(uid="u-2"),
                    backend="embedded")
    selector = selector_from_dict({"matchLabels": owner_selector(owner())})
    assert selector.matches(mine["metadata"]["labels"])
    assert not selector.matches(other["metadata"]["labels"])
    assert is_controlled_by(mine, owner()) and not is_controlled_by(other, owner())
    not_controller = set_owner({"metadata": {}}, owner(), controller=False)
    assert not is_controlled_by(not_controller, owner())


async def test_the_owned_index_finds_a_workloads_pods(client: KubeClient) -> None:
    template = {"spec": {"containers": [{"name": "main", "image": "x"}]}}
    pods = SharedInformer(client, PODS)
    assert index_owned(pods) is pods
    index_owned(pods)  # a second operator on the same informer: the same index
    for name, uid in (("a", "u-1"), ("b", "u-2"), ("c", "u-1")):
        pod = pod_for(template, name=name, namespace="default", owner=owner(uid=uid),
                      backend="embedded")
        del pod["metadata"]["ownerReferences"]  # the store would collect an orphan
        await client.create(PODS, pod, namespace="default")
    pods.start()
    try:
        await pods.wait_synced()
        assert sorted(p["metadata"]["name"] for p in pods.by_index(OWNER_INDEX, "u-1")) == \
            ["a", "c"]
    finally:
        await pods.stop()


def test_a_workload_in_a_member_cluster_is_its_own_shard() -> None:
    app = owner()
    assert shard_of(app) is app


def test_observe_stamps_the_generation() -> None:
    app = owner()
    assert observe(app) == {"observedGeneration": 3} and app["status"]["observedGeneration"] == 3
    status: dict[str, Any] = {}
    observe(app, status)
    assert status == {"observedGeneration": 3}


@pytest.fixture
async def client() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    c = store.client()
    await c.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "default"}})
    yield c
    await store.close()


async def test_events_are_written_on_the_workload_and_repeats_aggregated(
        client: KubeClient) -> None:
    recorder = event_recorder(client, operator="pinapps", identity="host-1")
    app = owner()
    for _ in range(3):
        recorder.record(app, NORMAL, CREATED, "created pod web-0")
        await asyncio.sleep(0.02)  # in order: the first write must name the Event
    recorder.record(app, WARNING, "FailedCreate", "quota exceeded")
    async def aggregated() -> list[dict[str, Any]] | None:
        events = (await client.list(EVENTS, namespace="default")).items
        return events if len(events) == 2 and any(e.get("count") == 3 for e in events) else None

    events = await eventually(aggregated, what="two Events, one counted thrice")
    await recorder.close()
    by_reason = {e["reason"]: e for e in events}
    created = by_reason[CREATED]
    assert created["count"] == 3 and created["type"] == NORMAL
    assert created["involvedObject"] == {"apiVersion": app["apiVersion"], "kind": "PinApp",
                                         "name": "web", "namespace": "default", "uid": "u-1"}
    assert created["source"] == {"component": "pinapps-controller", "host": "host-1"}
    assert by_reason["FailedCreate"]["type"] == WARNING
