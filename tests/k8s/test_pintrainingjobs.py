"""PinTrainingJobs on a real member cluster (kube-apiserver, kwok nodes) through
``pincompute controller member``: a gang that fits is created and bound as a whole; one
that cannot fit is not bound at all (no pod holds room for a group that cannot run)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import PINTRAININGJOBS
from pincompute.model.wellknown import POD_GROUP_LABEL

from .support import create_namespace, eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow

NS = "training"


def training_job(name: str, *, cpu: str, workers: int) -> dict[str, Any]:
    def role(replicas: int) -> dict[str, Any]:
        return {"replicas": replicas, "restartPolicy": "ExitCode", "template": {"spec": {
            "containers": [{"name": "train", "image": "trainer:1", "resources": {
                "requests": {"cpu": cpu, "memory": "64Mi"}}}]}}}
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinTrainingJob",
            "metadata": {"name": name},
            "spec": {"framework": "pytorch",
                     "roles": {"master": role(1), "worker": role(workers)}}}


async def pods_of(client: KubeClient, job: str) -> list[dict[str, Any]]:
    pods = (await client.list(PODS, namespace=NS)).items
    return [p for p in pods if p["metadata"]["name"].startswith(f"{job}-")]


async def test_a_gang_is_bound_together_on_kwok_nodes(kube_env: KubeEnv,
                                                      tmp_path: Path) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0
    proc = start_controller(tmp_path / "member.log", "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    try:
        await create_namespace(client, NS)
        await client.create(PINTRAININGJOBS, training_job("fits", cpu="250m", workers=3),
                            namespace=NS)
        # Each pod of this one fits a node alone; all 21 together fit nowhere.
        await client.create(PINTRAININGJOBS, training_job("too-big", cpu="3", workers=20),
                            namespace=NS)

        async def bound() -> list[dict[str, Any]] | None:
            pods = await pods_of(client, "fits")
            return pods if len(pods) == 4 and all(p["spec"].get("nodeName")
                                                  for p in pods) else None

        pods = await eventually(bound, timeout=60, what="the gang bound by the scheduler")
        assert {p["spec"]["nodeName"] for p in pods} <= set(member.node_names)
        job = await client.get(PINTRAININGJOBS, "fits", namespace=NS)
        assert {p["metadata"]["labels"][POD_GROUP_LABEL] for p in pods} == \
            {job["metadata"]["uid"]}

        async def running() -> dict[str, Any] | None:
            got = await client.get(PINTRAININGJOBS, "fits", namespace=NS)
            return got if (got.get("status") or {}).get("phase") == "Running" else None

        job = await eventually(running, timeout=60, what="kwok to run the gang")
        assert job["status"]["roles"]["worker"]["active"] == 3
        master = next(p for p in await pods_of(client, "fits")
                      if p["metadata"]["name"] == "fits-master-0")

        async def rendezvous() -> dict[str, Any] | None:
            try:
                return await client.get(CONFIGMAPS, "fits-rendezvous", namespace=NS)
            except NotFound:
                return None

        cm = await eventually(rendezvous, timeout=30, what="the rendezvous ConfigMap")
        assert cm["data"] == {"MASTER_ADDR.0": master["status"]["podIP"]}

        async def all_created() -> bool:
            return len(await pods_of(client, "too-big")) == 21

        await eventually(all_created, timeout=30, what="the big gang's pods")
        await asyncio.sleep(2)  # the scheduler has tried them all by now
        assert not any(p["spec"].get("nodeName") for p in await pods_of(client, "too-big"))
    finally:
        assert stop(proc) == 0, (tmp_path / "member.log").read_text()[-3000:]
        await client.delete(NAMESPACES, NS)
        await client.close()
