"""The real-cluster environment itself: clusters answer, nodes are Ready and labelled, the
controller manager collects garbage and watches nodes, and nothing outlives it."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pincompute.kube import NotFound
from pincompute.kube.objects import owner_reference
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, NODES, PODS
from pincompute.kubeenv import (
    INSTANCE_TYPE_LABEL,
    KUBE_BIN_ENV,
    POOL_LABEL,
    ZONE_LABEL,
    ClusterSpec,
    KubeBinariesMissing,
    KubeEnv,
    KubeEnvError,
    KubeEnvStartupError,
    NodePool,
    find_binaries,
    sweep_stale,
)
from tests import kubeenv_fixture
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def ready(node: dict[str, Any]) -> str | None:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status")
    return None


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line names ``text`` (e.g. a work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# --- the session environment --------------------------------------------------------------------

async def test_every_cluster_answers_version_through_our_client(kube_env: KubeEnv) -> None:
    version = dict(line.split("=", 1) for line in
                   (kube_env.bin_dir / "VERSION").read_text().splitlines() if "=" in line)  # type: ignore[operator]
    assert [c.role for c in kube_env.clusters.values()] == ["host", "member", "member"]
    for cluster in kube_env.clusters.values():
        client = cluster.client()
        try:
            # The protocol has no discovery call; /version goes through the client's transport.
            answer = await client._send("GET", "/version")
            assert answer["gitVersion"] == version["kubernetes"], cluster.name
            namespaces = {n["metadata"]["name"] for n in await client.list(NAMESPACES)}
            assert {"default", "kube-system", "kube-node-lease"} <= namespaces
        finally:
            await client.close()


def test_kubeconfigs_verify_tls_with_the_generated_ca(kube_env: KubeEnv) -> None:
    assert kube_env.kubeconfig is not None
    combined = yaml.safe_load(kube_env.kubeconfig.read_text())
    assert [c["name"] for c in combined["contexts"]] == list(kube_env.clusters)
    for cluster in kube_env.clusters.values():
        config = yaml.safe_load(cluster.kubeconfig.read_text())
        entry = config["clusters"][0]["cluster"]
        assert entry["server"] == cluster.server.rstrip("/")
        assert entry["certificate-authority-data"]
        assert not entry.get("insecure-skip-tls-verify")
        assert config["users"][0]["user"]["token"] == cluster.token
        assert cluster.kubeconfig.stat().st_mode & 0o077 == 0  # holds a credential


async def test_member_nodes_are_ready_with_zone_pool_and_instance_type(kube_env: KubeEnv) -> None:
    assert [m.zone for m in kube_env.members] == ["zone-a", "zone-b"]
    for member in kube_env.members:
        client = member.client()
        try:
            nodes = {n["metadata"]["name"]: n for n in await client.list(NODES)}
        finally:
            await client.close()
        assert sorted(nodes) == sorted(member.node_names)
        assert len(nodes) == 3
        pools = {}
        for name, node in nodes.items():
            labels = node["metadata"]["labels"]
            assert ready(node) == "True", name
            assert labels[ZONE_LABEL] == member.zone
            pools[name] = labels[POOL_LABEL]
            assert labels[INSTANCE_TYPE_LABEL].startswith("kwok.")
            assert node["status"]["capacity"]["pods"] == "110"
        assert sorted(pools.values()) == ["general", "general", "highmem"]
        highmem = next(n for n, p in pools.items() if p == "highmem")
        assert nodes[highmem]["status"]["allocatable"]["memory"] == "64Gi"
    host = kube_env.host.client()
    try:
        assert len(await host.list(NODES)) == 0
    finally:
        await host.close()


async def test_a_pod_created_through_our_client_is_listed_and_run_by_kwok(
        kube_env: KubeEnv) -> None:
    member = kube_env["member-a"]
    client = member.client()
    name = f"k8s-{secrets.token_hex(4)}"
    node = member.node_names[0]
    try:
        await client.create(PODS, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"test": name}},
            "spec": {"nodeName": node,
                     "containers": [{"name": "main", "image": "busybox:1.36"}]}})
        listed = await client.list(PODS, namespace="default", label_selector=f"test={name}")
        assert [p["metadata"]["name"] for p in listed] == [name]
        assert listed.items[0]["spec"]["nodeName"] == node

        async def running() -> bool:
            pod = await client.get(PODS, name, namespace="default")
            return (pod.get("status") or {}).get("phase") == "Running"

        await eventually(running, timeout=30, what="kwok to run the pod")
        await client.delete(PODS, name, namespace="default")

        async def deleted() -> bool:  # kwok finishes graceful deletion as a kubelet would
            try:
                await client.get(PODS, name, namespace="default")
            except NotFound:
                return True
            return False

        await eventually(deleted, timeout=30, what="kwok to finish deleting the pod")
    finally:
        await client.close()


async def test_the_controller_manager_collects_garbage(kube_env: KubeEnv) -> None:
    client = kube_env.host.client()
    ns = "default"
    suffix = secrets.token_hex(4)

    def cm(name: str, owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": f"{name}-{suffix}", "namespace": ns}
        if owners:
            meta["ownerReferences"] = owners
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}

    try:
        owner = await client.create(CONFIGMAPS, cm("owner"))
        await client.create(CONFIGMAPS, cm("dependent", [owner_reference(owner)]))
        # A dependent whose owner never existed (a dangling reference) goes too.
        await client.create(CONFIGMAPS, cm("dangling", [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": f"ghost-{suffix}",
            "uid": "00000000-0000-0000-0000-000000000001"}]))
        await client.delete(CONFIGMAPS, f"owner-{suffix}", namespace=ns,
                            propagation_policy="Background")

        async def collected() -> bool:
            left = {c["metadata"]["name"] for c in await client.list(CONFIGMAPS, namespace=ns)}
            return not left & {f"dependent-{suffix}", f"dangling-{suffix}"}

        await eventually(collected, timeout=60, what="the garbage collector")
    finally:
        await client.close()


@pytest.mark.slow
async def test_node_lifecycle_marks_a_silent_node_unknown(kube_env: KubeEnv) -> None:
    """A node nobody heartbeats for (no kwok annotation, no lease renewals) turns
    Ready=Unknown once the shortened node-monitor grace period has passed."""
    member = kube_env["member-b"]
    client = member.client()
    name = f"member-b-silent-{secrets.token_hex(3)}"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        await client.create(NODES, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {ZONE_LABEL: "zone-b", POOL_LABEL: "silent"}},
            "status": {"capacity": {"cpu": "1", "memory": "1Gi", "pods": "10"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "Test",
                                       "lastHeartbeatTime": now,
                                       "lastTransitionTime": now}]}})
        started = time.monotonic()

        async def unknown() -> bool:
            return ready(await client.get(NODES, name)) == "Unknown"

        await eventually(unknown, timeout=60, what="node lifecycle to notice the silent node")
        assert time.monotonic() - started < 45

        async def tainted() -> bool:
            # The controller writes the condition, then the taint: on a busy machine the
            # second write may come a moment later.
            node = await client.get(NODES, name)
            return "node.kubernetes.io/unreachable" in {
                t["key"] for t in node["spec"].get("taints") or ()}

        await eventually(tainted, timeout=20, what="the unreachable taint")
    finally:
        try:
            await client.delete(NODES, name)
        except NotFound:
            pass
        await client.close()


# --- environments of their own ------------------------------------------------------------------

@pytest.mark.slow
async def test_teardown_leaves_no_process_and_no_files(kube_bin: Path, tmp_path: Path) -> None:
    # The binaries alone, without build-kube.sh's kwok-stages.yaml: kwok gets the
    # module's own copy of the default stages (and must still make the node Ready).
    bare = tmp_path / "bin"
    bare.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kwok"):
        (bare / name).symlink_to(kube_bin / name)
    work = tmp_path / "env"
    spec = ClusterSpec("solo", role="member", zone="zone-z",
                       node_pools=(NodePool("tiny", nodes=1, cpu="1", memory="1Gi"),))
    async with KubeEnv.start(clusters=(spec,), work_dir=work, bin_dir=bare) as env:
        pids = env.pids()
        assert sorted(env["solo"].pids) == sorted(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kwok"])
        assert all(Path(f"/proc/{pid}").exists() for pid in pids)
        assert (work / "solo" / "logs" / "kube-apiserver.log").stat().st_size > 0
        client = env["solo"].client()
        try:
            assert len(await client.list(NODES)) == 1
        finally:
            await client.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert processes_mentioning(str(work)) == []
    assert not work.exists()


async def test_a_failed_start_reports_the_log_tail_and_leaks_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kwok"):
        script = fake / name
        script.write_text("#!/bin/sh\nsleep 600\n")
        script.chmod(0o755)
    (fake / "kube-apiserver").write_text(
        "#!/bin/sh\necho 'E0101 starting: the flux capacitor is unplugged' >&2\nexit 3\n")
    # etcd that never becomes healthy would wait for the deadline; make it answer instead.
    (fake / "etcd").write_text(f"""#!{sys.executable}
