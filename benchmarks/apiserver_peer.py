"""kube-scheduler and our scheduler placing the same pods on one real kube-apiserver.

Theory of operation
-------------------
:func:`compare_on_apiserver` starts one cluster of the test environment
(:class:`pincompute.kubeenv.KubeEnv`: etcd, kube-apiserver, a controller manager
running only the service-account and node-lifecycle controllers, and kwok simulating 5,000 nodes of
scheduler_perf's shape: 4 cpu, 32 GiB, 110 pods).  Then, twice:

1. 10,000 pods of scheduler_perf's default template (100m, 500 MiB) are created
   while no scheduler runs, all naming the scheduler of the phase;
2. the scheduler starts in a process of its own — the real ``kube-scheduler``
   binary (``tools/build-kube.sh kube-scheduler``, default profile) or ours
   (:class:`pincompute.scheduler.Scheduler` through the kubernetes backend, as a
   secondary scheduler, binding through ``pods/binding``) — each with the client
   rate limit lifted to 5,000 requests/s (both default to client-go's 50);
3. a watch in this process times the bindings: pods/s is the pods bound between
   the first and the last binding seen, over that time (both schedulers also write
   a ``Scheduled`` Event per pod, off their binding path); ``*_e2e`` counts from the
   process's start, so it includes start-up and the informers' initial lists.

Between the phases the first phase's pods are left to kwok until Running (so its
status updates do not land in the second phase) and then deleted.  Both phases
share the API server, etcd (the environment's: no fsync) and kwok, on the same
cores; the scheduler is the only thing that differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from peers import peer_dir
from pincompute.kube.backends.kubernetes import connect
from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS, Resource
from pincompute.kubeenv import ClusterSpec, KubeEnv, NodePool
from pincompute.runtime.informer import SharedInformer

NAMESPACE = "sched-peer"
QPS = 5000
SERVICEACCOUNTS = Resource(group="", version="v1", plural="serviceaccounts",
                           kind="ServiceAccount", namespaced=True)
OUR_SCHEDULER = "pincompute"


def pod(name: str, scheduler: str) -> dict[str, Any]:
    """scheduler_perf's pod-default.yaml (pause container, 100m / 500Mi)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"schedulerName": scheduler,
                     "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                     "ports": [{"containerPort": 80}],
                                     "resources": {"limits": {"cpu": "100m", "memory": "500Mi"},
                                                   "requests": {"cpu": "100m",
                                                                "memory": "500Mi"}}}]}}


async def _bounded(coros: list[Any], *, width: int = 64) -> None:
    sem = asyncio.Semaphore(width)

    async def one(c: Any) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


