"""The pods of a workload across member clusters: GET .../{plural}/{name}/pods."""

from __future__ import annotations

from tests.api.conftest import ApiEnv
from tests.api.support import pinapp
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"


async def test_pods_of_an_app_across_member_clusters(api: ApiEnv) -> None:
    c = api.client
    r = await c.post(f"{BASE}/pinapps", json=pinapp("web", replicas=2))
    assert r.status_code == 201, r.text

    async def running() -> list | None:
        r = await c.get(f"{BASE}/pinapps/web/pods")
        assert r.status_code in (200, 404), r.text
        if r.status_code != 200:
            return None
        items = r.json()["items"]
        ok = [p for p in items if p.get("status", {}).get("podIP")
              and p["spec"].get("nodeName")]
        return items if len(ok) == 2 else None

    pods = await eventually(running, timeout=30, what="two pods with IPs on nodes")
    zones = {m.name: m.zone for m in api.region.members}
    for pod in pods:
        labels = pod["metadata"]["labels"]
        cluster = labels["pincompute.io/cluster"]
        assert cluster in zones
        assert labels["topology.kubernetes.io/zone"] == zones[cluster]
        assert pod["spec"]["nodeName"].startswith(cluster)
        assert pod["kind"] == "Pod"
        assert "pincompute.io/container-hashes" not in pod["metadata"].get("annotations", {})
    # Spread over both zones (placement balances zones by default).
    assert len({p["metadata"]["labels"]["pincompute.io/cluster"] for p in pods}) == 2

    # One replica's PinPod name is its pods' workload label.
    replica = pods[0]["metadata"]["labels"]["pincompute.io/workload"]
    r = await c.get(f"{BASE}/pinpods/{replica}/pods")
    assert r.status_code == 404  # replicas are member objects, not host PinPods
    r = await c.get(f"{BASE}/pinapps/nothere/pods")
    assert r.status_code == 404
