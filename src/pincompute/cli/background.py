"""``up --detach`` and ``down``: the region as a background process of its own.

``up --detach`` runs the same ``up`` command as a child in its own session
(output in ``<data dir>/up.log``) and returns once it serves: the child writes a
*ready file* the parent waits for, or exits, and then the log's last lines say
why.  The running child records its pid in ``<data dir>/pincompute.pid`` and
what it serves in ``<data dir>/up.json``; a second ``up --detach`` on a running
region just says where it is.  ``down`` signals that pid (after checking it is
still a ``pincompute up``) and waits for it to exit: the region closes cleanly,
its data stays.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import DEFAULT_DATA_DIR, FAILED, NOT_FOUND, console, fail
from .welcome import apply_example, data_dir_flag, print_access

PID_FILE = "pincompute.pid"
INFO_FILE = "up.json"
"""What a running ``up`` serves (its API's URL, clusters...), for ``up --detach`` again."""
LOG_FILE = "up.log"
START_TIMEOUT = 300.0

DataDir = Annotated[Path, typer.Option(help="where the region keeps its data")]


def write_pid(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n")


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def write_info(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def detach(data_dir: Path, *, example: Path | None, output: str) -> None:
    """Start ``up`` in the background; return once it serves (or fail with its log)."""
    pid = running_pid(data_dir)
    if pid is not None:
        try:
            info: dict[str, Any] = json.loads((data_dir / INFO_FILE).read_text())
        except (OSError, ValueError):
            raise fail(f"a region is starting or stopping in {data_dir} (pid {pid})",
                       hint="try again in a moment") from None
        console.print(f"the region of {data_dir} runs already (pid {pid})", highlight=False)
        print_access(info)
        if example is not None:
            apply_example(info, example)
        return
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ready = data_dir / f".ready-{os.getpid()}"
    ready.unlink(missing_ok=True)
    argv = [a for a in sys.argv[1:] if a not in ("--detach", "-d")]
    argv = _without_option(argv, "--example")
    command = [sys.executable, "-m", "pincompute.cli.main", *argv, "--ready-file", str(ready),
               "--data-dir", str(data_dir)]
    log_path = data_dir / LOG_FILE
    with log_path.open("ab") as log:
        log.write(f"\n--- pincompute up at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
    info = _wait_ready(child, ready, log_path)
    ready.unlink(missing_ok=True)
    if output == "json":
        print(json.dumps(info), flush=True)
    else:
        console.print(f"region running in the background (pid {info['pid']}), "
                      f"{len(info['clusters']) - 1} member clusters; log: {log_path}",
                      highlight=False)
        print_access(info)
        console.print(f"stop it: pincompute down{data_dir_flag(info)}", highlight=False)
    if example is not None:
        apply_example(info, example)


def _without_option(argv: list[str], option: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = True
            continue
        if arg.startswith(option + "="):
            continue
        out.append(arg)
    return out


def _wait_ready(child: subprocess.Popen[bytes], ready: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    with console.status("starting the region in the background…"):
        while not ready.exists():
            if child.poll() is not None:
                raise fail(f"the region did not start (exit {child.returncode}): "
                           f"{_last_lines(log)}", hint=f"its log: {log}")
            if time.monotonic() > deadline:
                child.terminate()
                raise fail(f"the region did not start within {START_TIMEOUT:g}s",
                           hint=f"its log: {log}")
            time.sleep(0.1)
    info: dict[str, Any] = json.loads(ready.read_text())
    return info


def _last_lines(log: Path, n: int = 3) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("---")]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def running_pid(data_dir: Path) -> int | None:
    """The pid of the ``pincompute up`` serving ``data_dir``, if one runs."""
    pid = read_pid(data_dir / PID_FILE)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if b"up" in cmdline and any(b"pincompute" in a for a in cmdline) else None


def down(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    timeout: Annotated[float, typer.Option(help="seconds to wait for it to stop")] = 60.0,
) -> None:
    """Stop a region started with `up --detach` (its data is kept)."""
    data_dir = data_dir.expanduser().resolve()
    pid = running_pid(data_dir)
    if pid is None:
        (data_dir / PID_FILE).unlink(missing_ok=True)
        raise fail(f"no region runs from {data_dir}", code=NOT_FOUND,
                   hint="--data-dir names another one")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with console.status(f"stopping the region (pid {pid})…"):
        while _alive(pid):
            if time.monotonic() > deadline:
                raise fail(f"the region (pid {pid}) did not stop within {timeout:g}s",
                           code=FAILED, hint=f"its log: {data_dir / LOG_FILE}")
            time.sleep(0.1)
    console.print(f"region stopped; data kept in {data_dir}", highlight=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child in tests) is gone for all purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False
