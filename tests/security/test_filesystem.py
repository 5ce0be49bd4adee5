"""Filesystem escapes: a pod must not make the root-run node agent touch anything outside its tree.

Each attack runs for real: pods of the ``process`` runtime on a real node agent, as root,
with their own uids.  A *sentinel* — a root-owned directory and file outside every pod's
tree, reachable by any uid — must keep its owner, mode, content and listing whatever the
pod tries.  Where validation is the first line (paths with ``..``, hostile names), the
attack is run twice: against a member store as the region opens it (core Pods validated:
``Invalid`` naming the field) and against a store that validates nothing, where the node
must refuse on its own (``pincompute.node.fsguard``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Invalid
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, PODS
from pincompute.model import registry
from pincompute.node import NodeAgent, NodeConfig, NodeIdentity
from tests.node.conftest import (
    FAST_BACKOFF,
    container_status,
    eventually,
    get_pod,
    make_pod,
    node_root,  # noqa: F401 - the fixture
)
from tests.node.test_agent import ready

Agents = Callable[[KubeClient], Awaitable[NodeAgent]]


# --- the sentinel and the clusters ---------------------------------------------------------------

class Sentinel:
    """A root-owned directory with a file, outside every pod's tree; any uid may look in."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pincompute-sentinel-"))
        os.chmod(self.dir, 0o755)
        (self.dir / "keep").write_text("host data\n")
        os.chmod(self.dir / "keep", 0o644)
        self.before = self.state()

    def state(self) -> list[tuple[str, int, int, int, str]]:
        out = []
        for path in [self.dir, *sorted(self.dir.rglob("*"))]:
            st = path.lstat()
            content = path.read_text() if path.is_file() and not path.is_symlink() else ""
            out.append((str(path), st.st_uid, st.st_gid, st.st_mode, content))
        return out

    def untouched(self) -> bool:
        return self.state() == self.before

    def escape(self, *rest: str) -> str:
        """A container path that climbs from any container root to the sentinel."""
        return "/" + "../" * 24 + str(self.dir.joinpath(*rest)).lstrip("/")


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    s = Sentinel()
    try:
        yield s
    finally:
        shutil.rmtree(s.dir, ignore_errors=True)


async def _store(*, validated: bool) -> tuple[EmbeddedStore, KubeClient]:
    store = await EmbeddedStore.open(path=None)
    if validated:
        registry.install(store)  # as the region opens its stores: core Pods validated too
    client = store.client()
    for ns in ("default", "team-a"):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    return store, client


@pytest.fixture
async def member() -> AsyncIterator[KubeClient]:
    """A store as the region opens a member cluster's: every write validated."""
    store, client = await _store(validated=True)
    yield client
    await store.close()


@pytest.fixture
async def unchecked() -> AsyncIterator[KubeClient]:
    """A store that validates no Pod: what reaches the node is whatever was written."""
    store, client = await _store(validated=False)
    yield client
    await store.close()


@pytest.fixture
async def agents(node_root: Path,  # noqa: F811 - the fixture
                 sentinel: Sentinel) -> AsyncIterator[Agents]:
    # (the sentinel outlives every agent: it is checked, then removed, after they stop)
    started: list[NodeAgent] = []

    async def start(client: KubeClient) -> NodeAgent:
        agent = NodeAgent(client, NodeConfig(
            identity=NodeIdentity(name="n1"), runtime="process", root_dir=node_root / "n1",
            storage_dir=node_root / "storage", backoff=FAST_BACKOFF, probe_scale=0.2,
            record_events=True, shutdown_grace=2.0))
        await agent.start()
        started.append(agent)
        return agent

    yield start
    for agent in reversed(started):
        if agent._started:
            await agent.stop()


def waiting_message(client: KubeClient, pod: str, container: str = "main"
                    ) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        state = container_status(await get_pod(client, pod), container).get("state") or {}
        return (state.get("waiting") or {}).get("message", "")
    return check


class NotYet:
    """A falsy answer to ``eventually`` that says what was seen (for the failure message)."""

    def __init__(self, *seen: Any) -> None:
        self.seen = seen

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"NotYet{self.seen!r}"


