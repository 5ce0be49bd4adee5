"""``pincompute up``: a whole region on this machine, and its API.

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

``--detach`` runs the same command in the background and ``down`` stops it
(:mod:`.background`).  With ``--example FILE`` the file's objects are applied once
the region serves: in the foreground by the region itself, detached through the
SDK, waiting for them to roll out and saying how to use the app (:mod:`.welcome`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pincompute.gctuning import tune_gc
from pincompute.sdk import Config, write_config

from . import background
from .background import DataDir
from .common import DEFAULT_DATA_DIR, USAGE, console, fail, warn
from .welcome import print_access

DEFAULT_PORT = 8443


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
    if port and not background.running_pid(data_dir):
        _check_port(port)
    if detach:
        background.detach(data_dir, example=example, output=output)
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
    pid_file = data_dir / background.PID_FILE
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
            background.write_pid(pid_file)
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
                background.write_info(data_dir / background.INFO_FILE, info)
                if ready_file is not None:
                    background.write_info(ready_file, info)
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
                if background.read_pid(pid_file) == os.getpid():
                    (data_dir / background.INFO_FILE).unlink(missing_ok=True)
                    pid_file.unlink()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if output != "json":
        console.print(f"region stopped; data kept in {data_dir}", highlight=False)


def _check_port(port: int) -> None:
    """Fail in one line, before anything starts, if the API's port is taken (the server
    would only find out after the whole region had started)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            raise fail(f"cannot serve the API on 127.0.0.1:{port}: {e.strerror or e}",
                       code=USAGE, hint="pass another --port (0: any free one), or stop "
                       "what uses it") from None


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
    print_access(info)
    for item in info["applied"]:
        console.print(f"applied {item} (project demo)", highlight=False)
    console.print("press Ctrl-C to stop", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(background.down)


__all__ = ["DEFAULT_PORT", "register"]
