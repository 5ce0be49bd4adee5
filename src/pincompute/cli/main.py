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
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from pincompute import __version__
from pincompute.gctuning import tune_gc
from pincompute.kube.errors import ApiError

installer_role = Literal["host", "member"]

app = typer.Typer(name="pincompute", no_args_is_help=True, add_completion=False,
                  help="PinCompute: a Kubernetes-backed regional Platform-as-a-Service.")
console = Console()
err = Console(stderr=True)


def fail(message: str, *, code: int = 1) -> typer.Exit:
    """Print one error line (never wrapped, never a traceback); return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False, markup=True)
    return typer.Exit(code)

DEFAULT_DATA_DIR = Path("~/.pincompute/data")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="where the region keeps its data")] =
        DEFAULT_DATA_DIR,
    zones: Annotated[int, typer.Option(
        min=1, max=26, help="zones (failure domains) of a new region")] = 3,
    clusters_per_zone: Annotated[int, typer.Option(
        min=1, help="member clusters in each zone of a new region (a region that has "
        "member clusters resumes with those)")] = 1,
    runtime: Annotated[str, typer.Option(
        help="node runtime: process (real processes) or sim (simulated, for scale)")] =
        "process",
    nodes_per_zone: Annotated[int, typer.Option(
        min=0, help="nodes per member cluster, not per zone: the initial size of each new "
        "member cluster's general node pool")] = 2,
    example: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="a YAML file of objects to apply once started")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    single_user: Annotated[bool, typer.Option(
        "--single-user", help="without root, allow more than one project (all of them "
        "yours: their pods share your uid)")] = False,
) -> None:
    """Start a local region (host + member clusters + controllers); Ctrl-C stops it."""
    logging.basicConfig(level=os.environ.get("PINCOMPUTE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tune_gc()
    if runtime not in ("process", "sim"):
        raise fail(f"--runtime must be process or sim, not {runtime!r}", code=2)
    try:
        asyncio.run(_up(data_dir, zones=zones, clusters_per_zone=clusters_per_zone,
                        example=example, output=output, runtime=runtime,
                        nodes_per_cluster=nodes_per_zone, single_user=single_user))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        raise typer.Exit(130) from None


async def _up(data_dir: Path, *, zones: int, clusters_per_zone: int, example: Path | None,
              output: str, runtime: str, nodes_per_cluster: int,
              single_user: bool = False) -> None:
    from pincompute.controllers import CONTROLLER_MANAGER_LEASE
    from pincompute.kube.backends.embedded import StoreUnavailable
    from pincompute.model.wellknown import SYSTEM_NAMESPACE
    from pincompute.region import DataDirInUse, Region, load_documents

    with console.status("starting the region…"):
        try:
            region = await Region.open(data_dir, zones=zones, runtime=runtime,  # type: ignore[arg-type]
                                       clusters_per_zone=clusters_per_zone,
                                       nodes_per_cluster=nodes_per_cluster,
                                       single_user=single_user)
        except (DataDirInUse, StoreUnavailable) as e:
            # One line naming the file and what to do (a corrupt or locked store).
            raise fail(f"{e}") from None
        if region.shared_uid is not None:
            mode = ("--single-user: every project is yours" if single_user else
                    "one project only (--single-user allows more, all of them yours)")
            err.print(f"[yellow]warning:[/yellow] {region.shared_uid}; {mode}", soft_wrap=True,
                      highlight=False, markup=True)
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
                              "path": str(c.path),
                              "nodes": sorted(region.provisioners[c.name].all_agents())
                              if c.name in region.provisioners else []}
                             for c in region.clusters],
                "readyz": f"{region.health.url}/readyz" if region.health else None,
                "applied": applied}), flush=True)
        else:
            table = Table(title=f"PinCompute region — data in {region.data_dir}")
            for column in ("cluster", "role", "zone", "nodes", "data", "objects"):
                table.add_column(column)
            for c in region.clusters:
                nodes = len(region.provisioners[c.name].all_agents()) \
                    if c.name in region.provisioners else 0
                table.add_row(c.name, c.role, c.zone or "-", f"{nodes} ({runtime})"
                              if nodes else "-", str(c.path), str(c.store.object_count()))
            console.print(table)
            console.print("project demo: namespace ready in every cluster")
            if region.health is not None:
                console.print(f"health: {region.health.url}/readyz", highlight=False)
            for item in applied:
                console.print(f"applied {item} to the host cluster (project demo)")
            console.print("controller manager running (leader-elected on "
                          f"{SYSTEM_NAMESPACE}/{CONTROLLER_MANAGER_LEASE}); "
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
def install(
    kubeconfig: Annotated[str | None, typer.Option(
        help="kubeconfig of the cluster (default: in-cluster, $KUBECONFIG, ~/.kube/config)")]
        = None,
    role: Annotated[str, typer.Option(help="host or member")] = "host",
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    cluster: Annotated[str | None, typer.Option(
        help="a member cluster's name (recorded for its in-cluster controllers)")] = None,
    render: Annotated[Path | None, typer.Option(
        help="write the manifests to this directory instead of a cluster")] = None,
) -> None:
    """Install PinCompute's CRDs, namespace and RBAC on a real cluster (idempotent)."""
    from pincompute import install as installer

    if role not in ("host", "member"):
        raise fail(f"--role must be host or member, not {role!r}", code=2)
    if render is not None:
        changed = installer.write_rendered(render)
        console.print(f"wrote {len(changed)} manifest files to {render}")
        return
    asyncio.run(_install(kubeconfig, role, context, cluster))  # type: ignore[arg-type]


