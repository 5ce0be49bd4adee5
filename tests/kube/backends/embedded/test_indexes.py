"""Property test: every indexed read answers exactly what a full scan would."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import AlreadyExists, NotFound
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.kube.selectors import parse_label_selector

NAMES = [f"p{i}" for i in range(6)]
NAMESPACES_ = ["a", "b"]
LABEL_VALUES = ["x", "y"]
NODES = ["", "n1", "n2"]

op = st.tuples(
    st.sampled_from(["create", "relabel", "delete"]),
    st.sampled_from(NAMESPACES_), st.sampled_from(NAMES),
    st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(LABEL_VALUES)),
    st.sampled_from(NODES),
)
SELECTORS = ["app=x", "app=y,tier=x", "tier in (x,y)", "app!=x", "!tier", "app"]


async def _run(ops: list[tuple[str, str, str, dict[str, str], str]]) -> None:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    for ns in NAMESPACES_:
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    for kind, ns, name, labels, node in ops:
        try:
            if kind == "create":
                spec = {"nodeName": node} if node else {}
                await client.create(PODS, {"metadata": {"name": name, "labels": labels},
                                           "spec": spec}, namespace=ns)
            elif kind == "relabel":
                await client.patch(PODS, name, {"metadata": {"labels": None}}, namespace=ns)
                await client.patch(PODS, name, {"metadata": {"labels": labels},
                                                "spec": {"nodeName": node or None}},
                                   namespace=ns)
            else:
                await client.delete(PODS, name, namespace=ns, grace_period_seconds=0)
        except (AlreadyExists, NotFound):
            pass
    everything = (await client.list(PODS)).items
    for text in SELECTORS:
        selector = parse_label_selector(text)
        for ns in [None, *NAMESPACES_]:
            expected = [o["metadata"]["name"] for o in everything
                        if selector.matches(o["metadata"].get("labels"))
                        and (ns is None or o["metadata"]["namespace"] == ns)]
            got = [o["metadata"]["name"] for o in
                   (await client.list(PODS, namespace=ns, label_selector=text)).items]
            assert got == expected, (text, ns)
    for node in NODES[1:]:
        expected = [o["metadata"]["name"] for o in everything
                    if (o.get("spec") or {}).get("nodeName") == node]
        got = [o["metadata"]["name"] for o in
               (await client.list(PODS, field_selector=f"spec.nodeName={node}")).items]
        assert got == expected
    # Pages of every size cover the list exactly once, in order.
    for limit in (1, 2, 5):
        names, token = [], None
        while True:
            page = await client.list(PODS, limit=limit, continue_token=token)
            names += [o["metadata"]["name"] for o in page.items]
            token = page.continue_token
            if not token:
                break
        assert names == [o["metadata"]["name"] for o in everything]
    await store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(op, max_size=40))
def test_indexed_reads_match_full_scans(ops: list) -> None:
    asyncio.run(_run(ops))
