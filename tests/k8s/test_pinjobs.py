"""A PinJob reaches its counts on kwok nodes through ``pincompute controller member``.

kwok runs the pods (its ``pod-ready`` stage makes them Running) but finishes only pods
owned by a ``Job`` (its ``pod-complete`` stage; the stages come from kwok's own source), so
PinJob pods never succeed by themselves: the test checks the running count (parallelism),
then finishes each running pod as a kubelet would (status ``Succeeded``, exit code 0) and
checks the job counts them to its completions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pincompute.kube import NotFound
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, PODS, SERVICES
from pincompute.kubeenv import KubeEnv
from pincompute.model.base import GROUP, VERSION
from pincompute.model.registry import PINJOBS
from pincompute.model.wellknown import JOB_TRACKING_FINALIZER, OWNER_UID_LABEL

from .support import create_namespace, eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow



async def test_a_pinjob_reaches_its_completions_on_kwok_nodes(
        kube_env: KubeEnv, tmp_path: Path) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0
    proc = start_controller(tmp_path / "member.log", "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    ns = "jobs"
    try:
        await create_namespace(client, ns)
        await client.create(PINJOBS, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "PinJob",
            "metadata": {"name": "batch", "namespace": ns},
            "spec": {"completions": 6, "parallelism": 3, "completionMode": "Indexed",
                     "template": {"spec": {"containers": [
                         {"name": "main", "image": "busybox:1.36",
                          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}},
            namespace=ns)

        async def pods_of_job() -> list[dict]:
            job = await client.get(PINJOBS, "batch", namespace=ns)
            return list((await client.list(PODS, namespace=ns, label_selector=(
                f"{OWNER_UID_LABEL}={job['metadata']['uid']}"))).items)

        async def three_running() -> list[dict] | None:
            status = (await client.get(PINJOBS, "batch", namespace=ns)).get("status") or {}
            running = [p for p in await pods_of_job()
                       if (p.get("status") or {}).get("phase") == "Running"]
            return running if len(running) == 3 and status.get("active") == 3 else None

        finished: set[str] = set()
        while len(finished) < 6:
            for pod in await eventually(three_running, timeout=60, what="3 running pods"):
                if pod["metadata"]["name"] in finished:
                    continue
                now = "2026-01-01T00:00:00Z"
                pod["status"]["phase"] = "Succeeded"
                pod["status"]["containerStatuses"] = [
                    {"name": "main", "image": "busybox:1.36", "imageID": "", "ready": False,
                     "restartCount": 0, "started": False,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                              "startedAt": now, "finishedAt": now}}}]
                await client.update_status(PODS, pod)
                finished.add(pod["metadata"]["name"])
                if len(finished) == 6:
                    break

        async def done() -> dict | None:
            status = (await client.get(PINJOBS, "batch", namespace=ns)).get("status") or {}
            uncounted = status.get("uncountedTerminatedPods") or {}
            return status if status.get("phase") == "Succeeded" and not uncounted.get(
                "succeeded") else None

        status = await eventually(done, timeout=60, what="the job's completions")
        assert status["succeeded"] == 6 and status["completedIndexes"] == "0-5"
        job = await client.get(PINJOBS, "batch", namespace=ns)
        pods = (await client.list(PODS, namespace=ns, label_selector=(
            f"{OWNER_UID_LABEL}={job['metadata']['uid']}"))).items
        assert len(pods) == 6
        assert {p["spec"]["nodeName"] for p in pods} <= set(member.node_names)
        assert not any(JOB_TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())
                       for p in pods)

        # a job with a replicated group: stable hostnames, a headless Service, the file
        await client.create(PINJOBS, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "PinJob",
            "metadata": {"name": "set", "namespace": ns},
            "spec": {"groups": [{"name": "worker", "replicas": 2}],
                     "template": {"spec": {"containers": [
                         {"name": "main", "image": "busybox:1.36",
                          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}},
            namespace=ns)

        async def discovery() -> str | None:
            try:
                cm = await client.get(CONFIGMAPS, "set-hosts", namespace=ns)
            except NotFound:
                return None
            text = (cm.get("data") or {}).get("hosts") or ""
            return text if text.count("\n") == 2 else None

        text = await eventually(discovery, timeout=60, what="the discovery file")
        assert [line.split()[1] for line in text.splitlines()] == ["set-worker-0",
                                                                   "set-worker-1"]
        service = await client.get(SERVICES, "set", namespace=ns)
        assert service["spec"]["clusterIP"] == "None"
        pod = await client.get(PODS, "set-worker-1", namespace=ns)
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("set-worker-1", "set")
        assert any(v.get("configMap", {}).get("name") == "set-hosts"
                   for v in pod["spec"]["volumes"])
    finally:
        assert stop(proc) == 0, (tmp_path / "member.log").read_text()[-3000:]
        # With the operator gone nobody releases the pods' tracking finalizers: do it here,
        # so the namespace really goes and leaves nothing for the tests after this one.
        for pod in (await client.list(PODS, namespace=ns)).items:
            try:
                await client.patch(PODS, pod["metadata"]["name"],
                                   {"metadata": {"finalizers": None}}, namespace=ns)
            except NotFound:
                pass
        await client.delete(NAMESPACES, ns)
        await client.close()
