"""``pincompute up`` as a user runs it: a real process, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pinapp.yaml"

pytestmark = pytest.mark.slow


def _start(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pincompute.cli.main", "up", "--data-dir", str(data_dir),
         "-o", "json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PINCOMPUTE_LOG_LEVEL": "INFO"})


def _ready(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        pytest.fail(f"up exited early: {proc.stderr.read() if proc.stderr else ''}")
    return json.loads(line)


def _interrupt(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        logs = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"up did not stop on SIGINT within 60 s; its log:\n{logs[-6000:]}")


def test_up_starts_applies_the_example_and_stops_cleanly(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--example", str(EXAMPLE))
    try:
        info = _ready(proc)
        assert [c["name"] for c in info["clusters"]] == ["host", "zone-a-1", "zone-b-1",
                                                          "zone-c-1"]
        assert info["applied"] == ["pinapp/hello-web"]
        for cluster in info["clusters"]:
            assert (Path(cluster["path"]) / "store.db").exists()
        # A second region on the same data is refused with one clear line.
        second = _start(tmp_path)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "in use" in err and "Traceback" not in err
    finally:
        code = _interrupt(proc)
    assert code == 0, proc.stderr.read() if proc.stderr else ""

    # Starting again resumes from the same data: the app is there, re-applying is an update.
    proc = _start(tmp_path, "--example", str(EXAMPLE))
    try:
        info = _ready(proc)
        assert info["applied"] == ["pinapp/hello-web"]
    finally:
        assert _interrupt(proc) == 0


def test_up_resumes_after_kill_9(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--example", str(EXAMPLE))
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
