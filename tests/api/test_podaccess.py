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
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    for member in api.region.members:
        await member.client.create(PODS, twin, namespace="demo")
    url = "/api/v1/projects/demo/pods/twin/logs"

    async def ambiguous() -> dict[str, Any] | None:
        r = await api.client.get(url)
        return r.json() if r.status_code == 400 else None

    status = await eventually(ambiguous, what="the pod seen in both clusters")
    assert status["details"]["causes"][0]["field"] == "cluster"
    first = api.region.members[0].name
    # Sim nodes keep no logs and serve no runtime API: said so, not a 500.
    r = await api.client.get(url, params={"cluster": first})
    assert r.status_code == 405 and "serves no logs" in r.json()["message"]
