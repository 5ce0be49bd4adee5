"""Watch: ordering, resumption, synthetic ADDED, Gone, BOOKMARKs, selectors, timeouts."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pincompute.kube import Gone

from .helpers import (
    CONFIGMAPS,
    WIDGETS,
    configmap,
    rv,
    summary,
    watching,
    widget,
)

ALSO_MEMORY = True


async def _aclose(stream):
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def _churn_script(client, ns):
    """A fixed sequence of writes; returns [(type, name, resourceVersion-or-None)]."""
    expected = []
    a = await client.create(WIDGETS, widget("a", ns, size=1))
    expected.append(("ADDED", "a", rv(a)))
    a["spec"]["size"] = 2
    a = await client.update(WIDGETS, a)
    expected.append(("MODIFIED", "a", rv(a)))
    b = await client.create(WIDGETS, widget("b", ns, size=1))
    expected.append(("ADDED", "b", rv(b)))
    s = await client.patch(WIDGETS, "b", {"status": {"phase": "x"}}, namespace=ns,
                           subresource="status")
    expected.append(("MODIFIED", "b", rv(s)))
    await client.delete(WIDGETS, "a", namespace=ns)
    expected.append(("DELETED", "a", None))
    c = await client.create(WIDGETS, widget("c", ns, size=1))
    expected.append(("ADDED", "c", rv(c)))
    p = await client.patch(WIDGETS, "c", {"metadata": {"labels": {"l": "1"}}}, namespace=ns)
    expected.append(("MODIFIED", "c", rv(p)))
    await client.delete(WIDGETS, "b", namespace=ns)
    expected.append(("DELETED", "b", None))
    return expected


def _check(events, expected):
    assert summary(events) == [(t, n) for t, n, _ in expected]
    versions = [rv(e) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
    for ev, (_, _, want) in zip(events, expected, strict=True):
        if want is not None:
            assert rv(ev) == want


async def test_watch_from_list_version_sees_every_later_change_in_order(client, ns, harness):
    await client.create(WIDGETS, widget("before", ns))
    listed = await client.list(WIDGETS, namespace=ns)
    async with watching(client.watch(WIDGETS, namespace=ns,
                                     resource_version=listed.resource_version),
                        timeout=harness.event_timeout) as events:
        expected = await _churn_script(client, ns)
        got = await events.take(len(expected))
        assert await events.quiet(0.2) == []
    _check(got, expected)
    assert rv(got[0]) > rv(listed.resource_version)
    deleted_a = got[4]
    assert deleted_a.object["metadata"]["name"] == "a"
    assert deleted_a.object["spec"]["size"] == 2     # its last state


async def test_watch_resumes_from_a_middle_version(client, ns, harness):
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    async with watching(client.watch(WIDGETS, namespace=ns, resource_version=start),
                        timeout=harness.event_timeout) as events:
        expected = await _churn_script(client, ns)
        full = await events.take(len(expected))
    for k in (0, 2, 4, len(full) - 2):
        async with watching(client.watch(WIDGETS, namespace=ns,
                                         resource_version=full[k].resource_version),
                            timeout=harness.event_timeout) as events:
            replay = await events.take(len(full) - k - 1)
            assert await events.quiet(0.2) == []
        assert [(e.type, e.object["metadata"]["name"], e.resource_version) for e in replay] == [
            (e.type, e.object["metadata"]["name"], e.resource_version) for e in full[k + 1:]]


async def test_watch_from_the_latest_version_sees_nothing_old(client, ns, harness):
    await _churn_script(client, ns)
    latest = (await client.list(WIDGETS, namespace=ns)).resource_version
    async with watching(client.watch(WIDGETS, namespace=ns, resource_version=latest),
                        timeout=harness.event_timeout) as events:
        assert await events.quiet(0.2) == []
        d = await client.create(WIDGETS, widget("d", ns))
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == ("ADDED", "d", rv(d))


async def test_watch_without_version_starts_with_synthetic_added(client, ns, harness):
    a = await client.create(WIDGETS, widget("a", ns))
    b = await client.create(WIDGETS, widget("b", ns))
    await client.patch(WIDGETS, "a", {"spec": {"size": 5}}, namespace=ns)
    await client.create(WIDGETS, widget("gone", ns))
    await client.delete(WIDGETS, "gone", namespace=ns)
    existing = {"a", "b"}
    for version in (None, "0"):
        async with watching(client.watch(WIDGETS, namespace=ns, resource_version=version),
                            timeout=harness.event_timeout) as events:
            initial = await events.take(len(existing))
            assert sorted(summary(initial)) == [("ADDED", n) for n in sorted(existing)]
            by_name = {e.object["metadata"]["name"]: e.object for e in initial}
            assert by_name["a"]["spec"]["size"] == 5          # current state, not history
            assert by_name["b"]["metadata"]["uid"] == b["metadata"]["uid"]
            c = await client.create(WIDGETS, widget(f"c-{version or 'none'}", ns))
            existing.add(c["metadata"]["name"])
            ev = await events.next()
            assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == (
                "ADDED", c["metadata"]["name"], rv(c))
            assert rv(ev) > max(rv(e) for e in initial)
    assert a["metadata"]["uid"] == by_name["a"]["metadata"]["uid"]


async def test_watch_is_scoped_to_its_namespace(client, ns, make_namespace, harness):
    other = await make_namespace()
    start = (await client.list(CONFIGMAPS)).resource_version
    async with (
        watching(client.watch(CONFIGMAPS, namespace=ns, resource_version=start),
                 timeout=harness.event_timeout) as mine,
        watching(client.watch(CONFIGMAPS, resource_version=start, field_selector=(
            f"metadata.namespace!={ns}")), timeout=harness.event_timeout) as not_mine,
        watching(client.watch(CONFIGMAPS, resource_version=start),
                 timeout=harness.event_timeout) as everywhere,
    ):
        await client.create(CONFIGMAPS, configmap("x", other))
        await client.create(CONFIGMAPS, configmap("y", ns))
        ev = await mine.next()
        assert (ev.object["metadata"]["namespace"], ev.object["metadata"]["name"]) == (ns, "y")
        ours = []
        while len(ours) < 2:
            e = await everywhere.next()
            if e.object["metadata"]["namespace"] in (ns, other):
                ours.append((e.object["metadata"]["namespace"], e.object["metadata"]["name"]))
        assert ours == [(other, "x"), (ns, "y")]
        while True:
            e = await not_mine.next()
            assert e.object["metadata"]["namespace"] != ns
            if e.object["metadata"]["namespace"] == other:
                break


async def test_many_watchers_see_the_same_sequence(client, ns, harness):
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    async with contextlib.AsyncExitStack() as stack:
        entered = [await stack.enter_async_context(watching(
            client.watch(WIDGETS, namespace=ns, resource_version=start),
            timeout=harness.event_timeout)) for _ in range(5)]
        expected = await _churn_script(client, ns)
        results = [await e.take(len(expected)) for e in entered]
    for got in results:
        _check(got, expected)


@pytest.mark.backend_options(history_size=8)
async def test_too_old_resource_version_is_gone(client, ns, harness):
    await client.create(WIDGETS, widget("churn", ns, size=0))

    async def churn(i):
        await client.patch(WIDGETS, "churn", {"spec": {"size": i + 1}}, namespace=ns)

    old = await harness.too_old_resource_version(client, WIDGETS, ns, churn)
    with pytest.raises(Gone) as exc:
        async with watching(client.watch(WIDGETS, namespace=ns, resource_version=old),
                            timeout=harness.event_timeout) as events:
            await events.next()
    assert exc.value.code == 410

    # The informer's answer to Gone: relist, then watch from the list's version.
    listed = await client.list(WIDGETS, namespace=ns)
    assert [o["metadata"]["name"] for o in listed.items] == ["churn"]
    async with watching(client.watch(WIDGETS, namespace=ns,
                                     resource_version=listed.resource_version),
                        timeout=harness.event_timeout) as events:
        p = await client.patch(WIDGETS, "churn", {"spec": {"size": 0}}, namespace=ns)
        ev = await events.next()
        assert (ev.type, rv(ev)) == ("MODIFIED", rv(p))


@pytest.mark.backend_options(bookmark_interval=0.1)
async def test_bookmarks_arrive_when_allowed(client, ns, harness):
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    a = await client.create(WIDGETS, widget("a", ns))
    async with watching(client.watch(WIDGETS, namespace=ns, resource_version=start,
                                     allow_bookmarks=True, **harness.bookmark_watch_kwargs()),
                        timeout=harness.event_timeout) as events:
        ev = await events.next()
        assert (ev.type, rv(ev)) == ("ADDED", rv(a))
        bookmark = await events.next(bookmarks=True)
        assert bookmark.type == "BOOKMARK"
        meta = bookmark.object.get("metadata") or {}
        assert meta.get("resourceVersion")
        assert rv(bookmark) >= rv(a)
        # A bookmark carries only the resourceVersion: no name, uid, spec or status.
        assert not meta.get("name") and not meta.get("uid")
        assert "spec" not in bookmark.object and "status" not in bookmark.object

    # A bookmark's version is a valid place to resume from.
    async with watching(client.watch(WIDGETS, namespace=ns,
                                     resource_version=bookmark.resource_version),
                        timeout=harness.event_timeout) as events:
        b = await client.create(WIDGETS, widget("b", ns))
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == ("ADDED", "b", rv(b))
        assert rv(ev) > rv(bookmark)


@pytest.mark.backend_options(bookmark_interval=0.1)
async def test_no_bookmarks_unless_allowed(client, ns, harness):
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    async with watching(client.watch(WIDGETS, namespace=ns, resource_version=start,
                                     allow_bookmarks=False),
                        timeout=harness.event_timeout) as events:
        assert await events.quiet(0.6) == []
        assert events.bookmarks == []
        a = await client.create(WIDGETS, widget("a", ns))
        ev = await events.next(bookmarks=True)
        assert (ev.type, rv(ev)) == ("ADDED", rv(a))


async def test_watch_timeout_ends_the_stream(client, ns, harness):
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with watching(client.watch(WIDGETS, namespace=ns, resource_version=start,
                                     timeout_seconds=1),
                        timeout=harness.event_timeout) as events:
        a = await client.create(WIDGETS, widget("a", ns))
        rest = await events.until_end(timeout=harness.event_timeout)
    elapsed = loop.time() - began
    assert [(e.type, rv(e)) for e in rest if e.type != "BOOKMARK"] == [("ADDED", rv(a))]
    assert 0.5 <= elapsed < harness.event_timeout


async def test_label_selector_watch_follows_objects_in_and_out(client, ns, harness):
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    async with watching(client.watch(WIDGETS, namespace=ns, resource_version=start,
                                     label_selector="app=web"),
                        timeout=harness.event_timeout) as events:
        a = await client.create(WIDGETS, widget("a", ns, labels={"app": "web"}))
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == ("ADDED", "a", rv(a))

        out = await client.patch(WIDGETS, "a", {"metadata": {"labels": {"app": "db"}}},
                                 namespace=ns)
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == ("DELETED", "a", rv(out))
        # As the API server's watch cache does: the last state that matched, at the
        # version of the change that made it stop matching.
        assert ev.object["metadata"]["labels"] == {"app": "web"}

        await client.patch(WIDGETS, "a", {"spec": {"size": 7}}, namespace=ns)  # not matching
        await client.create(WIDGETS, widget("other", ns, labels={"app": "db"}))
        back = await client.patch(WIDGETS, "a", {"metadata": {"labels": {"app": "web"}}},
                                  namespace=ns)
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"], rv(ev)) == ("ADDED", "a", rv(back))
        assert ev.object["spec"]["size"] == 7

        mod = await client.patch(WIDGETS, "a", {"spec": {"size": 8}}, namespace=ns)
        ev = await events.next()
        assert (ev.type, rv(ev)) == ("MODIFIED", rv(mod))

        await client.delete(WIDGETS, "other", namespace=ns)
        await client.delete(WIDGETS, "a", namespace=ns)
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"]) == ("DELETED", "a")
        assert await events.quiet(0.2) == []


@pytest.mark.backend_options(watch_buffer=4, history_size=1000)
async def test_a_dropped_watcher_resumes_without_losing_events(client, ns, harness):
    """A slow watcher may be dropped (the stream just ends); re-watching from the last
    version it saw continues exactly where it stopped, as an informer does."""
    start = (await client.list(WIDGETS, namespace=ns)).resource_version
    stream = client.watch(WIDGETS, namespace=ns, resource_version=start, allow_bookmarks=False)
    first = await client.create(WIDGETS, widget("w000", ns))
    seen = []
    async with asyncio.timeout(harness.event_timeout):
        ev = await anext(stream)          # the watch is established and delivering
    seen.append(ev)
    written = [first] + [await client.create(WIDGETS, widget(f"w{i:03d}", ns))
                         for i in range(1, 60)]
    last = seen[-1].resource_version
    rounds = 0
    while len(seen) < len(written):
        rounds += 1
        assert rounds < 100
        try:
            async with asyncio.timeout(harness.event_timeout):
                async for ev in stream:
                    seen.append(ev)
                    last = ev.resource_version
                    if len(seen) == len(written):
                        break
        finally:
            await _aclose(stream)
        stream = client.watch(WIDGETS, namespace=ns, resource_version=last,
                              allow_bookmarks=False)
    await _aclose(stream)
    assert [(e.type, rv(e)) for e in seen] == [("ADDED", rv(o)) for o in written]
