"""Limits every backend enforces the same way: object size and patch depth are 4xx answers.

An object over etcd's request limit (1.5 MiB) is RequestEntityTooLarge (413): the
embedded store says so itself; a real API server answers etcd's "request is too
large" as a 500, which the kubernetes backend maps to the same error.  A merge
patch nested too deep is a BadRequest (400) on both, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube import BadRequest
from pincompute.kube.errors import RequestEntityTooLarge
from pincompute.kube.patch import MAX_DEPTH

from .helpers import widget
from .widget import WIDGETS

# Comfortably over etcd's 1.5 MiB and under kube-apiserver's 3 MiB body limit, so on a
# real cluster it is etcd that refuses.
OVER = 2 * 2**20


def _tags(total: int) -> list[str]:
    return ["x" * 1000] * (total // 1000)


async def test_an_object_over_the_limit_is_refused_with_413(client, ns):
    with pytest.raises(RequestEntityTooLarge) as err:
        await client.create(WIDGETS, widget("big", ns, tags=_tags(OVER)))
    assert err.value.code == 413
    created = await client.create(WIDGETS, widget("small", ns, tags=_tags(10_000)))
    with pytest.raises(RequestEntityTooLarge):
        await client.patch(WIDGETS, "small", {"spec": {"tags": _tags(OVER)}}, namespace=ns)
    current = await client.get(WIDGETS, "small", namespace=ns)
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    # Just under the limit is fine.
    await client.patch(WIDGETS, "small", {"spec": {"tags": _tags(1_400_000)}}, namespace=ns)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
async def test_a_patch_nested_too_deep_is_a_bad_request(client, ns, depth):
    created = await client.create(WIDGETS, widget("w", ns))
    with pytest.raises(BadRequest) as err:
        await client.patch(WIDGETS, "w", {"spec": {"config": _nested(depth)}}, namespace=ns)
    assert err.value.code == 400
    current = await client.get(WIDGETS, "w", namespace=ns)
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
