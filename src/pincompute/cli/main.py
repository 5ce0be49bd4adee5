"""The ``pincompute`` command line (Typer + Rich).

Each verb is a thin layer over a library call; humans get tables, scripts get
``-o json``.  Verbs that need the REST gateway arrive with it; today the command
runs a local region (``up``) and helps develop PinCompute itself (``crds``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..process import tune_gc

app = typer.Typer(name="pincompute", no_args_is_help=True, add_completion=False,
                  help="PinCompute: a Kubernetes-backed regional Platform-as-a-Service.")
console = Console()
err = Console(stderr=True)

DEFAULT_DATA_DIR = Path("~/.pincompute/data")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="where the region keeps its data")] =
        DEFAULT_DATA_DIR,
    zones: Annotated[int, typer.Option(min=1, max=26, help="member clusters, one per zone")] = 3,
    example: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="a YAML file of objects to apply once started")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Start a local region (host + member clusters + controllers); Ctrl-C stops it."""
    logging.basicConfig(level=os.environ.get("PINCOMPUTE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tune_gc()
    try:
        asyncio.run(_up(data_dir, zones=zones, example=example, output=output))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        raise typer.Exit(130) from None


async def _up(data_dir: Path, *, zones: int, example: Path | None, output: str) -> None:
    from ..region import DataDirInUse, Region, load_documents

    with console.status("starting the region…"):
        try:
            region = await Region.open(data_dir, zones=zones)
        except DataDirInUse as e:
            err.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from None
        await region.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    applied: list[str] = []
    try:
        await region.ensure_project()
        if example is not None:
            applied = await region.apply(load_documents(example))
        if output == "json":
            print(json.dumps({
                "dataDir": str(region.data_dir),
                "clusters": [{"name": c.name, "role": c.role, "zone": c.zone,
                              "path": str(c.path)} for c in region.clusters],
                "applied": applied}), flush=True)
        else:
            table = Table(title=f"PinCompute region — data in {region.data_dir}")
            for column in ("cluster", "role", "zone", "data", "objects"):
                table.add_column(column)
            for c in region.clusters:
                table.add_row(c.name, c.role, c.zone or "-", str(c.path),
                              str(c.store.object_count()))
            console.print(table)
            console.print("project demo: namespace ready in every cluster")
            for item in applied:
                console.print(f"applied {item} to the host cluster (project demo)")
            console.print("controller manager running (leader-elected on "
                          "pincompute-system/pincompute-controller-manager); "
                          "press Ctrl-C to stop", highlight=False)
        waiter = asyncio.ensure_future(stop.wait())
        manager = asyncio.ensure_future(region.wait())
        await asyncio.wait((waiter, manager), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        manager.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await region.close()
    if output != "json":
        console.print("region stopped; data kept in " + str(region.data_dir), highlight=False)


@app.command()
def crds(
    check: Annotated[bool, typer.Option(help="fail if deploy/crds is out of date")] = False,
) -> None:
    """Regenerate the CRD manifests in deploy/crds from the kinds' schemas."""
    from ..model import crd

    raise typer.Exit(crd.main(["--check"] if check else []))


if __name__ == "__main__":  # pragma: no cover
    app()
