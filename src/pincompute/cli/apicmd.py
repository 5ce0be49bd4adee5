"""``pincompute api``: serve the REST gateway in front of a real host cluster.

The gateway itself is :mod:`pincompute.gateway` (``Gateway.connect``); this command parses
its options, prints where it listens and where the admin token is, and serves until Ctrl-C.
Errors are one line (the kubeconfig, the listen address, the TLS files).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_TOKEN_FILE = Path("~/.pincompute/api-admin-token")
DEFAULT_AUDIT_LOG = Path("~/.pincompute/audit.log")

_err = Console(stderr=True)
_out = Console()


def api_command(
    kubeconfig: Annotated[str | None, typer.Option(
        help="kubeconfig of the host cluster (default: in-cluster, $KUBECONFIG, "
        "~/.kube/config)")] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    listen: Annotated[str, typer.Option(
        help="HOST:PORT to listen on (127.0.0.1 unless told otherwise)")] = "127.0.0.1:8443",
    tls_cert: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="TLS certificate (PEM); with --tls-key")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="TLS private key (PEM)")] = None,
    admin_token_file: Annotated[Path, typer.Option(
        help="where the platform admin's token is kept (mode 0600)")] = DEFAULT_TOKEN_FILE,
    audit_log: Annotated[Path, typer.Option(
        help="append-only audit log (JSON lines, mode 0600)")] = DEFAULT_AUDIT_LOG,
) -> None:
    """Serve the REST API in front of a real host cluster; Ctrl-C stops it."""
    from pincompute.gateway import parse_listen

    logging.basicConfig(level=os.environ.get("PINCOMPUTE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if (tls_cert is None) != (tls_key is None):
        _fail("--tls-cert and --tls-key go together", code=2)
    try:
        parse_listen(listen)
    except ValueError as e:
        _fail(str(e), code=2)
    try:
        asyncio.run(_serve(kubeconfig, context=context, listen=listen, tls_cert=tls_cert,
                           tls_key=tls_key, token_file=admin_token_file.expanduser(),
                           audit_log=audit_log.expanduser()))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _fail(message: str, *, code: int = 1) -> None:
    _err.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


async def _serve(kubeconfig: str | None, *, context: str | None, listen: str,
                 tls_cert: Path | None, tls_key: Path | None, token_file: Path,
                 audit_log: Path) -> None:
    from pincompute.api.context import ApiSettings
    from pincompute.controlplane import StartupError
    from pincompute.gateway import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Gateway.connect(kubeconfig, context=context, listen=listen,
                                   admin_token_file=token_file, tls_cert=tls_cert,
                                   tls_key=tls_key,
                                   settings=ApiSettings(audit_path=audit_log)) as gw:
            _out.print(f"serving {gw.url}", highlight=False)
            _out.print(f"admin token in {token_file}", highlight=False)
            await stop.wait()
    except (StartupError, OSError, ValueError) as e:
        _fail(str(e))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
