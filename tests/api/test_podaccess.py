"""Finding a pod across member clusters and choosing its container."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.api.podaccess import DEFAULT_CONTAINER_ANNOTATION, choose_container
from pincompute.kube.errors import BadRequest
from pincompute.kube.resource import PODS
from tests.api.conftest import ApiEnv
from tests.waiting import eventually


def pod(*containers: dict[str, Any], init: tuple[str, ...] = (),
        default: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "p", "namespace": "demo"}
    if default:
        md["annotations"] = {DEFAULT_CONTAINER_ANNOTATION: default}
    return {"metadata": md, "spec": {"containers": list(containers),
                                     "initContainers": [{"name": n} for n in init]}}


@pytest.mark.parametrize(("obj", "asked", "chosen"), [
    (pod({"name": "main"}), None, "main"),
    (pod({"name": "main"}), "main", "main"),
    (pod({"name": "main"}, init=("proxy",)), "proxy", "proxy"),  # native sidecars too
    (pod({"name": "log", "type": "sidecar"}, {"name": "app"}), None, "app"),
    (pod({"name": "a"}, {"name": "b"}, default="b"), None, "b"),
])
def test_the_container_chosen(obj: dict[str, Any], asked: str | None, chosen: str) -> None:
    assert choose_container(obj, asked) == chosen


@pytest.mark.parametrize(("obj", "asked", "words"), [
    (pod({"name": "a"}, {"name": "b"}), None, ["several", "a, b"]),
    (pod({"name": "main"}), "nope", ["nope", "main"]),
])
def test_an_unclear_container_is_a_bad_request(obj: dict[str, Any], asked: str | None,
                                               words: list[str]) -> None:
    with pytest.raises(BadRequest) as err:
        choose_container(obj, asked)
    assert err.value.causes[0].field == "container"
    assert all(w in err.value.message for w in words)


async def test_a_name_in_two_clusters_and_nodes_without_a_runtime_api(api: ApiEnv) -> None:
    twin = {"metadata": {"name": "twin"},
            "spec": {"schedulerName": "pincompute",
                     "containers": [{"name": "main", "image": "busybox"}]}}
    for member in api.region.members:
        await member.client.create(PODS, twin, namespace="demo")
    url = "/api/v1/projects/demo/pods/twin/logs"

    async def ambiguous() -> dict[str, Any] | None:
        r = await api.client.get(url)
        return r.json() if r.status_code == 400 else None

    status = await eventually(ambiguous, what="the pod seen in both clusters")
    assert status["details"]["causes"][0]["field"] == "cluster"
    first = api.region.members[0].name
    # Not on a node yet: the embedded store has no logs to give, and says so.
    r = await api.client.get(url, params={"cluster": first})
    assert r.status_code in (200, 405), r.text

    # On a sim node: simulated containers have no logs and nothing to exec in.
    async def on_a_node() -> dict[str, Any] | None:
        got = await api.region.members[0].client.get(PODS, "twin", namespace="demo")
        return got if got["spec"].get("nodeName") else None

    await eventually(on_a_node, what="the pod bound to a sim node")

    async def refused() -> dict[str, Any] | None:
        r = await api.client.get(url, params={"cluster": first})
        return r.json() if r.status_code == 405 and "sim node" in r.text else None

    status = await eventually(refused, what="logs of a sim pod refused")
    assert "simulated" in status["message"]
    ws = (f"/api/v1/projects/demo/pods/twin/exec?command=true&cluster={first}"
          f"&access_token={api.admin_token}")
    async with api.client.stream("GET", ws, headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
        await r.aread()
    assert r.status_code == 405 and "nothing" not in r.text and "exec" in r.text
