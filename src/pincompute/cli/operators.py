"""Running PinCompute on real clusters: ``install``, ``controller federation|member``, ``crds``.

These verbs wire controllers into processes through the assembly
(:mod:`pincompute.install`, :mod:`pincompute.controlplane`), not through the API:
they are how an operator brings the platform up, before any gateway exists.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from pincompute.gctuning import tune_gc
from pincompute.kube.errors import ApiError

from .common import USAGE, console, err, fail

installer_role = Literal["host", "member"]


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
        raise fail(f"--role must be host or member, not {role!r}", code=USAGE)
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


def register(root: typer.Typer) -> None:
    root.command()(install)
    root.add_typer(controller_app, name="controller")
    root.command()(crds)
