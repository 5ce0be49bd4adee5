"""Label selectors (equality and set-based) and field selectors, on list and watch."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pincompute.kube import ApiError, BadRequest

from .helpers import CONFIGMAPS, PODS, WIDGETS, configmap, names, pod, rv, summary, watching

LABELS = {
    "a": {"env": "prod", "tier": "web"},
    "b": {"env": "dev", "tier": "web"},
    "c": {"env": "prod"},
    "d": {},
    "e": {"env": "staging", "tier": "db", "example.com/owner": "team-1"},
}

CASES = [
    ("env=prod", {"a", "c"}),
    ("env==prod", {"a", "c"}),
    ("env!=prod", {"b", "d", "e"}),
    ("env in (prod,dev)", {"a", "b", "c"}),
    ("env in (prod)", {"a", "c"}),
    ("env notin (prod,staging)", {"b", "d"}),
    ("tier", {"a", "b", "e"}),
    ("!tier", {"c", "d"}),
    ("env=prod,tier", {"a"}),
    ("env=prod,!tier", {"c"}),
    ("env in (prod, staging),tier notin (web)", {"c", "e"}),
    ("example.com/owner=team-1", {"e"}),
    ("env=nope", set()),
    ("", {"a", "b", "c", "d", "e"}),
]


@pytest.fixture
async def labelled(client, ns):
    for name, labels in LABELS.items():
        await client.create(CONFIGMAPS, configmap(name, ns, labels=labels))
    return ns


@pytest.mark.parametrize(("selector", "expected"), CASES, ids=[c[0] or "empty" for c in CASES])
async def test_label_selectors_on_list(client, labelled, selector, expected):
    got = await client.list(CONFIGMAPS, namespace=labelled, label_selector=selector)
    assert set(names(got.items)) == expected


async def test_label_selectors_on_watch(client, ns, harness):
    start = (await client.list(CONFIGMAPS, namespace=ns)).resource_version
    selectors = [s for s, _ in CASES if s]
    async with contextlib.AsyncExitStack() as stack:
        entered = {s: await stack.enter_async_context(watching(
            client.watch(CONFIGMAPS, namespace=ns, resource_version=start, label_selector=s),
            timeout=harness.event_timeout)) for s in selectors}
        for name, labels in LABELS.items():
            await client.create(CONFIGMAPS, configmap(name, ns, labels=labels))
        for selector, expected in CASES:
            if not selector:
                continue
            events = entered[selector]
            got = await events.take(len(expected))
            assert summary(got) == [("ADDED", n) for n in LABELS if n in expected], selector
            assert await events.quiet(0.02) == [], selector


async def test_selector_watch_without_version_lists_only_matches(client, labelled, harness):
    async with watching(client.watch(CONFIGMAPS, namespace=labelled, label_selector="tier"),
                        timeout=harness.event_timeout) as events:
        initial = await events.take(3)
        assert {e.object["metadata"]["name"] for e in initial} == {"a", "b", "e"}
        assert await events.quiet(0.1) == []


async def test_field_selectors_on_name_and_namespace(client, ns, make_namespace):
    other = await make_namespace()
    for n in ("one", "two"):
        await client.create(CONFIGMAPS, configmap(n, ns))
        await client.create(CONFIGMAPS, configmap(n, other))
    got = await client.list(CONFIGMAPS, namespace=ns, field_selector="metadata.name=one")
    assert names(got.items) == ["one"]
    got = await client.list(CONFIGMAPS, namespace=ns, field_selector="metadata.name==one")
    assert names(got.items) == ["one"]
    got = await client.list(CONFIGMAPS, namespace=ns, field_selector="metadata.name!=one")
    assert names(got.items) == ["two"]
    got = await client.list(CONFIGMAPS, field_selector=f"metadata.namespace={other}")
    assert sorted(names(got.items)) == ["one", "two"]
    assert {o["metadata"]["namespace"] for o in got.items} == {other}
    got = await client.list(CONFIGMAPS,
                            field_selector=f"metadata.namespace={other},metadata.name=two")
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in got.items] == [
        (other, "two")]
    got = await client.list(WIDGETS, namespace=ns, field_selector="metadata.name=one")
    assert got.items == []


async def test_field_and_label_selectors_combine(client, ns):
    await client.create(CONFIGMAPS, configmap("x", ns, labels={"k": "v"}))
    await client.create(CONFIGMAPS, configmap("y", ns, labels={"k": "v"}))
    await client.create(CONFIGMAPS, configmap("z", ns, labels={"k": "w"}))
    got = await client.list(CONFIGMAPS, namespace=ns, label_selector="k=v",
                            field_selector="metadata.name!=x")
    assert names(got.items) == ["y"]


async def test_pod_field_selector_on_node_name(client, ns, harness):
    await client.create(PODS, pod("p1", ns, node="node-1"))
    await client.create(PODS, pod("p2", ns, node="node-2"))
    await client.create(PODS, pod("p3", ns))
    try:
        got = await client.list(PODS, namespace=ns, field_selector="spec.nodeName=node-1")
        assert names(got.items) == ["p1"]
        got = await client.list(PODS, namespace=ns, field_selector="spec.nodeName!=node-1")
        assert sorted(names(got.items)) == ["p2", "p3"]
        got = await client.list(PODS, namespace=ns, field_selector="spec.nodeName=")
        assert names(got.items) == ["p3"]

        start = (await client.list(PODS, namespace=ns)).resource_version
        async with watching(client.watch(PODS, namespace=ns, resource_version=start,
                                         field_selector="spec.nodeName=node-2"),
                            timeout=harness.event_timeout) as events:
            await client.create(PODS, pod("p4", ns, node="node-1"))
            p5 = await client.create(PODS, pod("p5", ns, node="node-2"))
            ev = await events.next()
            assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == ("ADDED", "p5", rv(p5))
        async with watching(client.watch(PODS, namespace=ns,
                                         field_selector="spec.nodeName=node-2"),
                            timeout=harness.event_timeout) as events:
            initial = await events.take(2)
            assert sorted(e.object["metadata"]["name"] for e in initial) == ["p2", "p5"]
    finally:
        for name in ("p1", "p2", "p3", "p4", "p5"):
            with contextlib.suppress(ApiError):
                await client.delete(PODS, name, namespace=ns, grace_period_seconds=0)


@pytest.mark.parametrize("selector", [
    "env in (prod", "=prod", "env=prod=x", "env=bad value", "env in prod", "!", "a,,b",
    "bad key=x", "env=" + "v" * 64,
])
async def test_unparseable_label_selector_is_bad_request(client, ns, selector):
    with pytest.raises(BadRequest):
        await client.list(CONFIGMAPS, namespace=ns, label_selector=selector)
    with pytest.raises(BadRequest):
        async with asyncio.timeout(5):
            async for _ in client.watch(CONFIGMAPS, namespace=ns, label_selector=selector):
                pytest.fail("a watch with a bad selector delivered an event")


@pytest.mark.parametrize("selector", ["metadata.name", "spec.bogus=x", "metadata.labels=x"])
async def test_unparseable_or_unsupported_field_selector_is_bad_request(client, ns, selector):
    with pytest.raises(BadRequest):
        await client.list(CONFIGMAPS, namespace=ns, field_selector=selector)
    with pytest.raises(BadRequest):
        async with asyncio.timeout(5):
            async for _ in client.watch(CONFIGMAPS, namespace=ns, field_selector=selector):
                pytest.fail("a watch with a bad selector delivered an event")