import http.server, sys
port = int([a for a in sys.argv if a.startswith("--listen-client-urls=")][0].rsplit(":", 1)[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{{"health":"true"}}')
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
""")
    work = tmp_path / "env"
    env = KubeEnv(clusters=(ClusterSpec("broken", role="host"),), work_dir=work, bin_dir=fake,
                  startup_timeout=30)
    with pytest.raises(KubeEnvStartupError) as failure:
        await env.up()
    message = str(failure.value)
    assert "kube-apiserver exited with status 3" in message
    assert "the flux capacitor is unplugged" in message
    assert processes_mentioning(str(work)) == []
    for pid in env.pids():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not work.exists()


OWNER = """
import asyncio, sys
from pincompute.kubeenv import ClusterSpec, KubeEnv

async def main():
    env = await KubeEnv.start(clusters=(ClusterSpec("orphan", role="host"),),
                              bin_dir=sys.argv[1])
    print(env.work_dir, *env.pids(), flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_owner_takes_the_clusters_down_and_the_next_start_sweeps(
        kube_bin: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(kube_bin)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line, "the owner process did not start its environment"
        work, pids = Path(line[0]), [int(p) for p in line[1:]]
        assert len(pids) == 3 and work.exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while processes_mentioning(str(work)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(work)) == []
    assert work in sweep_stale()
    assert not work.exists()


# --- finding binaries and the skip rule ---------------------------------------------------------

def test_pincompute_kube_bin_must_hold_every_binary(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KUBE_BIN_ENV, str(tmp_path))
    with pytest.raises(KubeEnvError, match="lacks executable etcd, kube-apiserver") as e:
        find_binaries()
    assert not isinstance(e.value, KubeBinariesMissing)  # a mistake, not a reason to skip


def test_without_go_the_binaries_are_missing(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = "/usr/bin:/bin"
    if shutil.which("go", path=path) or not shutil.which("bash", path=path):
        pytest.skip(f"needs a PATH ({path}) with bash and without go")
    monkeypatch.delenv(KUBE_BIN_ENV, raising=False)
    monkeypatch.setenv("PINCOMPUTE_KUBE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", path)
    with pytest.raises(KubeBinariesMissing, match="Go is not installed"):
        find_binaries(repo_root=ROOT)


@pytest.mark.parametrize("ci", ["true", ""])
def test_missing_binaries_skip_loudly_but_fail_in_ci(
        ci: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.setattr(kubeenv_fixture, "_binaries", KubeBinariesMissing("no Go here"))
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(expected, match="no Go here"):
        kubeenv_fixture.binaries_or_skip(request.config)


# --- the command ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_dev_kube_env_command_starts_prints_and_stops_on_ctrl_c(kube_bin: Path,
                                                                 tmp_path: Path) -> None:
    work = tmp_path / "cli-env"
    log = (tmp_path / "cli.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pincompute.cli.main", "dev", "kube-env", "--members", "0",
         "--work-dir", str(work)],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", KUBE_BIN_ENV: str(kube_bin),
             "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if "press Ctrl-C" in line:
                break
        text = "".join(out)
        assert f"export KUBECONFIG={work}/kubeconfig" in text, text + log.read()
        assert "host" in text and "https://127.0.0.1:" in text
        assert processes_mentioning(str(work))
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert "clusters stopped" in rest
    assert processes_mentioning(str(work)) == []
    assert not work.exists()
