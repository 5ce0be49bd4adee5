"""``pincompute up`` and ``down``: a whole region on this machine, and its API.

Theory of operation
-------------------
``up`` opens (or resumes) the embedded region in its data directory
(:class:`pincompute.region.Region`: host, one member cluster per zone with a node
pool per tier, process-runtime nodes by default), serves the REST gateway in front
of it on ``127.0.0.1:PORT`` (:class:`pincompute.gateway.Gateway`), makes sure the
default project exists, and writes ``~/.pincompute/config.yaml`` (mode 0600:
server, the admin token, project) so every other verb works at once.  Stopping
(Ctrl-C, SIGTERM) closes the gateway and the region; the data stays, and the
next ``up`` on the same directory resumes the same region and its workloads (the
admin token too, kept in ``<data dir>/admin-token``).

``--detach`` runs the same command as a background process in its own session
(output in ``<data dir>/up.log``) and returns once it serves — the child writes a
*ready file* the parent waits for — or fails with the log's last lines.  The child
records its pid in ``<data dir>/pincompute.pid``; ``down`` signals that pid
(after checking it is still a ``pincompute up``) and waits for it to exit.

With ``--example FILE`` the objects of the file are applied once the region
serves — in the foreground by the region itself, detached by this command through
the SDK, waiting for them to roll out — and ``up`` prints how to reach, watch,
read the logs of and open a shell in the example app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pincompute.gctuning import tune_gc
from pincompute.sdk import Client, Config, write_config

from . import manifests, rollout
from .common import FAILED, NOT_FOUND, USAGE, console, fail, handled, warn

DEFAULT_DATA_DIR = Path("~/.pincompute/data")
DEFAULT_PORT = 8443
PID_FILE = "pincompute.pid"
INFO_FILE = "up.json"
"""What a running ``up`` serves (its API's URL, clusters...), for ``up --detach`` again."""
LOG_FILE = "up.log"
START_TIMEOUT = 300.0

DataDir = Annotated[Path, typer.Option(help="where the region keeps its data")]


def up(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Annotated[int, typer.Option(min=0, max=65535,
                                      help="the API's port on 127.0.0.1 (0: any free one)")]
        = DEFAULT_PORT,
    runtime: Annotated[str, typer.Option(
        help="node runtime: process (real processes) or sim (simulated, for scale)")] =
        "process",
    zones: Annotated[int, typer.Option(min=1, max=26,
                                       help="zones (failure domains) of a new region")] = 3,
    nodes_per_zone: Annotated[int, typer.Option(
        min=0, help="on-demand nodes of each new member cluster (it may grow to twice that; "
        "reserved and preemptible pools get one node each)")] = 2,
    clusters_per_zone: Annotated[int, typer.Option(
        min=1, help="member clusters in each zone of a new region")] = 1,
    detach: Annotated[bool, typer.Option(
        "--detach", "-d", help="run in the background; `pincompute down` stops it")] = False,
    example: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="a YAML file of objects to apply once started")] =
        None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    single_user: Annotated[bool, typer.Option(
        "--single-user", help="without root, allow more than one project (all of them "
        "yours: their pods share your uid)")] = False,
    write_config_file: Annotated[bool, typer.Option(
        "--write-config/--no-write-config",
        help="write server, token and project to the config file")] = True,
    ready_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Start a local region and its API; Ctrl-C (or `pincompute down`) stops it."""
    if runtime not in ("process", "sim"):
        raise fail(f"--runtime must be process or sim, not {runtime!r}", code=USAGE)
    if output not in ("table", "json"):
        raise fail(f"-o {output}: up prints table or json", code=USAGE)
    data_dir = data_dir.expanduser().resolve()
    if detach:
        _detach(data_dir, example=example, output=output)
        return
    logging.basicConfig(level=os.environ.get("PINCOMPUTE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tune_gc()
    try:
        asyncio.run(_up(data_dir, port=port, zones=zones, clusters_per_zone=clusters_per_zone,
                        runtime=runtime, nodes_per_cluster=nodes_per_zone, example=example,
                        output=output, single_user=single_user,
                        write_config_file=write_config_file, ready_file=ready_file))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        raise typer.Exit(130) from None


async def _up(data_dir: Path, *, port: int, zones: int, clusters_per_zone: int, runtime: str,
              nodes_per_cluster: int, example: Path | None, output: str, single_user: bool,
              write_config_file: bool, ready_file: Path | None) -> None:
    from pincompute.gateway import Gateway
    from pincompute.kube.backends.embedded import StoreUnavailable
    from pincompute.region import DEFAULT_PROJECT, DataDirInUse, Region, load_documents

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pid_file = data_dir / PID_FILE
    try:
        with console.status("starting the region…") if output == "table" \
                else contextlib.nullcontext():
            try:
                region = await Region.open(data_dir, zones=zones, runtime=runtime,  # type: ignore[arg-type]
                                           clusters_per_zone=clusters_per_zone,
                                           nodes_per_cluster=nodes_per_cluster,
                                           single_user=single_user, pools="tiers")
            except (DataDirInUse, StoreUnavailable) as e:
                raise fail(f"{e}") from None
        try:
            if region.shared_uid is not None:
                mode = ("--single-user: every project is yours" if single_user else
                        "one project only (--single-user allows more, all of them yours)")
                warn(f"{region.shared_uid}; {mode}")
            _write_pid(pid_file)
            with console.status("starting controllers and nodes…") if output == "table" \
                    else contextlib.nullcontext():
                await region.start()
                await region.ensure_project()
            try:
                serving = Gateway.start(region, listen=f"127.0.0.1:{port}")
                gateway = await serving.__aenter__()
            except OSError as e:
                raise fail(f"cannot serve the API on 127.0.0.1:{port}: {e.strerror or e}",
                           hint="pass another --port, or stop what uses it") from None
            try:
                config = Config(server=gateway.url, token=gateway.admin_token,
                                project=DEFAULT_PROJECT)
                written = write_config(config) if write_config_file else None
                applied = await region.apply(load_documents(example)) if example else []
                info = _info(region, gateway.url, runtime=runtime, config=written,
                             applied=applied)
                _write_ready(data_dir / INFO_FILE, info)
                if ready_file is not None:
                    _write_ready(ready_file, info)
                _print_started(region, info, output=output, runtime=runtime)
                waiter = asyncio.ensure_future(stop.wait())
                manager = asyncio.ensure_future(region.wait())
                await asyncio.wait((waiter, manager), return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                manager.cancel()
            finally:
                await serving.__aexit__(None, None, None)
        finally:
            await region.close()
            with contextlib.suppress(FileNotFoundError):
                if _read_pid(pid_file) == os.getpid():
                    (data_dir / INFO_FILE).unlink(missing_ok=True)
                    pid_file.unlink()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if output != "json":
        console.print(f"region stopped; data kept in {data_dir}", highlight=False)


def _info(region: Any, url: str, *, runtime: str, config: Path | None,
          applied: list[str]) -> dict[str, Any]:
    return {
        "server": url, "pid": os.getpid(), "dataDir": str(region.data_dir),
        "config": str(config) if config else None, "project": "demo",
        "clusters": [{"name": c.name, "role": c.role, "zone": c.zone, "path": str(c.path),
                      "nodes": sorted(region.provisioners[c.name].all_agents())
                      if c.name in region.provisioners else []}
                     for c in region.clusters],
        "readyz": f"{region.health.url}/readyz" if region.health else None,
        "runtime": runtime, "applied": applied}


def _print_started(region: Any, info: dict[str, Any], *, output: str, runtime: str) -> None:
    if output == "json":
        print(json.dumps(info), flush=True)
        return
    table = Table(title=f"PinCompute region — data in {info['dataDir']}")
    for column in ("cluster", "role", "zone", "nodes", "objects"):
        table.add_column(column)
    for c in region.clusters:
        nodes = len(region.provisioners[c.name].all_agents()) \
            if c.name in region.provisioners else 0
        table.add_row(c.name, c.role, c.zone or "-", f"{nodes} ({runtime})" if nodes else "-",
                      str(c.store.object_count()))
    console.print(table)
    _print_access(info)
    for item in info["applied"]:
        console.print(f"applied {item} (project demo)", highlight=False)
    console.print("press Ctrl-C to stop", highlight=False)


def _print_access(info: dict[str, Any]) -> None:
    console.print(f"API:     {info['server']}  (project demo)", highlight=False)
    if info.get("config"):
        console.print(f"config:  {info['config']}  (server, admin token, project)",
                      highlight=False)
    console.print("try:     pincompute get apps · pincompute cluster list · "
                  "pincompute node list", highlight=False)


def _write_pid(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _write_ready(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


# -- detached ----------------------------------------------------------------------------------

def _detach(data_dir: Path, *, example: Path | None, output: str) -> None:
    """Start ``up`` in the background; return once it serves (or fail with its log)."""
    pid = _running_pid(data_dir)
    if pid is not None:
        try:
            info: dict[str, Any] = json.loads((data_dir / INFO_FILE).read_text())
        except (OSError, ValueError):
            raise fail(f"a region is starting or stopping in {data_dir} (pid {pid})",
                       hint="try again in a moment") from None
        console.print(f"the region of {data_dir} runs already (pid {pid})", highlight=False)
        _print_access(info)
        if example is not None:
            _apply_example(info, example)
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
        _print_access(info)
        console.print(f"stop it: pincompute down{_data_dir_flag(info)}", highlight=False)
    if example is not None:
        _apply_example(info, example)


def _data_dir_flag(info: dict[str, Any]) -> str:
    default = DEFAULT_DATA_DIR.expanduser().resolve()
    return "" if Path(info["dataDir"]) == default else f" --data-dir {info['dataDir']}"


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


def _apply_example(info: dict[str, Any], example: Path) -> None:
    """Apply the example through the SDK, wait for it, say how to use it."""
    from pincompute.sdk import parse_object_ref

    try:
        items = manifests.load([str(example)])
    except manifests.ManifestError as e:
        raise fail(str(e), code=USAGE) from None
    with Client(info["server"], token=_token(info), project=info["project"]) as pc, \
            handled(server=pc.server):
        targets = []
        for item in items:
            result, _ = pc.apply(item.obj)
            console.print(f"{item.label} {result}", highlight=False)
            targets.append(rollout.Target(parse_object_ref(item.obj["kind"])[0],
                                          item.obj["metadata"]["name"], pc.project))
        ok, why = rollout.wait(pc, targets, timeout=180.0)
        if not ok:
            raise fail(why, hint="pincompute describe " + targets[0].label)
        for t in targets:
            if t.ref.kind == "PinApp":
                _how_to_use(pc, t.name, down=f"down{_data_dir_flag(info)}")


def _token(info: dict[str, Any]) -> str | None:
    token_file = Path(info["dataDir"]) / "admin-token"
    with contextlib.suppress(OSError):
        return token_file.read_text().strip()
    return None


def _command() -> str:
    """How the user runs this command (``pincompute`` if it is on their PATH)."""
    if shutil.which("pincompute"):
        return "pincompute"
    if Path(sys.argv[0]).name == "pincompute":
        return os.path.relpath(sys.argv[0])
    return f"{Path(sys.executable).name} -m pincompute.cli.main"


def _how_to_use(pc: Client, app: str, *, down: str) -> None:
    pc_cmd = _command()
    pods = pc.pods("pinapp", app)
    console.print(f"\n[bold]{app}[/bold] is up: {len(pods)} replicas", highlight=False)
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        ip = (pod.get("status") or {}).get("podIP")
        zone = labels.get("topology.kubernetes.io/zone", "-")
        console.print(f"  {pod['metadata']['name']:<24} zone {zone:<8} "
                      f"curl http://{ip}:8080/", highlight=False)
    first = pods[0]["metadata"]["name"] if pods else "POD"
    console.print(f"""
  watch it:      {pc_cmd} get app {app} -w
  its story:     {pc_cmd} describe app {app}
  its logs:      {pc_cmd} logs -f app/{app}
  a shell:       {pc_cmd} exec -it {first} -- sh
  scale it:      {pc_cmd} scale {app} --replicas 5
  remove it:     {pc_cmd} delete app {app}
  stop all:      {pc_cmd} {down}""", highlight=False)
    if pc_cmd != "pincompute":
        console.print(f"  ({pc_cmd} is the command; `source {Path(sys.executable).parent}"
                      "/activate` puts `pincompute` on your PATH)", highlight=False)


# -- down --------------------------------------------------------------------------------------

def _running_pid(data_dir: Path) -> int | None:
    """The pid of the ``pincompute up`` serving ``data_dir``, if one runs."""
    pid = _read_pid(data_dir / PID_FILE)
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
    pid = _running_pid(data_dir)
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


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)


__all__ = ["DEFAULT_DATA_DIR", "DEFAULT_PORT", "register"]
