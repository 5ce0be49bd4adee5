"""``pincompute dev``: tools for developing PinCompute itself (real Kubernetes clusters on
loopback, the environment the real-cluster tests use)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import console, err

dev_app = typer.Typer(name="dev", no_args_is_help=True,
                      help="Tools for developing PinCompute itself.")


@dev_app.command("kube-env")
def dev_kube_env(
    members: Annotated[int, typer.Option(min=0, max=26,
                                         help="member clusters (zone-a, zone-b, …)")] = 2,
    work_dir: Annotated[Path | None, typer.Option(
        help="data, logs and kubeconfigs (default: a new temporary directory)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the work directory after stopping")] = False,
) -> None:
    """Run real Kubernetes clusters (a host and members with kwok nodes) on loopback ports
    until Ctrl-C; the same environment the real-cluster tests use."""
    try:
        asyncio.run(_dev_kube_env(members=members, work_dir=work_dir, keep=keep))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        raise typer.Exit(130) from None


async def _dev_kube_env(*, members: int, work_dir: Path | None, keep: bool) -> None:
    from pincompute.kubeenv import KubeEnv, KubeEnvError, default_clusters, find_binaries

    try:
        bin_dir = await asyncio.to_thread(
            find_binaries, on_build=lambda msg: err.print(msg, highlight=False))
    except KubeEnvError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    env = KubeEnv(clusters=default_clusters(members=members), work_dir=work_dir, keep=keep,
                  bin_dir=bin_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with console.status(f"starting {members + 1} Kubernetes clusters…"):
            starting = asyncio.ensure_future(env.up())
            interrupted = asyncio.ensure_future(stop.wait())
            await asyncio.wait((starting, interrupted), return_when=asyncio.FIRST_COMPLETED)
            interrupted.cancel()
            if not starting.done():
                starting.cancel()  # up() stops what it started
                await asyncio.gather(starting, return_exceptions=True)
                return
        try:
            starting.result()
        except KubeEnvError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(1) from None
        table = Table(title=f"Kubernetes clusters up in {env.startup_seconds:.1f}s — "
                            f"{env.work_dir}")
        for column in ("cluster", "role", "zone", "nodes", "server", "kubeconfig"):
            table.add_column(column, overflow="fold")
        for c in env.clusters.values():
            table.add_row(c.name, c.role, c.zone or "-", str(len(c.node_names)), c.server,
                          str(c.kubeconfig))
        console.print(table)
        console.print(f"export KUBECONFIG={env.kubeconfig}    # every cluster, one context "
                      "each: kubectl --context <cluster>", highlight=False, soft_wrap=True)
        for c in env.clusters.values():
            console.print(f"export KUBECONFIG={c.kubeconfig}    # {c.name} only",
                          highlight=False, soft_wrap=True)
        console.print(f"logs: {env.work_dir}/<cluster>/logs; press Ctrl-C to stop",
                      highlight=False, soft_wrap=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        with console.status("stopping the clusters…"):
            await env.down()
    console.print("clusters stopped" + (f"; work directory kept: {env.work_dir}" if keep
                                        else ""), highlight=False, soft_wrap=True)


def register(root: typer.Typer) -> None:
    root.add_typer(dev_app)