def _kube_scheduler_config(directory: Path, kubeconfig: Path) -> Path:
    path = directory / "kube-scheduler.yaml"
    path.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        f"clientConnection:\n  kubeconfig: {kubeconfig}\n  qps: {QPS}\n  burst: {QPS}\n"
        "leaderElection:\n  leaderElect: false\n")
    return path


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def _phase(client: KubeClient, *, label: str, prefix: str, count: int,
                 argv: list[str], log: Path, others: dict[str, int]) -> dict[str, float]:
    scheduler = "default-scheduler" if label == "kube-scheduler" else OUR_SCHEDULER
    await _bounded([client.create(PODS, pod(f"{prefix}-{i:06d}", scheduler))
                    for i in range(count)])
    listed = await client.list(PODS, namespace=NAMESPACE)
    names = {p["metadata"]["name"] for p in listed.items
             if p["metadata"]["name"].startswith(prefix)}
    assert len(names) == count, f"{len(names)} of {count} pods created"
    bound: dict[str, float] = {}
    done = asyncio.Event()

    def seen(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name in names and name not in bound and (obj.get("spec") or {}).get("nodeName"):
            bound[name] = time.perf_counter()
            if len(bound) == count:
                done.set()

    # An informer (list, then watch, relisting if the watch ends) sees every binding.
    observer = SharedInformer(client, PODS, namespace=NAMESPACE)
    observer.add_event_handler(on_add=seen, on_update=lambda _old, new: seen(new))
    observer.start()
    await observer.wait_synced()
    with open(log, "wb") as out:
        cpu0 = {name: _cpu_seconds(pid) for name, pid in others.items()}
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=out)
        try:
            finished = asyncio.create_task(done.wait())
            exited = asyncio.create_task(proc.wait())
            await asyncio.wait((finished, exited), timeout=max(120, count / 5),
                               return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            exited.cancel()
            cpu = {name: _cpu_seconds(pid) - cpu0[name] for name, pid in others.items()}
            cpu["scheduler"] = _cpu_seconds(proc.pid)
            if not done.is_set():
                tail = log.read_bytes()[-3000:].decode(errors="replace")
                raise RuntimeError(f"{label}: {len(bound)} of {count} pods bound "
                                   f"(exit {proc.returncode}); its log ends:\n{tail}")
        finally:
            proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(proc.wait(), 10)
            await observer.stop()
    first, last = min(bound.values()), max(bound.values())
    return {"pods_per_s": (count - 1) / (last - first), "pods_per_s_e2e": count / (last - start),
            "first_binding_after_s": first - start, "binding_span_s": last - first,
            **{f"cpu_s_{name}": round(v, 1) for name, v in cpu.items()}}


async def _wait_running(client: KubeClient, prefix: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = (await client.list(PODS, namespace=NAMESPACE)).items
        running = sum(1 for p in items if p["metadata"]["name"].startswith(prefix)
                      and (p.get("status") or {}).get("phase") == "Running")
        if running >= count:
            return
        await asyncio.sleep(2)


async def _delete_all(client: KubeClient, prefix: str, count: int) -> None:
    async def one(i: int) -> None:
        with contextlib.suppress(NotFound):
            await client.delete(PODS, f"{prefix}-{i:06d}", namespace=NAMESPACE,
                                grace_period_seconds=0)

    await _bounded([one(i) for i in range(count)])


async def _compare(*, nodes: int, pods: int) -> dict[str, Any]:
    bins = peer_dir("kube-scheduler")
    spec = ClusterSpec("peer", role="member", zone="zone-a",
                       node_pools=(NodePool("perf", nodes=nodes, instance_type="kwok.perf",
                                            cpu="4", memory="32Gi", pods=110),),
                       # Node lifecycle lifts the not-ready taint the API server puts on
                       # every new Node once kwok reports it Ready.
                       controllers=("serviceaccount-controller", "node-lifecycle-controller"))
    print(f"apiserver peer: starting kube-apiserver with {nodes} kwok nodes ...",
          file=sys.stderr, flush=True)
    async with KubeEnv.start(clusters=(spec,), startup_timeout=900) as env:
        cluster = env["peer"]
        client = cluster.client(qps=QPS, burst=QPS)
        try:
            await client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
            for _ in range(300):
                try:
                    await client.get(SERVICEACCOUNTS, "default", namespace=NAMESPACE)
                    break
                except NotFound:
                    await asyncio.sleep(0.2)
            others = {name: cluster.pids[name] for name in ("kube-apiserver", "etcd", "kwok")}
            with tempfile.TemporaryDirectory(prefix="apiserver-peer-") as tmp:
                work = Path(tmp)
                config = _kube_scheduler_config(work, cluster.kubeconfig)
                theirs = await _phase(
                    client, label="kube-scheduler", prefix="ks", count=pods,
                    argv=[str(bins / "kube-scheduler"), f"--config={config}",
                          "--secure-port=0", "-v=1"], log=work / "kube-scheduler.log",
                    others=others)
                print(f"apiserver peer: kube-scheduler {theirs['pods_per_s']:,.0f} pods/s "
                      f"({theirs['pods_per_s_e2e']:,.0f} from its start); cpu s {_cpu(theirs)}",
                      file=sys.stderr, flush=True)
                await _wait_running(client, "ks", pods, timeout=300)
                await _delete_all(client, "ks", pods)
                ours = await _phase(
                    client, label="pincompute", prefix="pc", count=pods,
                    argv=[sys.executable, str(Path(__file__).resolve()), "--run-scheduler",
                          str(cluster.kubeconfig)], log=work / "pincompute.log",
                    others=others)
                print(f"apiserver peer: pincompute {ours['pods_per_s']:,.0f} pods/s "
                      f"({ours['pods_per_s_e2e']:,.0f} from its start); cpu s {_cpu(ours)}",
                      file=sys.stderr, flush=True)
        finally:
            await client.close()
    return {"apiserver_nodes": nodes, "apiserver_pods": pods,
            "apiserver_peer_pods_per_s": round(theirs["pods_per_s"], 1),
            "apiserver_pods_per_s": round(ours["pods_per_s"], 1),
            "apiserver_ratio": round(ours["pods_per_s"] / theirs["pods_per_s"], 2),
            "apiserver_peer_pods_per_s_e2e": round(theirs["pods_per_s_e2e"], 1),
            "apiserver_pods_per_s_e2e": round(ours["pods_per_s_e2e"], 1),
            "apiserver_ratio_e2e": round(ours["pods_per_s_e2e"] / theirs["pods_per_s_e2e"], 2),
            "apiserver_peer_cpu_s": {k[6:]: v for k, v in theirs.items() if k.startswith("cpu_s_")},
            "apiserver_cpu_s": {k[6:]: v for k, v in ours.items() if k.startswith("cpu_s_")}}


def _cpu(figures: dict[str, float]) -> str:
    return ", ".join(f"{k[6:]} {v}" for k, v in figures.items() if k.startswith("cpu_s_"))


def compare_on_apiserver(*, quick: bool = False) -> dict[str, Any]:
    """Both schedulers on one real API server (see the module doc); the figures."""
    nodes, pods = (100, 300) if quick else (5000, 10_000)
    return asyncio.run(_compare(nodes=nodes, pods=pods))


async def _run_scheduler(kubeconfig: str) -> None:
    """Our scheduler alone in this process, as a secondary scheduler of that cluster."""
    from pincompute.gctuning import tune_gc
    from pincompute.scheduler import Scheduler

    tune_gc()
    client = connect(kubeconfig, qps=QPS, burst=QPS)
    try:
        await Scheduler(client).run()
    finally:
        await client.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--run-scheduler":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run_scheduler(sys.argv[2]))
    else:
        raise SystemExit(f"run it through benchmarks/scheduler.py --peer-apiserver "
                         f"({os.path.basename(__file__)} only hosts the scheduler process)")