async def _install(kubeconfig: str | None, role: installer_role, context: str | None,
                   cluster: str | None) -> None:
    from rich.progress import Progress

    from pincompute import install as installer
    from pincompute.controlplane import StartupError, connect

    try:
        client = connect(kubeconfig, context=context)
    except StartupError as e:
        raise fail(f"{e}") from None
    total = len(installer.manifests(role, cluster=cluster))
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"installing ({role})", total=total)
            done = await installer.install(
                client, role, cluster=cluster, progress=lambda item: progress.update(
                    task, advance=1, description=f"applied {item}"))
    except installer.InstallError as e:
        raise fail(f"{e}") from None
    except ApiError as e:
        raise fail(f"{client.server}: {e.message}") from None
    finally:
        await client.close()
    console.print(f"installed PinCompute ({role}) on {client.server}: {len(done)} objects, "
                  "CRDs established", highlight=False)


controller_app = typer.Typer(no_args_is_help=True,
                             help="Run PinCompute's controllers against real clusters.")
app.add_typer(controller_app, name="controller")


@controller_app.command("federation")
def controller_federation(
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig of the host cluster")] =
        None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    lease_duration: Annotated[float, typer.Option(help="leader lease, seconds")] = 15.0,
) -> None:
    """The federation control plane on the host cluster (leader-elected)."""
    _configure_logging()
    asyncio.run(_run_controllers("host", kubeconfig, context, lease_duration, cluster=""))


@controller_app.command("member")
def controller_member(
    cluster: Annotated[str, typer.Option(help="this member cluster's name")],
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig of the member cluster")] =
        None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    lease_duration: Annotated[float, typer.Option(help="leader lease, seconds")] = 15.0,
) -> None:
    """The member operators on one member cluster (leader-elected)."""
    _configure_logging()
    asyncio.run(_run_controllers("member", kubeconfig, context, lease_duration,
                                 cluster=cluster))


def _configure_logging() -> None:
    logging.basicConfig(level=os.environ.get("PINCOMPUTE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Each retry of a request is not news; the error that ends them is.
    logging.getLogger("stamina").setLevel(logging.ERROR)
    for name in ("httpx", "httpx2", "httpcore"):  # one line per request: far too chatty
        logging.getLogger(name).setLevel(logging.WARNING)
    tune_gc()


async def _run_controllers(role: str, kubeconfig: str | None, context: str | None,
                           lease_duration: float, *, cluster: str) -> None:
    from pincompute.controlplane import StartupError, connect, federation_manager, member_manager
    from pincompute.runtime.manager import LeadershipLost

    clients: list = []
    try:
        client = connect(kubeconfig, context=context)
        clients = [client]
        if role == "host":
            manager, clients = await federation_manager(client, lease_duration=lease_duration)
        else:
            manager, clients = await member_manager(client, cluster=cluster,
                                                    lease_duration=lease_duration)
        err.print(f"{manager.name}: running against {client.server} as "
                  f"{manager.elector.identity if manager.elector else '-'}; Ctrl-C stops",
                  highlight=False)
        await manager.run(handle_signals=True)
    except StartupError as e:
        raise fail(f"{e}") from None
    except LeadershipLost as e:
        raise fail(f"{e}; exiting so the supervisor restarts us", code=3) from None
    finally:
        for c in clients:
            await c.close()


@app.command()
def crds(
    check: Annotated[bool, typer.Option(help="fail if deploy/crds is out of date")] = False,
    docs: Annotated[Path | None, typer.Option(
        help="instead, the kinds' reference pages in this directory (docs/reference)")] = None,
) -> None:
    """Regenerate the CRD manifests in deploy/crds (or with --docs, the kinds' reference
    pages) from the kinds' schemas."""
    if docs is not None:
        from pincompute.model import reference

        raise typer.Exit(reference.main([*(["--check"] if check else []), "--dir", str(docs)]))
    from pincompute.model import crd

    raise typer.Exit(crd.main(["--check"] if check else []))


# --- pincompute dev: tools for developing PinCompute itself ----------------------------------

dev_app = typer.Typer(name="dev", no_args_is_help=True,
                      help="Tools for developing PinCompute itself.")
app.add_typer(dev_app)


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


if __name__ == "__main__":  # pragma: no cover
    app()
