"""The event recorder: repeats aggregate; pod-controlled messages do not make new Events."""

from __future__ import annotations

import asyncio

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import EVENTS, NAMESPACES
from pincompute.node.events import EventRecorder

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}


async def recorded(recorder: EventRecorder, *events: tuple[str, str]) -> None:
    for reason, message in events:
        recorder.record(POD, "Warning", reason, message)
        await asyncio.gather(*recorder._tasks)


async def test_probe_failures_dedupe_on_reason_with_the_latest_message_and_a_count() -> None:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    recorder = EventRecorder(client, component="test", host="n1")
    await recorded(recorder, *[("Unhealthy", f"Liveness probe failed: output {i}")
                               for i in range(5)])
    await recorded(recorder, ("BackOff", "Back-off restarting a"),
                   ("BackOff", "Back-off restarting b"))
    events = {(e["reason"], e["message"]): e["count"]
              for e in (await client.list(EVENTS, namespace="ns")).items}
    assert events == {("Unhealthy", "Liveness probe failed: output 4"): 5,
                      ("BackOff", "Back-off restarting a"): 1,
                      ("BackOff", "Back-off restarting b"): 1}
    await recorder.close()
    await store.close()


async def test_an_expired_event_is_recorded_anew() -> None:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    recorder = EventRecorder(client, component="test", host="n1")
    await recorded(recorder, ("Unhealthy", "one"))
    [first] = (await client.list(EVENTS, namespace="ns")).items
    await client.delete(EVENTS, first["metadata"]["name"], namespace="ns")
    await recorded(recorder, ("Unhealthy", "two"))
    [again] = (await client.list(EVENTS, namespace="ns")).items
    assert (again["message"], again["count"]) == ("two", 1)
    await recorder.close()
    await store.close()
