"""Work directories: the owner record, and sweeping the directories of a dead owner
(killing what survived of them) while leaving a live owner's alone."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from pincompute.kubeenv.workdir import AUTO_PREFIX, OWNER_FILE, sweep_stale, write_file, write_owner


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_private_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    write_file(tmp_path / "a" / "key", b"k", private=True)
    write_file(tmp_path / "a" / "cert", b"c")
    assert stat.S_IMODE((tmp_path / "a" / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a" / "cert").stat().st_mode) == 0o644


def test_sweep_removes_a_dead_owners_directory_and_kills_its_survivors(tmp_path: Path) -> None:
    orphan = tmp_path / f"{AUTO_PREFIX}orphan"
    orphan.mkdir()
    # A survivor in its own process group whose command line names the directory.
    survivor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                                 str(orphan)], start_new_session=True)
    try:
        (orphan / OWNER_FILE).write_text(json.dumps(
            {"owner_pid": dead_pid(), "pids": [survivor.pid]}))
        live = tmp_path / f"{AUTO_PREFIX}live"
        live.mkdir()
        write_owner(live, [])
        assert json.loads((live / OWNER_FILE).read_text()) == {"owner_pid": os.getpid(),
                                                               "pids": []}
        foreign = tmp_path / "not-ours"
        foreign.mkdir()
        (foreign / OWNER_FILE).write_text(json.dumps({"owner_pid": dead_pid(), "pids": []}))

        assert sweep_stale(tmp_path) == [orphan]
        assert survivor.wait(10) == -9
        assert not orphan.exists() and live.exists() and foreign.exists()
    finally:
        survivor.kill()
        survivor.wait()