def rejected_fields(exc: pytest.ExceptionInfo[Invalid]) -> list[str]:
    assert exc.value.code == 422
    return [c.field for c in exc.value.causes]


def pinpod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinPod",
            "metadata": {"name": "p"}, "spec": spec}


def sleeper(**container: Any) -> dict[str, Any]:
    return {"name": "main", "image": "local", "command": ["sleep", "3600"], **container}


# --- mountPath "/../../../../etc/x" --------------------------------------------------------------

async def test_mount_path_climbing_out_is_rejected_at_validation(as_root, sentinel, member, agents):
    await agents(member)
    mount = {"name": "v", "mountPath": "/../../../../etc/x"}
    spec = {"containers": [sleeper(volumeMounts=[mount])], "volumes": [{"name": "v",
                                                                        "emptyDir": {}}]}
    field = "spec.containers[0].volumeMounts[0].mountPath"
    with pytest.raises(Invalid) as raw:
        await member.create(PODS, make_pod("p", spec["containers"], volumes=spec["volumes"]),
                            namespace="default")
    assert rejected_fields(raw) == [field]
    with pytest.raises(Invalid) as kind:
        await member.create(registry.PINPODS, pinpod(spec), namespace="default")
    assert rejected_fields(kind) == [field]
    mount["mountPath"] = sentinel.escape("keep")
    with pytest.raises(Invalid):
        await member.create(PODS, make_pod("p", spec["containers"], volumes=spec["volumes"]),
                            namespace="default")
    assert sentinel.untouched()


async def test_mount_path_climbing_out_is_refused_by_the_node(as_root, sentinel, unchecked, agents):
    """Unvalidated, the old agent removed the sentinel's file and linked it to the volume."""
    await agents(unchecked)
    await unchecked.create(PODS, make_pod("p", [sleeper(volumeMounts=[
        {"name": "v", "mountPath": sentinel.escape("keep")}])],
        volumes=[{"name": "v", "emptyDir": {}}]), namespace="default")
    assert "mountPath" in await eventually(waiting_message(unchecked, "p"))
    assert sentinel.untouched()


# --- containers/ renamed, containers/<name> -> the sentinel ------------------------------------

ATTACK = textwrap.dedent("""
    pod=$(dirname "$(dirname "$PINCOMPUTE_ROOT")")
    out="$PINCOMPUTE_VOLUME_DATA/out"
    test -L "$HOME/w" && echo "stale link in the root" >> "$out"
    if mv "$pod/containers" "$pod/containers.old" 2>/dev/null; then
        mkdir "$pod/containers"; ln -s "$SENTINEL" "$pod/containers/main"
        echo "renamed" >> "$out"
    else
        echo "rename denied" >> "$out"
    fi
    ln -s "$SENTINEL" "$pod/containers/other" 2>/dev/null && echo "planted" >> "$out"
    cd / && rm -rf "$HOME/w" && ln -s "$SENTINEL" "$HOME/w"
    rm -f "$HOME/data" && ln -s "$SENTINEL" "$HOME/data"
    echo attempt >> "$out"
    exit 1
""")


