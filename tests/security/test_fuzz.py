"""Random and hostile objects against every validator and the store's write path.

Whatever a client sends, the answer is success or a typed API error
(:class:`~pincompute.kube.errors.ApiError`: a 4xx the client can act on), never
another exception (a 500), and a refused write changes nothing (the store's
resourceVersion does not move).

The objects are the seeds of :mod:`._objects` with one value somewhere replaced
by a random JSON value or a hostile one (huge quantities and numbers, deep
nesting, escaping paths, control characters, long strings), plus wholly random
bodies and merge patches.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import ApiError
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, PODS, Resource
from pincompute.model import registry

from ._objects import make

pytestmark = pytest.mark.slow

KINDS = sorted(registry.KINDS)
HOSTILE_STRINGS = [
    "1e9999999", "1e999999", "-1e999999", "1e-999999", "9" * 400, "8Ei", "1e64", "0.9n",
    "NaN", "Infinity", "-0", "", " ", "..", "../../../../etc", "/../../etc/profile.d",
    "/proc/self/root", "a/../../b", "\x00", "\n", "\u202e", "💥", "%s%n", "a" * 5000,
    "kube-system", "default", "pincompute-system", "*/0 * * * *", "@every 0s",
    "99999999999999999999", "-1", "0x10", "1_000",
]
HOSTILE_NUMBERS = [0, -1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), 1e308, -1e308,
                   5e-324, 0.1, float("nan"), float("inf"), float("-inf")]


def _deep(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS), st.sampled_from(HOSTILE_NUMBERS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(
            ["name", "image", "cpu", "memory", "mountPath", "spec", "metadata", "status",
             "containers", "resources", "limits", "requests", "template", "replicas"])),
            children, max_size=4)),
    max_leaves=12,
)
# Deeper values are tried at every path by test_deep_values_anywhere (hypothesis's own
# printer cannot show a failing example thousands of levels deep).
hostile = st.one_of(json_values, st.just(_deep(60)))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.copy(obj)
    out[path[0]] = value if len(path) == 1 else _replace(obj[path[0]], path[1:], value)
    return out


@st.composite
def mutated(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """A seed object of ``kind`` with one value (anywhere) replaced, or a key added."""
    kind = kind or draw(st.sampled_from(KINDS))
    obj = make(kind, name=draw(st.sampled_from(["demo", "kube-system", "a" * 70, "x"])))
    if draw(st.booleans()):
        obj["status"] = draw(st.one_of(json_values, st.just({"phase": "Running"})))
    paths = list(_paths(obj))[1:]  # not the object itself: its kind picks the validator
    path = draw(st.sampled_from(paths))
    target = obj
    for part in path:
        target = target[part]
    if isinstance(target, dict) and draw(st.booleans()):
        key = draw(st.one_of(st.text(max_size=10), st.sampled_from(["cpu", "mountPath"])))
        return _replace(obj, (*path, key), draw(hostile))
    return _replace(obj, path, draw(hostile))


def _call(validate: Any, obj: Any, old: Any) -> None:
    try:
        validate(obj, old)
    except ApiError:
        pass


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=mutated(), on_update=st.booleans())
def test_every_validator_answers_a_mutated_object_with_success_or_an_api_error(
        obj: dict[str, Any], on_update: bool) -> None:
    kind = obj["kind"] if isinstance(obj.get("kind"), str) and obj["kind"] in KINDS else "PinPod"
    validate = registry.validator_for(registry.KINDS[kind].resource)
    old = registry.validate(make(kind)) if on_update else None
    _call(validate, obj, old)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), spec=json_values, status=json_values,
       metadata=json_values)
def test_every_validator_answers_random_objects(kind: str, spec: Any, status: Any,
                                                metadata: Any) -> None:
    validate = registry.validator_for(registry.KINDS[kind].resource)
    obj = {"apiVersion": "pincompute.io/v1alpha1", "kind": kind,
           "metadata": metadata, "spec": spec, "status": status}
    _call(validate, obj, None)
    _call(validate, obj, registry.validate(make(kind)))


@pytest.mark.parametrize("kind", KINDS)
def test_deep_values_anywhere(kind: str) -> None:
    """A value nested as deep as the store takes, at every path of the seed, in every validator.

    (Deeper bodies never reach a validator: the store refuses them as BadRequest, see
    test_bad_input.test_a_deep_body_is_a_bad_request.)
    """
    validate = registry.validator_for(registry.KINDS[kind].resource)
    seed = make(kind)
    deep = _deep(250)
    for path in list(_paths(seed))[1:]:
        _call(validate, _replace(seed, path, deep), None)


# --- the store's write path --------------------------------------------------------------------

class _Harness:
    """One event loop and one memory store for all examples (opening one per example is slow)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store: EmbeddedStore = self.loop.run_until_complete(self._open())

    async def _open(self) -> EmbeddedStore:
        store = await EmbeddedStore.open(path=None)
        registry.install(store)
        await store.client().create(NAMESPACES, {"metadata": {"name": "team"}})
        return store

    def run(self, op: Callable[[Any], Awaitable[None]]) -> None:
        async def go() -> None:
            await asyncio.sleep(0)  # let collections scheduled by earlier writes run first
            await op(self.store.client())

        self.loop.run_until_complete(go())

    async def attempt(self, write: Awaitable[Any]) -> Any:
        """Await one write: success, or an ApiError that changed nothing."""
        rv = self.store.resource_version
        try:
            return await write
        except ApiError:
            assert self.store.resource_version == rv, "a refused write changed the store"
            return None

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[_Harness]:
    h = _Harness()
    yield h
    h.close()


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(obj=mutated(), patch=json_values, update=st.booleans())
def test_the_store_answers_hostile_writes_with_success_or_an_api_error(
        harness: _Harness, obj: dict[str, Any], patch: Any, update: bool) -> None:
    kind = obj["kind"] if isinstance(obj.get("kind"), str) and obj["kind"] in KINDS else "PinPod"
    resource = registry.KINDS[kind].resource
    name = "seed-" + kind.lower()
    namespace = "team" if resource.namespaced else None

    async def op(client: Any) -> None:
        # A valid object to update and patch (created once, kept across examples).
        await harness.attempt(client.create(resource, make(kind, name=name)))
        await harness.attempt(client.create(resource, obj))
        current = await client.get(resource, name, namespace=namespace)
        if update:
            body = copy.deepcopy(obj)
            if isinstance(body.get("metadata"), dict):
                body["metadata"] = {**body["metadata"], "name": name,
                                    "resourceVersion": current["metadata"]["resourceVersion"]}
            await harness.attempt(client.update(resource, body))
            await harness.attempt(client.update_status(resource, body))
        await harness.attempt(client.patch(
            resource, name, patch if isinstance(patch, dict) else {"spec": patch},
            namespace=namespace))

    harness.run(op)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=json_values, patch=json_values, core=st.sampled_from([CONFIGMAPS, PODS]),
       name=st.one_of(st.sampled_from(["cm", "x" * 300, "..", "A", "a/b"]),
                      st.text(max_size=8)))
def test_core_resources_answer_random_bodies_with_success_or_an_api_error(
        harness: _Harness, body: Any, patch: Any, core: Resource, name: str) -> None:
    obj = body if isinstance(body, dict) else {"data": body}
    if not isinstance(obj.get("metadata"), dict):
        obj = {**obj, "metadata": {"name": name}}

    async def op(client: Any) -> None:
        await harness.attempt(client.create(core, obj, namespace="team"))
        await harness.attempt(client.patch(core, name, patch, namespace="team"))

    harness.run(op)
