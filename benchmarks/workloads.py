"""Workload operators benchmark (DESIGN §11, row "workloads"; issue 9 "Performance").

One embedded member cluster in this process, built as ``pincompute up`` builds one:
every member- and node-side controller of the table
(:func:`pincompute.controllers.add_member_controllers`, backend ``embedded``), its
nodes ``sim`` node agents made by the node provisioner from a ``general`` NodePool.
Measured, each against a baseline in the same run on the same cluster:

* ``app_ready_s`` — a PinApp of ``--replicas`` (1,000) replicas, from its create
  until its status says every replica is updated and available;
* ``app_rollout_s`` — a template change (an env var: the pods are replaced, not
  updated in place) with the default strategy (RollingUpdate, 25 % / 25 %) until
  every replica is again updated and available;
* ``job_complete_s`` — a PinJob of ``--completions`` (10,000) completions,
  ``--parallelism`` (500) at a time, each sim pod exiting 0 after
  ``--run-duration`` seconds, until the job is Complete (and ``job_completions_per_s``).

The baselines do the same work as plain Pods driven by a minimal loop through the
client (the same scheduler and sim nodes place and run them; a watch tells the
loop what happened): create N pods and wait until all are Ready; replace them in
batches of maxSurge (delete a batch of old pods, create as many new ones, wait
until they are Ready); keep ``parallelism`` job pods running until
``completions`` have succeeded.  The operators pay for what the loops do not have:
PinPods between a PinApp and its pods, status, events, revisions, finalizers that
count every job pod exactly once.  The ratios are operator time / baseline time.

Each case runs in its own namespace, the baseline first; its pods are deleted (and
gone) before the operator's run, so both find the same nodes.  The operators' objects
stay (the job's 10,000 finished pods are there at the end, as the operator keeps them).

Run: ``python benchmarks/workloads.py [--quick] [--replicas N] [--completions N]``.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pincompute.controllers import NodeOptions, add_member_controllers
from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Gone, NotFound
from pincompute.kube.objects import condition_true
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.model import registry
from pincompute.model.registry import NODEPOOLS, PINAPPS, PINJOBS
from pincompute.model.wellknown import SIM_ANNOTATION_PREFIX, SYSTEM_NAMESPACE
from pincompute.runtime.manager import Manager

CLUSTER = "bench-1"
SCHEDULER = "pincompute"
RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- what is created ------------------------------------------------------------------------------

def container(*, version: int) -> dict[str, Any]:
    return {"name": "web", "image": "registry.local/web:1", "resources": RESOURCES,
            "env": [{"name": "VERSION", "value": str(version)}]}


def pinapp(replicas: int, *, version: int) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "app"}, "spec": {
        "replicas": replicas,
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [container(version=version)],
                              "terminationGracePeriodSeconds": 1}}}}


def pinjob(completions: int, parallelism: int, run_duration: float) -> dict[str, Any]:
    return {"metadata": {"name": "batch", "namespace": "job"}, "spec": {
        "completions": completions, "parallelism": parallelism,
        "template": {"metadata": {"annotations": {
            SIM_ANNOTATION_PREFIX + "run-duration": str(run_duration)}},
            "spec": {"containers": [{"name": "main", "image": "registry.local/batch:1",
                                     "resources": RESOURCES}]}}}}


def plain_pod(name: str, namespace: str, *, version: int = 0,
              run_duration: float | None = None) -> dict[str, Any]:
    annotations = {} if run_duration is None else {
        SIM_ANNOTATION_PREFIX + "run-duration": str(run_duration)}
    spec: dict[str, Any] = {"schedulerName": SCHEDULER, "containers": [container(version=version)],
                            "terminationGracePeriodSeconds": 1}
    if run_duration is not None:
        spec["restartPolicy"] = "Never"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": spec}


# --- the baselines' eyes: one watch on a namespace's pods ----------------------------------------

class PodTracker:
    """Ready and terminal pods of one namespace, from a watch (what a minimal loop sees)."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.ready: set[str] = set()
        self.succeeded: set[str] = set()
        self.failed: set[str] = set()
        self.present: set[str] = set()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            for s in (self.ready, self.present):
                s.discard(name)
            return
        self.present.add(name)
        status = obj.get("status") or {}
        phase = status.get("phase")
        if phase == "Succeeded":
            self.succeeded.add(name)
        elif phase == "Failed":
            self.failed.add(name)
        conds = status.get("conditions") or ()
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            self.ready.add(name)
        else:
            self.ready.discard(name)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        rv = ""
        while True:
            if not rv:
                listed = await self.client.list(PODS, namespace=self.namespace)
                for obj in listed.items:
                    self._apply("ADDED", obj)
                rv = listed.resource_version
                self.changed.set()
            try:
                async for ev in self.client.watch(PODS, namespace=self.namespace,
                                                  resource_version=rv):
                    rv = ev.resource_version or rv
                    if ev.type != "BOOKMARK":
                        self._apply(ev.type, ev.object)
                        self.changed.set()
            except Gone:
                rv = ""

    async def wait(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def create_all(client: KubeClient, objs: list[dict[str, Any]], *,
                     writers: int = 32) -> None:
    it = iter(objs)

    async def writer() -> None:
        for obj in it:
            await client.create(PODS, obj, namespace=obj["metadata"]["namespace"])

    await asyncio.gather(*(writer() for _ in range(writers)))


async def delete_all(client: KubeClient, names: list[str], namespace: str, *,
                     writers: int = 32) -> None:
    it = iter(names)

    async def writer() -> None:
        for name in it:
            with contextlib.suppress(NotFound):
                await client.delete(PODS, name, namespace=namespace)

    await asyncio.gather(*(writer() for _ in range(writers)))


async def clear(client: KubeClient, tracker: PodTracker, *, timeout: float) -> None:
    """Delete a baseline's pods and wait until they are gone (not measured), so the
    operator's run after it finds the nodes as the baseline found them."""
    await delete_all(client, sorted(tracker.present), tracker.namespace)
    await tracker.wait(lambda: not tracker.present, timeout=timeout)
    await tracker.stop()


# --- baselines ----------------------------------------------------------------------------------

async def baseline_app(client: KubeClient, replicas: int, *, timeout: float) -> tuple[float, float]:
    """Plain pods: all created and Ready; then replaced in batches of maxSurge (25 %)."""
    ns = "baseline-app"
    tracker = PodTracker(client, ns)
    await tracker.start()
    names = [f"web-0-{i:05d}" for i in range(replicas)]
    t0 = time.perf_counter()
    await create_all(client, [plain_pod(n, ns) for n in names])
    await tracker.wait(lambda: tracker.ready.issuperset(names), timeout=timeout)
    ready_s = time.perf_counter() - t0
    surge = max(1, -(-replicas * 25 // 100))  # maxSurge 25 %, rounded up as Kubernetes does
    t0 = time.perf_counter()
    for start in range(0, replicas, surge):
        old = names[start:start + surge]
        new = [f"web-1-{i:05d}" for i in range(start, start + len(old))]
        await asyncio.gather(delete_all(client, old, ns),
                             create_all(client, [plain_pod(n, ns, version=1) for n in new]))
        await tracker.wait(lambda new=new: tracker.ready.issuperset(new),  # type: ignore[misc]
                           timeout=timeout)
    rollout_s = time.perf_counter() - t0
    await clear(client, tracker, timeout=timeout)
    return ready_s, rollout_s


async def baseline_job(client: KubeClient, completions: int, parallelism: int,
                       run_duration: float, *, timeout: float) -> float:
    """Plain pods: keep ``parallelism`` running until ``completions`` have succeeded."""
    ns = "baseline-job"
    tracker = PodTracker(client, ns)
    await tracker.start()
    created = 0
    t0 = time.perf_counter()
    async with asyncio.timeout(timeout):
        while len(tracker.succeeded) < completions:
            running = created - len(tracker.succeeded) - len(tracker.failed)
            want = min(parallelism - running, completions - len(tracker.succeeded) - running)
            if want > 0:
                batch = [plain_pod(f"batch-{created + i:06d}", ns, run_duration=run_duration)
                         for i in range(want)]
                created += want
                await create_all(client, batch)
                continue
            tracker.changed.clear()
            await tracker.changed.wait()
    elapsed = time.perf_counter() - t0
    await clear(client, tracker, timeout=timeout)
    return elapsed


# --- the operators --------------------------------------------------------------------------------

async def until(check: Callable[[], Any], *, timeout: float, period: float = 0.1) -> Any:
    """Poll ``check`` (a cheap read of one object) until it returns something true."""
    async with asyncio.timeout(timeout):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(period)


async def app_settled(client: KubeClient, replicas: int) -> bool:
    obj = await client.get(PINAPPS, "web", namespace="app")
    s = obj.get("status") or {}
    return (s.get("observedGeneration") == obj["metadata"]["generation"]
            and (s.get("replicas"), s.get("updatedReplicas"), s.get("availableReplicas"))
            == (replicas, replicas, replicas))


async def operator_app(client: KubeClient, replicas: int, *,
                       timeout: float) -> tuple[float, float]:
    t0 = time.perf_counter()
    await client.create(PINAPPS, pinapp(replicas, version=0), namespace="app")
    await until(lambda: app_settled(client, replicas), timeout=timeout)
    ready_s = time.perf_counter() - t0
    log(f"PinApp: {replicas} replicas available in {ready_s:.2f} s; rolling update")
    t0 = time.perf_counter()
    await client.patch(PINAPPS, "web", {"spec": {"template": {"spec": {
        "containers": [container(version=1)]}}}}, namespace="app")
    await until(lambda: app_settled(client, replicas), timeout=timeout)
    return ready_s, time.perf_counter() - t0


async def operator_job(client: KubeClient, completions: int, parallelism: int,
                       run_duration: float, *, timeout: float) -> tuple[float, dict[str, Any]]:
    async def complete() -> dict[str, Any] | None:
        obj = await client.get(PINJOBS, "batch", namespace="job")
        if condition_true(obj, "Failed"):
            raise SystemExit(f"the PinJob failed: {obj.get('status')}")
        return obj if condition_true(obj, "Complete") else None

    t0 = time.perf_counter()
    await client.create(PINJOBS, pinjob(completions, parallelism, run_duration), namespace="job")
    job = await until(complete, timeout=timeout, period=0.2)
    return time.perf_counter() - t0, job["status"]


# --- the cluster ----------------------------------------------------------------------------------

async def open_cluster(base_dir: Path, *, nodes: int,
                       pods_per_node: int) -> tuple[EmbeddedStore, KubeClient, Manager,
                                                    asyncio.Task[None]]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    client = store.client()
    for ns in (SYSTEM_NAMESPACE, "app", "job", "baseline-app", "baseline-job"):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    manager = Manager(name="bench", shutdown_timeout=5.0)
    add_member_controllers(manager, client=client, cluster=CLUSTER, backend="embedded",
                           nodes=NodeOptions(runtime="sim", base_dir=base_dir,
                                             initial_size=nodes,
                                             config={"record_events": False}))
    await client.create(NODEPOOLS, {"metadata": {"name": "general"}, "spec": {
        "instanceType": "embedded.standard-4", "runtime": "sim",
        "capacity": {"cpu": "64", "memory": "256Gi", "pods": str(pods_per_node)},
        "minSize": 0, "maxSize": nodes, "desiredSize": nodes}})
    task = asyncio.create_task(manager.run())
    await manager.wait_started()

    async def nodes_ready() -> bool:
        items = (await client.list(NODES)).items
        return len(items) == nodes and all(
            condition_true(n, "Ready") and not n["spec"].get("taints") for n in items)

    await until(nodes_ready, timeout=300, period=0.2)
    return store, client, manager, task


async def run(args: argparse.Namespace) -> dict[str, Any]:
    timeout = args.timeout
    with tempfile.TemporaryDirectory(prefix="pincompute-workloads-") as tmp:
        t0 = time.perf_counter()
        store, client, manager, task = await open_cluster(
            Path(tmp), nodes=args.nodes, pods_per_node=args.pods_per_node)
        log(f"{args.nodes} sim nodes ready in {time.perf_counter() - t0:.1f} s")
        try:
            b_ready, b_roll = await baseline_app(client, args.replicas, timeout=timeout)
            log(f"baseline pods: {args.replicas} ready in {b_ready:.2f} s, "
                f"replaced in {b_roll:.2f} s")
            a_ready, a_roll = await operator_app(client, args.replicas, timeout=timeout)
            log(f"PinApp: rolled in {a_roll:.2f} s")
            b_job = await baseline_job(client, args.completions, args.parallelism,
                                       args.run_duration, timeout=timeout)
            log(f"baseline job: {args.completions} completions in {b_job:.2f} s")
            j_s, j_status = await operator_job(client, args.completions, args.parallelism,
                                               args.run_duration, timeout=timeout)
            log(f"PinJob: {args.completions} completions in {j_s:.2f} s "
                f"(succeeded {j_status.get('succeeded')}, failed {j_status.get('failed', 0)})")
            if j_status.get("succeeded") != args.completions:
                raise SystemExit(f"the PinJob counted {j_status.get('succeeded')} successes, "
                                 f"not {args.completions}")
            job_pods = len((await client.list(PODS, namespace="job")).items)
        finally:
            manager.stop(grace_period=2.0)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await store.close()
    return {
        "app_ready_s": round(a_ready, 2), "baseline_app_ready_s": round(b_ready, 2),
        "app_ready_ratio": round(a_ready / b_ready, 2),
        "app_rollout_s": round(a_roll, 2), "baseline_app_rollout_s": round(b_roll, 2),
        "app_rollout_ratio": round(a_roll / b_roll, 2),
        "job_complete_s": round(j_s, 2), "baseline_job_complete_s": round(b_job, 2),
        "job_complete_ratio": round(j_s / b_job, 2),
        "job_completions_per_s": round(args.completions / j_s, 1),
        "baseline_job_completions_per_s": round(args.completions / b_job, 1),
        "job_pods_created": job_pods,
        "replicas": args.replicas, "completions": args.completions,
        "parallelism": args.parallelism, "run_duration_s": args.run_duration,
        "nodes": args.nodes, "peak_rss_mib": round(peak_rss_mib()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small case for smoke tests")
    ap.add_argument("--replicas", type=int)
    ap.add_argument("--completions", type=int)
    ap.add_argument("--parallelism", type=int)
    ap.add_argument("--run-duration", type=float, default=0.5,
                    help="seconds each sim job pod runs before exiting 0")
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--pods-per-node", type=int, default=110)
    ap.add_argument("--timeout", type=float, default=3600.0, help="per phase")
    args = ap.parse_args()
    args.replicas = args.replicas or (100 if args.quick else 1000)
    args.completions = args.completions or (500 if args.quick else 10_000)
    args.parallelism = args.parallelism or (50 if args.quick else 500)
    # Room for both apps at their surge and the jobs' running pods at once.
    need = 2 * args.replicas * 5 // 4 + 2 * args.parallelism
    args.nodes = args.nodes or max(2, -(-need // args.pods_per_node))
    tune_gc()
    log(f"workloads: PinApp {args.replicas} replicas, PinJob {args.completions} completions "
        f"({args.parallelism} parallel, {args.run_duration:g} s each), {args.nodes} sim nodes; "
        f"python {platform.python_version()}, {os.cpu_count()} cpus")
    result = asyncio.run(run(args))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
