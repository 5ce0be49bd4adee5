"""A new user's first session, through the real ``pincompute`` command in subprocesses.

``pincompute up --detach`` (process runtime: real node agents, real pods) in its
own HOME and data directory, then what the getting-started guide tells a new user
to type: apply the example app and wait, get, describe, follow the logs of all
replicas, run a command in a pod, scale, pause, restart, delete, ``down``.  Then
what goes wrong for users — a missing object, a bad token, a bad file, an unknown
kind — each one line on stderr with its exit code.  (Resuming a region after a
restart of ``up`` is tests/cli/test_up.py's.)
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pincompute.sdk import AsyncClient, load_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-app.yaml"


@dataclass
class User:
    home: Path
    data: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINCOMPUTE_")}
        return {**env, "HOME": str(self.home), "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pincompute.cli.main", *args]

    def run(self, *args: str, code: int = 0, timeout: float = 90) -> str:
        done = subprocess.run(self.argv(*args), capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=ROOT)
        assert done.returncode == code, (
            f"pincompute {' '.join(args)} exited {done.returncode}, not {code}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}")
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout if code == 0 else done.stderr

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "-o", "json"))


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    base = tmp_path_factory.mktemp("newuser")
    base.chmod(0o711)  # pods run as their own uids and pass through to their sandboxes
    me = User(home=base / "home", data=base / "data")
    me.home.mkdir()
    out = me.run("up", "--detach", "--data-dir", str(me.data), "--port", "0",
                 "--zones", "2", "--nodes-per-zone", "1", timeout=180)
    assert "region running in the background" in out
    try:
        yield me
    finally:
        if (me.data / "pincompute.pid").exists():
            subprocess.run(me.argv("down", "--data-dir", str(me.data)), env=me.env,
                           capture_output=True, timeout=90)


def _poll(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_a_new_users_first_session(user: User) -> None:
    config = yaml.safe_load((user.home / ".pincompute" / "config.yaml").read_text())
    assert set(config) == {"server", "token", "project"} and config["project"] == "demo"
    assert (user.home / ".pincompute" / "config.yaml").stat().st_mode & 0o077 == 0

    out = user.run("apply", "-f", str(HELLO), "--wait", "--timeout", "90")
    assert "pinapp/hello created" in out and "rolled out" in out

    table = user.run("get", "apps")
    assert table.split()[:6] == ["NAME", "TIER", "REPLICAS", "READY", "UPDATED", "AVAILABLE"]
    assert "hello" in table
    app = user.json("get", "app/hello")
    assert app["status"]["readyReplicas"] == 3

    described = user.run("describe", "pinapp", "hello")
    for section in ("Spec:", "Containers:", "Admission:", "Placements:", "Conditions:",
                    "Pods:", "Events:"):
        assert section in described, described
    assert "zone-a-1" in described and "zone-b-1" in described
    # each replica serves on its own address, as describe shows it
    rows = [line.split() for line in described.split("Pods:", 1)[1].splitlines()
            if line.strip().startswith("hello-")]
    assert len(rows) == 3
    for name, *_, ip, _phase, _ready in rows:
        with urllib.request.urlopen(f"http://{ip}:8080/", timeout=5) as answer:
            assert answer.read().decode().startswith(f"hello from {name} on ")

    # logs -f of every replica, prefixed: the readiness probes' requests keep coming
    follow = subprocess.Popen(user.argv("logs", "-f", "app/hello"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=user.env, cwd=ROOT)
    try:
        assert follow.stdout is not None
        lines = [follow.stdout.readline() for _ in range(4)]
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    assert all(line.startswith("[hello-") for line in lines), lines
    assert any("GET / HTTP" in line or "Serving HTTP" in line for line in lines), lines

    out = user.run("exec", "app/hello", "--", "sh", "-c", "cat $PINCOMPUTE_ROOT/index.html")
    assert out.startswith("hello from hello-")
    user.run("exec", "app/hello", "--", "sh", "-c", "exit 7", code=7)
    piped = subprocess.run(user.argv("exec", "-i", "app/hello", "--", "tr", "a-z", "A-Z"),
                           input="shout\n", capture_output=True, text=True, env=user.env,
                           timeout=60)
    assert (piped.returncode, piped.stdout) == (0, "SHOUT\n"), piped.stderr
    replica = sorted(_pod_names(user))[0]
    assert "container web restarting" in user.run("restart-container", "app/hello", "-c",
                                                  "web", "--replica", replica)
    _poll(f"{replica}'s web container to run again", lambda: _restarts(user, replica) >= 1)
    shell = _interactive(user, "exec", "-it", "app/hello", "--", "sh",
                         keys=b"stty size; tty\rexit 5\r")
    assert shell.code == 5, shell.output
    assert b"40 120" in shell.output and b"/dev/pts/" in shell.output  # a real tty, resized

    watching = subprocess.Popen(user.argv("get", "app", "hello", "-w"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=user.env, cwd=ROOT)
    assert "scaled to 4" in user.run("scale", "hello", "--replicas", "4")
    assert "successfully rolled out" in user.run("rollout", "status", "hello",
                                                 "--timeout", "60")
    try:  # -w: the header, the app as it was, then a row per change — up to 4 ready
        assert watching.stdout is not None
        assert watching.stdout.readline().split()[:3] == ["NAME", "TIER", "REPLICAS"]
        for _ in range(50):
            row = watching.stdout.readline().split()
            assert row[:2] == ["hello", "ondemand"]
            if row[2:4] == ["4", "4"]:
                break
        else:
            pytest.fail("get -w never showed 4 ready replicas")
    finally:
        watching.terminate()
        watching.wait(timeout=10)
    assert user.json("get", "app", "hello")["status"]["availableReplicas"] == 4

    assert "paused" in user.run("pause", "hello")
    assert user.json("get", "app", "hello")["spec"]["paused"] is True
    user.run("resume", "hello")

    before = _pod_names(user)
    assert len(before) == 4
    assert "restarting" in user.run("restart", "app/hello")
    # the rolling restart replaces replicas zone by zone: the first new one is enough here
    _poll("a replica replaced by the restart", lambda: bool(_pod_names(user) - before))

    events = user.run("events", "app/hello")
    assert "AGE" in events and "REASON" in events

    assert 'pinapp "hello" deleted' in user.run("delete", "app", "hello")
    _poll("hello to be gone", lambda: "No pinapps found" in user.run("get", "apps"))


@dataclass
class Session:
    code: int
    output: bytes


def _interactive(user: User, *args: str, keys: bytes, timeout: float = 30) -> Session:
    """Run the command on a terminal of 40 rows by 120 columns, type ``keys``, read all."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(user.argv(*args), stdin=side, stdout=side, stderr=side,
                            env=user.env, cwd=ROOT, start_new_session=True)
    os.close(side)
    output = b""
    typed = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the command exited: its terminal is gone
                    break
                if not chunk:
                    break
                output += chunk
            if not typed and b"$ " in output:  # the remote shell's prompt
                os.write(main, keys)
                typed = True
        return Session(proc.wait(timeout=10), output)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for whoever adopted it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _restarts(user: User, pod: str) -> int:
    pods = asyncio.run(_pods(user))
    statuses = next(p for p in pods if p["metadata"]["name"] == pod)["status"].get(
        "containerStatuses") or []
    ready = all(s.get("ready") for s in statuses)
    return sum(s.get("restartCount", 0) for s in statuses) if ready else 0


