"""The reflector against the embedded store: pages, watch, relist on Gone, back-off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pincompute.kube.errors import ApiError, Gone, Unavailable
from pincompute.kube.protocol import ERROR, KubeClient, ObjectList, WatchEvent
from pincompute.kube.resource import CONFIGMAPS, Resource
from pincompute.runtime.backoff import BackoffPolicy
from pincompute.runtime.reflector import Reflector, error_from_event

from .conftest import StoreFactory
from .support import GatedClient, Notifier, configmap

pytestmark = pytest.mark.timeout(20)

FAST = BackoffPolicy(initial=0.001, maximum=0.01)


class Sink:
    """Records what a reflector hands over: ``("begin",)``, ``("page", names)``, ..."""

    def __init__(self) -> None:
        self.calls = Notifier()

    def begin_list(self) -> None:
        self.calls.append(("begin",))

    def list_page(self, items: list[dict[str, Any]]) -> None:
        self.calls.append(("page", [o["metadata"]["name"] for o in items]))

    def end_list(self, resource_version: str) -> None:
        self.calls.append(("end", resource_version))

    def on_event(self, event: WatchEvent) -> None:
        self.calls.append((event.type, event.object["metadata"]["name"]))

    async def wait_for(self, predicate: Callable[[list[Any]], bool]) -> None:
        await self.calls.wait_for(predicate)


@contextlib.asynccontextmanager
async def running(reflector: Reflector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(reflector.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_pages_reach_the_sink_as_they_arrive_then_the_watch(client: KubeClient) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, configmap(f"cm{i}"))
    listed = (await client.list(CONFIGMAPS)).resource_version
    sink = Sink()
    reflector = Reflector(client, CONFIGMAPS, sink, namespace="default", page_size=2)
    assert reflector.resource_version == ""
    async with running(reflector):
        await sink.wait_for(lambda calls: calls and calls[-1][0] == "end")
        assert sink.calls.items == [("begin",), ("page", ["cm0", "cm1"]), ("page", ["cm2", "cm3"]),
                                    ("page", ["cm4"]), ("end", listed)]
        assert reflector.resource_version == listed
        await client.create(CONFIGMAPS, configmap("new"))
        await client.delete(CONFIGMAPS, "cm0", namespace="default")
        await sink.wait_for(lambda calls: len(calls) == 7)
        assert sink.calls.items[-2:] == [("ADDED", "new"), ("DELETED", "cm0")]
        assert reflector.resource_version == (await client.list(CONFIGMAPS)).resource_version


class ChurnAfterFirstPage(GatedClient):
    """Runs ``churn`` right after answering the first page of a paginated list."""

    def __init__(self, inner: KubeClient, churn: Callable[[], Awaitable[None]]) -> None:
        super().__init__(inner)
        self.churn = churn
        self.churned = False

    async def list(self, resource: Resource, **options: Any) -> ObjectList:
        page = await super().list(resource, **options)
        if page.continue_token and not self.churned:
            self.churned = True
            await self.churn()
        return page


async def test_expired_continue_token_starts_the_list_over_in_one_piece(
        make_store: StoreFactory) -> None:
    store = await make_store(history_size=2)
    client = store.client()
    for i in range(5):
        await client.create(CONFIGMAPS, configmap(f"cm{i}"))

    async def churn() -> None:
        # Enough writes to the resource to push its history past the first page's snapshot.
        await client.create(CONFIGMAPS, configmap("late"))
        await client.create(CONFIGMAPS, configmap("filler", "other"))
        for i in range(4):
            await client.patch(CONFIGMAPS, "filler", {"data": {"i": str(i)}}, namespace="other")

    churning = ChurnAfterFirstPage(client, churn)
    sink = Sink()
    reflector = Reflector(churning, CONFIGMAPS, sink, namespace="default", page_size=2)
    async with running(reflector):
        await sink.wait_for(lambda calls: calls and calls[-1][0] == "end")
    assert churning.list_calls == 3  # first page, expired second page, the whole list
    assert sink.calls.items == [
        ("begin",), ("page", ["cm0", "cm1"]),
        ("begin",), ("page", ["cm0", "cm1", "cm2", "cm3", "cm4", "late"]),
        ("end", reflector.resource_version)]


async def test_gone_on_watch_relists(make_store: StoreFactory) -> None:
    store = await make_store(history_size=2)
    client = store.client()
    await client.create(CONFIGMAPS, configmap("a"))
    gated = GatedClient(client)
    sink = Sink()
    reflector = Reflector(gated, CONFIGMAPS, sink, namespace="default", backoff=FAST)
    async with running(reflector):
        await sink.wait_for(lambda calls: calls and calls[-1][0] == "end")
        stale = reflector.resource_version
        gated.disconnect()
        await client.delete(CONFIGMAPS, "a", namespace="default")
        await client.create(CONFIGMAPS, configmap("b"))
        await client.create(CONFIGMAPS, configmap("filler", "other"))
        for i in range(6):
            await client.patch(CONFIGMAPS, "filler", {"data": {"i": str(i)}}, namespace="other")
        del sink.calls.items[:]
        gated.reconnect()
        await sink.wait_for(lambda calls: calls and calls[-1][0] == "end")
        # The resumed watch was refused as too old: a new list, then a watch from it.
        relisted = reflector.resource_version
        assert sink.calls.items == [("begin",), ("page", ["b"]), ("end", relisted)]
        assert gated.list_calls == 2
        await client.create(CONFIGMAPS, configmap("c"))
        await sink.wait_for(lambda calls: calls[-1] == ("ADDED", "c"))
        assert gated.watch_rvs == [stale, stale, relisted]


class FailingWatches(GatedClient):
    """A real client whose next ``failures`` watch calls fail before streaming."""

    def __init__(self, inner: KubeClient, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    async def watch(self, resource: Resource, **options: Any) -> AsyncIterator[WatchEvent]:
        if self.failures > 0:
            self.failures -= 1
            self.watch_rvs.append(options.get("resource_version"))
            raise Unavailable("the server is restarting")
        async for event in super().watch(resource, **options):
            yield event


async def test_watch_errors_back_off_and_resume_from_the_same_resource_version(
        client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("a"))
    flaky = FailingWatches(client, failures=3)
    sink = Sink()
    reflector = Reflector(flaky, CONFIGMAPS, sink, namespace="default", backoff=FAST)
    async with running(reflector):
        await sink.wait_for(lambda calls: calls and calls[-1][0] == "end")
        listed = reflector.resource_version
        await client.create(CONFIGMAPS, configmap("b"))
        await sink.wait_for(lambda calls: calls[-1] == ("ADDED", "b"))
    assert flaky.watch_rvs[:4] == [listed] * 4  # three failures, then the stream
    assert flaky.list_calls == 1                # never relisted


async def test_list_errors_back_off_and_retry(client: KubeClient) -> None:
    widgets = Resource("example.com", "v1", "widgets", "Widget")  # not served: NotFound
    gated = GatedClient(client)
    sink = Sink()
    reflector = Reflector(gated, widgets, sink, backoff=FAST)
    async with running(reflector):
        await gated.wait_lists(4)
    assert all(call == ("begin",) for call in sink.calls.items)


def test_error_events_become_their_errors() -> None:
    gone = error_from_event(WatchEvent(ERROR, {"kind": "Status", "code": 410,
                                               "reason": "Expired", "message": "too old"}))
    assert isinstance(gone, Gone) and "too old" in gone.message
    other = error_from_event(WatchEvent(ERROR, {"kind": "Status", "code": 500,
                                                "message": "boom"}))
    assert isinstance(other, ApiError) and not isinstance(other, Gone)
    assert other.code == 500