async def test_container_renames_containers_and_plants_a_link_then_exits(
        as_root, sentinel, member, agents):
    agent = await agents(member)
    await member.create(PODS, make_pod("p", [{
        "name": "main", "command": ["sh", "-c", ATTACK], "workingDir": "/w/sub",
        "env": [{"name": "SENTINEL", "value": str(sentinel.dir)}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "emptyDir": {}}]), namespace="default")

    async def restarted_twice() -> Any:
        pod = await get_pod(member, "p")
        return container_status(pod, "main").get("restartCount", 0) >= 2

    await eventually(restarted_twice, timeout=30)
    worker = agent.find("default", "p")
    out = (Path(worker.sandbox.extra["dir"]) / "volumes" / "data" / "out").read_text()
    assert out.count("attempt") >= 2
    assert "renamed" not in out and "planted" not in out
    assert "stale link" not in out  # every start gets a new root
    assert sentinel.untouched()


# --- workingDir with .. ---------------------------------------------------------------------------

async def test_working_dir_climbing_out_is_rejected_at_validation(
        as_root, sentinel, member, agents):
    await agents(member)
    container = sleeper(workingDir=sentinel.escape("made-by-agent"))
    with pytest.raises(Invalid) as raw:
        await member.create(PODS, make_pod("p", [container]), namespace="default")
    assert rejected_fields(raw) == ["spec.containers[0].workingDir"]
    with pytest.raises(Invalid) as kind:
        await member.create(registry.PINPODS, pinpod({"containers": [container]}),
                            namespace="default")
    assert rejected_fields(kind) == ["spec.containers[0].workingDir"]
    assert sentinel.untouched()


async def test_working_dir_climbing_out_is_refused_by_the_node(
        as_root, sentinel, unchecked, agents):
    """Unvalidated, the old agent created the directory as root wherever it pointed."""
    await agents(unchecked)
    await unchecked.create(PODS, make_pod("p", [sleeper(
        workingDir=sentinel.escape("made-by-agent"))]), namespace="default")
    assert "workingDir" in await eventually(waiting_message(unchecked, "p"))
    assert sentinel.untouched()


async def test_working_dir_through_a_planted_link_is_made_as_the_pod(
        as_root, sentinel, member, agents):
    """A working directory inside a volume the tenant made a link: resolved with its rights."""
    agent = await agents(member)
    plant = f'rm -rf "$PINCOMPUTE_VOLUME_DATA/w"; ln -s {sentinel.dir} "$PINCOMPUTE_VOLUME_DATA/w"'
    await member.create(PODS, make_pod("p", [
        # Ready once the link is planted: the main container starts only then (sidecars
        # first), so its working directory is resolved through the link on any machine load.
        {"name": "planter", "type": "sidecar", "command": ["sh", "-c", plant + "; sleep 3600"],
         "readinessProbe": {"exec": {"command": [
             "sh", "-c", 'test -L "$PINCOMPUTE_VOLUME_DATA/w"']}, "periodSeconds": 1},
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"name": "main", "command": ["sleep", "3600"], "workingDir": "/data/w/made-by-agent",
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "emptyDir": {}}]), namespace="default")

    async def planted_then_tried() -> Any:
        worker = agent.find("default", "p")
        if worker is None or worker.sandbox is None:
            return NotYet(worker and worker.sandbox_error)
        link = Path(worker.sandbox.extra["dir"]) / "volumes" / "data" / "w"
        pod = await get_pod(member, "p")
        main = container_status(pod, "main")
        state = main.get("state") or {}
        tried = (main.get("restartCount", 0) >= 1 or "running" in state
                 or "terminated" in state or main.get("lastState"))
        return (link.is_symlink() and tried) or NotYet(link.is_symlink(), pod.get("status"))

    await eventually(planted_then_tried, timeout=30)
    assert sentinel.untouched()


# --- an agent restart over the links a tenant planted ----------------------------------------

PLANT = textwrap.dedent("""
    set -e
    cd "$POD_DIR"
    for d in volumes/data config/settings containers/main logging/logs; do
        rm -rf "$d"; ln -s "$SENTINEL" "$d"
    done
    ln -s "$SENTINEL" "$PV/escape"
    mkdir "$PV/sub"; ln -s "$SENTINEL/keep" "$PV/sub/escape"
""")


async def test_agent_restart_over_planted_links(
        as_root, sentinel, member, agents, node_root):  # noqa: F811
    """The pod's tree as an older agent left it (the pod owned all of it), full of links.

    The old agent, restarted, chowned the volume link's target, wrote the config files
    through theirs and built the container root inside the sentinel.
    """
    await member.create(CONFIGMAPS, {"metadata": {"name": "settings"},
                                     "data": {"color": "blue"}}, namespace="default")
    pod = make_pod("p", [sleeper(volumeMounts=[
        {"name": "data", "mountPath": "/data"}, {"name": "settings", "mountPath": "/etc/settings"},
        {"name": "pv", "mountPath": "/pv"}, {"name": "logs", "mountPath": "/logs"}])],
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "logs", "logging": {}},
                 {"name": "settings", "configMap": {"name": "settings"}},
                 {"name": "pv", "persistent": {"size": "1Gi"}}])
    first = await agents(member)
    await member.create(PODS, pod, namespace="default")
    await eventually(ready(member, "p"))
    sandbox = first.find("default", "p").sandbox
    uid, pod_dir = sandbox.uid, Path(sandbox.extra["dir"])
    pv = node_root / "storage" / "persistent" / "default" / "pod-p" / "pv"
    await first.stop()

    # The older layout: the pod's whole directory was its own (and so was its persistent
    # volume, which an older agent did not hand back to root when it stopped).
    for d in [pod_dir, *(pod_dir / k for k in ("volumes", "config", "containers", "logging")),
              pv]:
        d.mkdir(exist_ok=True)
        os.chown(d, uid, uid)
        os.chmod(d, 0o700)
    planter = await asyncio.create_subprocess_exec(
        "sh", "-c", PLANT, user=uid, group=uid, extra_groups=[],
        env={"POD_DIR": str(pod_dir), "SENTINEL": str(sentinel.dir), "PV": str(pv),
             "PATH": "/usr/bin:/bin"})
    assert await planter.wait() == 0
    # The volume last belonged to another pod: the new one takes over what that one owned.
    previous = uid + 1000
    for path in [pv, *pv.rglob("*")]:
        os.lchown(path, previous, previous)

    second = await agents(member)

    async def running_again() -> Any:
        worker = second.find("default", "p")
        rec = worker.records.get("main") if worker is not None else None
        return rec is not None and rec.instance is not None and not rec.instance.exited.done()

    await eventually(running_again, timeout=30)
    assert sentinel.untouched()
    sandbox = second.find("default", "p").sandbox
    for path in ("volumes/data", "config/settings", "containers/main", "logging/logs"):
        assert not (pod_dir / path).is_symlink() and (pod_dir / path).is_dir(), path
    assert (pod_dir / "config" / "settings" / "color").read_text() == "blue"
    assert (pod_dir / "volumes" / "data").stat().st_uid == sandbox.uid
    assert pv.stat().st_uid == sandbox.uid and (pv / "escape").is_symlink()
    assert (pod_dir.stat().st_uid, pod_dir.stat().st_mode & 0o777) == (0, 0o710)