async def _pods(user: User) -> list[dict]:
    config = load_config(path=user.home / ".pincompute" / "config.yaml", env={})
    async with AsyncClient(config=config) as pc:
        return await pc.pods("app", "hello")


def _pod_names(user: User) -> set[str]:
    described = user.run("describe", "app", "hello", "--events", "0")
    pods = described.split("Pods:", 1)[-1].splitlines()[2:]
    return {line.split()[0] for line in pods if line.strip().startswith("hello-")}


def test_the_async_sdk_on_a_real_region(user: User) -> None:
    """The async client's streams against real pods: logs, exec, events."""
    async def session() -> None:
        config = load_config(path=user.home / ".pincompute" / "config.yaml", env={})
        async with AsyncClient(config=config) as pc:
            await pc.apply(yaml.safe_load(HELLO.read_text()))
            pods = []
            for _ in range(100):
                pods = [p for p in await pc.pods("app", "hello")
                        if (p.get("status") or {}).get("podIP")]
                if len(pods) == 3 and all(_ready(p) for p in pods):
                    break
                await asyncio.sleep(0.3)
            pod = pods[0]["metadata"]["name"]
            lines = []
            async for line in pc.logs(pod, follow=True):
                lines.append(line)
                if len(lines) == 2:
                    break
            assert any("HTTP" in line for line in lines), lines
            result = await pc.run(pod, ["sh", "-c", "cat; echo err >&2; exit 4"],
                                  input=b"from stdin\n")
            assert (result.exit_code, result.stdout, result.stderr) == (
                4, b"from stdin\n", b"err\n")
            assert any(e.get("reason") for e in await pc.events("app", "hello"))
            assert {"created", "admitted"} <= {h["state"] for h in
                                               await pc.history("app", "hello")}

    asyncio.run(session())


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def test_mistakes_are_one_line_with_an_exit_code(user: User, tmp_path: Path) -> None:
    def one_line(err: str) -> str:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        return lines[0]

    assert "not found" in one_line(user.run("get", "app", "nothing", code=3))
    assert "unknown kind 'deployment'" in one_line(user.run("get", "deployment", code=2))
    assert "token" in one_line(user.run("--token", "pct_000000000000_" + "z" * 43, "get",
                                        "apps", code=4))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: PinApp\nmetadata: {name: bad}\nspec:\n  replicas: -1\n"
                   "  template: {spec: {containers: [{name: c, image: i}]}}\n")
    assert "spec.replicas" in one_line(user.run("apply", "-f", str(bad), code=6))
    assert "no such file" in one_line(user.run("apply", "-f", str(tmp_path / "x.yaml"),
                                               code=2))
    taken = yaml.safe_load((user.home / ".pincompute" / "config.yaml").read_text())["server"]
    port = taken.rsplit(":", 1)[1]
    assert "cannot serve the API" in one_line(user.run(
        "up", "--data-dir", str(tmp_path / "other"), "--port", port, code=2))


def test_down_stops_the_region(user: User) -> None:
    pid = int((user.data / "pincompute.pid").read_text())
    assert "region stopped" in user.run("down", "--data-dir", str(user.data))
    assert not _running(pid) and not (user.data / "pincompute.pid").exists()
    assert "no region runs" in user.run("down", "--data-dir", str(user.data), code=3)
    assert "is the server running" in user.run("get", "apps", code=7)
