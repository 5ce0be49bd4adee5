"""Platform kinds on the host: node images, rotations, pindaemons, pinsidecars."""

from __future__ import annotations

from pincompute.model.registry import NODEIMAGES, PINSIDECARS
from tests.api.conftest import ApiEnv
from tests.waiting import eventually


async def test_platform_kinds_crud(api: ApiEnv) -> None:
    c = api.client
    r = await c.post("/api/v1/nodeimages", json={"metadata": {"name": "base"},
                                                 "spec": {"version": "2026.1.0"}})
    assert r.status_code == 201, r.text
    r = await c.post("/api/v1/nodeimages", json={"metadata": {"name": "ml"}, "spec": {
        "version": "2026.1.0", "type": "ml", "parent": "base"}})
    assert r.status_code == 201, r.text
    r = await c.post("/api/v1/nodeimages", json={"metadata": {"name": "loop"}, "spec": {
        "version": "1.0.0", "parent": "loop"}})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.parent"
    r = await c.post("/api/v1/nodeimages", json={"metadata": {"name": "ns", "namespace": "x"},
                                                 "spec": {"version": "1.0.0"}})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "metadata.namespace"

    async def listed() -> list[str]:
        r = await c.get("/api/v1/nodeimages")
        return [i["metadata"]["name"] for i in r.json()["items"]]

    assert await eventually(lambda: _equals(listed, ["base", "ml"]), what="images listed")
    r = await c.patch("/api/v1/nodeimages/ml", json={"spec": {"type": "general"}})
    assert r.status_code == 422 and "immutable" in r.json()["message"]
    assert (await api.region.host.client.get(NODEIMAGES, "ml"))["spec"]["type"] == "ml"

    sidecar = {"metadata": {"name": "logship"}, "spec": {
        "selector": {"matchLabels": {"logs": "ship"}},
        "containers": [{"name": "shipper", "image": "busybox", "command": ["sleep", "1d"]}]}}
    r = await c.post("/api/v1/pinsidecars", json=sidecar)
    assert r.status_code == 201, r.text
    assert (await api.region.host.client.get(PINSIDECARS, "logship"))["spec"][
        "containers"][0]["type"] == "sidecar"
    r = await c.delete("/api/v1/pinsidecars/logship")
    assert r.status_code == 200
    r = await c.get("/api/v1/rotations")
    assert r.status_code == 200 and r.json()["kind"] == "RotationList"
    r = await c.get("/api/v1/pindaemons/none")
    assert r.status_code == 404


async def _equals(fn, want: list[str]) -> bool:  # type: ignore[no-untyped-def]
    return await fn() == want