# --- hostile container and volume names in raw Pods ---------------------------------------------

HOSTILE_NAMES = [
    ("container", "spec.containers[0].name"),
    ("volume", "spec.volumes[0].name"),
]


def _hostile(sentinel: Sentinel, which: str) -> dict[str, Any]:
    name = "../" * 24 + str(sentinel.dir).lstrip("/")
    if which == "container":
        return make_pod("p", [sleeper(name=name)])
    return make_pod("p", [sleeper()], volumes=[{"name": name, "emptyDir": {}}])


@pytest.mark.parametrize(("which", "field"), HOSTILE_NAMES)
async def test_hostile_names_in_raw_pods_are_rejected_at_validation(
        as_root, sentinel, member, agents, which, field):
    await agents(member)
    with pytest.raises(Invalid) as raw:
        await member.create(PODS, _hostile(sentinel, which), namespace="default")
    assert set(rejected_fields(raw)) == {field}
    assert sentinel.untouched()


@pytest.mark.parametrize(("which", "field"), HOSTILE_NAMES)
async def test_hostile_names_in_raw_pods_are_refused_by_the_node(
        as_root, sentinel, unchecked, agents, which, field):
    """Unvalidated, the old agent joined the name to the pod's directory and chowned it."""
    await agents(unchecked)
    pod = _hostile(sentinel, which)
    await unchecked.create(PODS, pod, namespace="default")
    container = pod["spec"]["containers"][0]["name"]
    message = await eventually(waiting_message(unchecked, "p", container))
    assert "not a single path component" in message
    assert sentinel.untouched()
