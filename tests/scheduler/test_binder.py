from __future__ import annotations

import pytest

from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import PODS
from pincompute.scheduler.binder import PatchBinder

from .support import for_api, info, pod


async def test_binds_with_the_seen_resource_version(client: KubeClient) -> None:
    created = await client.create(PODS, for_api(pod("p")))
    await PatchBinder(client).bind(info(created), "node-1")
    assert (await client.get(PODS, "p", namespace="default"))["spec"]["nodeName"] == "node-1"


async def test_status_only_changes_do_not_block_the_binding(client: KubeClient) -> None:
    created = await client.create(PODS, for_api(pod("p")))
    await client.patch(PODS, "p", {"status": {"conditions": [{"type": "PodScheduled",
                                                               "status": "False"}]}},
                       namespace="default", subresource="status")
    binder = PatchBinder(client)
    await binder.bind(info(created), "node-1")
    assert binder.retried == 1
    assert (await client.get(PODS, "p", namespace="default"))["spec"]["nodeName"] == "node-1"


async def test_a_changed_pod_is_not_bound_on_stale_grounds(client: KubeClient) -> None:
    created = await client.create(PODS, for_api(pod("p")))
    await client.patch(PODS, "p", {"metadata": {"labels": {"moved": "yes"}}}, namespace="default")
    with pytest.raises(Conflict):
        await PatchBinder(client).bind(info(created), "node-1")
    other = await client.create(PODS, for_api(pod("q")))
    await client.patch(PODS, "q", {"spec": {"nodeName": "elsewhere"}}, namespace="default")
    with pytest.raises(Conflict):
        await PatchBinder(client).bind(info(other), "node-1")


async def test_a_deleted_pod_cannot_be_bound(client: KubeClient) -> None:
    created = await client.create(PODS, for_api(pod("p")))
    await client.delete(PODS, "p", namespace="default")
    with pytest.raises(NotFound):
        await PatchBinder(client).bind(info(created), "node-1")


async def test_binding_subresource_binds_once_and_checks_the_uid(client: KubeClient) -> None:
    from pincompute.scheduler.binder import BindingBinder

    created = await client.create(PODS, for_api(pod("b")))
    binder = BindingBinder(client)
    await binder.bind(info(created), "node-1")
    assert (await client.get(PODS, "b", namespace="default"))["spec"]["nodeName"] == "node-1"
    with pytest.raises(Conflict):
        await binder.bind(info(created), "node-2")
    # A pod deleted and recreated under the same name is not the pod that was decided on.
    await client.delete(PODS, "b", namespace="default", grace_period_seconds=0)
    await client.create(PODS, for_api(pod("b")))
    with pytest.raises(Conflict):
        await binder.bind(info(created), "node-1")
