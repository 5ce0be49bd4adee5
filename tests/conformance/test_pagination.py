"""Paginated lists: limit and continue cover every object once, in name order."""

from __future__ import annotations

import random
import secrets

import pytest

from pincompute.kube import BadRequest, Gone

from .helpers import CONFIGMAPS, WIDGETS, configmap, names, rv, widget

ALSO_MEMORY = True


async def _pages(client, resource, *, limit, **kwargs):
    pages, token = [], None
    for _ in range(1000):
        page = await client.list(resource, limit=limit, continue_token=token, **kwargs)
        pages.append(page)
        token = page.continue_token
        if not token:
            return pages
    raise AssertionError("pagination did not end")


async def test_pages_cover_every_object_once_in_name_order(client, ns):
    wanted = [f"w{i:02d}" for i in range(23)]
    for name in random.sample(wanted, len(wanted)):
        await client.create(WIDGETS, widget(name, ns))
    pages = await _pages(client, WIDGETS, namespace=ns, limit=5)
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    seen = [o["metadata"]["name"] for p in pages for o in p.items]
    assert seen == wanted
    for i, page in enumerate(pages[:-1]):
        if page.remaining_item_count is not None:
            assert page.remaining_item_count == len(wanted) - 5 * (i + 1)
    # Every page answers at the version of the first: one consistent list.
    assert {p.resource_version for p in pages} == {pages[0].resource_version}


async def test_limit_larger_than_the_collection_needs_no_continue(client, ns):
    for i in range(3):
        await client.create(WIDGETS, widget(f"w{i}", ns))
    page = await client.list(WIDGETS, namespace=ns, limit=10)
    assert [o["metadata"]["name"] for o in page.items] == ["w0", "w1", "w2"]
    assert not page.continue_token
    page = await client.list(WIDGETS, namespace=ns, limit=3)
    assert len(page.items) == 3


async def test_pagination_with_a_label_selector(client, ns):
    expected = []
    for i in range(30):
        odd = i % 2 == 1
        await client.create(WIDGETS, widget(f"w{i:02d}", ns, labels={"odd": str(odd).lower()}))
        if odd:
            expected.append(f"w{i:02d}")
    pages = await _pages(client, WIDGETS, namespace=ns, limit=4, label_selector="odd=true")
    assert all(len(p.items) <= 4 for p in pages)
    assert [o["metadata"]["name"] for p in pages for o in p.items] == expected


async def test_pagination_across_namespaces_orders_by_namespace_then_name(
        client, make_namespace):
    tag = secrets.token_hex(4)
    spaces = sorted([await make_namespace(), await make_namespace()])
    for ns in reversed(spaces):
        for name in ("c", "a", "b"):
            await client.create(CONFIGMAPS, configmap(name, ns, labels={"run": tag}))
    pages = await _pages(client, CONFIGMAPS, limit=2, label_selector=f"run={tag}")
    seen = [(o["metadata"]["namespace"], o["metadata"]["name"]) for p in pages for o in p.items]
    assert seen == [(ns, n) for ns in spaces for n in ("a", "b", "c")]


async def test_continue_pages_are_a_consistent_snapshot(client, ns):
    """Later pages are read at the first page's resourceVersion, as the API server
    does: objects created or deleted meanwhile do not change what the list shows."""
    for i in range(10):
        await client.create(WIDGETS, widget(f"w{i:02d}", ns, size=i))
    first = await client.list(WIDGETS, namespace=ns, limit=4)
    assert [o["metadata"]["name"] for o in first.items] == ["w00", "w01", "w02", "w03"]
    await client.create(WIDGETS, widget("w05a", ns))
    await client.delete(WIDGETS, "w08", namespace=ns)
    await client.patch(WIDGETS, "w09", {"spec": {"size": 99}}, namespace=ns)
    rest = []
    token = first.continue_token
    while token:
        page = await client.list(WIDGETS, namespace=ns, limit=4, continue_token=token)
        assert page.resource_version == first.resource_version
        rest.extend(page.items)
        token = page.continue_token
    assert [o["metadata"]["name"] for o in rest] == [f"w{i:02d}" for i in range(4, 10)]
    assert rest[-1]["spec"]["size"] == 9
    assert all(rv(o) <= rv(first.resource_version) for o in rest)


async def test_full_list_after_pagination_sees_the_changes(client, ns):
    for i in range(6):
        await client.create(WIDGETS, widget(f"w{i}", ns))
    await client.list(WIDGETS, namespace=ns, limit=2)
    await client.delete(WIDGETS, "w1", namespace=ns)
    assert names((await client.list(WIDGETS, namespace=ns)).items) == [
        "w0", "w2", "w3", "w4", "w5"]


@pytest.mark.parametrize("token", ["not-a-token", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "%%%"])
async def test_bad_continue_token_is_rejected(client, ns, token):
    for i in range(3):
        await client.create(WIDGETS, widget(f"w{i}", ns))
    # Kubernetes answers a malformed token with 400 and an expired one with 410.
    with pytest.raises((BadRequest, Gone)):
        await client.list(WIDGETS, namespace=ns, limit=1, continue_token=token)
