"""``pincompute up`` as a user runs it: a real process, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pincompute.region import node_base_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pinapp.yaml"

pytestmark = pytest.mark.slow


def _start(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    # The log goes to a file: a pipe nobody reads fills up and blocks the process.
    log = (data_dir.parent / f"{data_dir.name}-up.log").open("a+")
    # Its own HOME: up writes ~/.pincompute/config.yaml; any free port for the API.
    home = data_dir.parent / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pincompute.cli.main", "up", "--data-dir", str(data_dir),
         "--port", "0", "-o", "json", *extra],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PINCOMPUTE_LOG_LEVEL": "INFO",
             "HOME": str(home)})
    _logs[proc.pid] = log
    return proc


_logs: dict[int, object] = {}


def _ready(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        pytest.fail(f"up exited early: {_log(proc)}")
    return json.loads(line)


def _interrupt(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"up did not stop on SIGINT within 60 s; its log:\n{_log(proc)}")


def _log(proc: subprocess.Popen[str]) -> str:
    log = _logs[proc.pid]
    log.flush()  # type: ignore[attr-defined]
    log.seek(0)  # type: ignore[attr-defined]
    return log.read()[-6000:]  # type: ignore[attr-defined]


def _serving(nodes: Path) -> list[str]:
    """The addresses hello-web's web servers of this region answer on (HTTP 200)."""
    addresses = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        if "http.server" not in argv or not any(a.startswith(str(nodes)) for a in argv):
            continue
        address = argv[argv.index("--bind") + 1]
        try:
            with urllib.request.urlopen(f"http://{address}:8080/", timeout=2) as response:
                if response.status == 200:
                    addresses.append(address)
        except OSError:
            pass  # not listening yet
    return addresses


def test_up_starts_applies_the_example_and_stops_cleanly(region_dir: Path) -> None:
    tmp_path = region_dir
    proc = _start(tmp_path, "--example", str(EXAMPLE), "--nodes-per-zone", "1")
    try:
        info = _ready(proc)
        assert [c["name"] for c in info["clusters"]] == ["host", "zone-a-1", "zone-b-1",
                                                          "zone-c-1"]
        assert info["applied"] == ["pinapp/hello-web"]
        for cluster in info["clusters"]:
            assert (Path(cluster["path"]) / "store.db").exists()
        # The example runs as written: admitted, placed, propagated, and its three
        # replicas (one per zone, each on its own address) serve HTTP.
        nodes = node_base_dir(tmp_path, runtime="process")
        deadline = time.monotonic() + 60
        while len(serving := _serving(nodes)) < 3:
            if time.monotonic() > deadline:
                pytest.fail(f"hello-web serves on {serving} only; up's log:\n{_log(proc)}")
            time.sleep(0.5)
        assert len(set(serving)) == 3
        # A second region on the same data is refused with one clear line.
        second = _start(tmp_path)
        second.communicate(timeout=30)
        assert second.returncode == 1
        err = _log(second)
        assert "in use" in err and "Traceback" not in err
    finally:
        code = _interrupt(proc)
    assert code == 0, _log(proc)

    # Starting again resumes from the same data: the app is there, re-applying is an update.
    proc = _start(tmp_path, "--example", str(EXAMPLE), "--nodes-per-zone", "1")
    try:
        info = _ready(proc)
        assert info["applied"] == ["pinapp/hello-web"]
    finally:
        assert _interrupt(proc) == 0


def test_up_resumes_after_kill_9(region_dir: Path) -> None:
    tmp_path = region_dir
    proc = _start(tmp_path, "--example", str(EXAMPLE), "--nodes-per-zone", "1")
    _ready(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # The lock dies with the process and the lease is recognised as ours: no waiting.
    proc = _start(tmp_path)
    try:
        info = _ready(proc)
        assert info["clusters"][0]["name"] == "host"
    finally:
        assert _interrupt(proc) == 0


def test_up_with_a_corrupt_store_answers_in_one_line(tmp_path: Path) -> None:
    """A damaged store.db: one line naming the file and how to recover, no traceback."""
    import asyncio

    from pincompute.kube.backends.embedded import EmbeddedStore
    from pincompute.kube.resource import CONFIGMAPS, NAMESPACES

    data = tmp_path / "data"

    async def fill() -> None:
        store = await EmbeddedStore.open(path=data / "host")
        client = store.client()
        await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
        for i in range(300):
            await client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"},
                                             "data": {"x": "y" * 1000}}, namespace="ns")
        await store.close()

    asyncio.run(fill())
    db = data / "host" / "store.db"
    size = db.stat().st_size
    with db.open("r+b") as f:  # some pages in the middle overwritten
        f.seek(size // 2 - 2 * 16384)
        f.write(bytes(range(256)) * 256)
    done = subprocess.run(
        [sys.executable, "-m", "pincompute.cli.main", "up", "--data-dir", str(data),
         "--runtime", "sim", "--zones", "1", "--port", "0"], capture_output=True, text=True,
        timeout=120, env={**os.environ, "COLUMNS": "80", "HOME": str(tmp_path)})
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and f"{db} is corrupt" in lines[0]
    assert "backup" in lines[0] and "Traceback" not in done.stderr

def test_up_with_several_clusters_per_zone(region_dir: Path) -> None:
    proc = _start(region_dir, "--runtime", "sim", "--clusters-per-zone", "2",
                  "--nodes-per-zone", "1")
    try:
        info = _ready(proc)
        members = [c for c in info["clusters"] if c["role"] == "member"]
        assert [(c["name"], c["zone"]) for c in members] == [
            (f"zone-{z}-{n}", f"zone-{z}") for z in "abc" for n in (1, 2)]
        # --nodes-per-zone is per member cluster: its on-demand pool; reserved and
        # preemptible pools have one node each
        assert all(c["nodes"] == [f"{c['name']}-{pool}-0" for pool in (
            "ondemand", "preemptible", "reserved")] for c in members)
    finally:
        assert _interrupt(proc) == 0
