"""A member handle: its informers, and what closing it closes."""

from __future__ import annotations

from pincompute.federation.member import MemberHandle
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import NAMESPACES
from pincompute.runtime.informer import InformerFactory


async def test_closing_stops_informers_and_closes_only_owned_clients() -> None:
    store = await EmbeddedStore.open(path=None)
    try:
        closed: list[str] = []
        for owned in (False, True):
            client = store.client()
            client.close = lambda owned=owned: _note(closed, owned)  # type: ignore[method-assign]
            factory = InformerFactory()
            factory.start()
            handle = MemberHandle("m", client, fingerprint="f", owned=owned, informers=factory)
            informer = handle.informer(NAMESPACES)
            assert informer.running and handle.informer(NAMESPACES) is informer
            await handle.close()
            await handle.close()  # idempotent
            assert handle.closed and not informer.running
        assert closed == ["True"]
    finally:
        await store.close()


async def _note(closed: list[str], owned: bool) -> None:
    closed.append(str(owned))
