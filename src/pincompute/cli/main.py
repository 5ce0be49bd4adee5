"""The ``pincompute`` command line (Typer + Rich).

Theory of operation
-------------------
One Typer application; each verb family is a module that registers its commands:

=====================  ==================================================================
module                 verbs
=====================  ==================================================================
:mod:`.region`         ``up`` — a local region and its API (the assembly); ``down``
                       and ``up --detach`` are :mod:`.background`, what ``up`` tells
                       the user :mod:`.welcome`
:mod:`.workloads`      ``apply``, ``get``, ``describe``, ``delete``
:mod:`.operations`     ``scale``, ``pause``, ``resume``, ``stop``, ``start``, ``restart``,
                       ``restart-container``, ``suspend``, ``trigger``, ``rollout ...``
:mod:`.debugging`      ``logs``, ``exec``, ``events``
:mod:`.platform`       ``project``, ``cluster``, ``node``, ``token``
:mod:`.top`            ``top pods|apps|nodes`` — CPU and memory in use
:mod:`.rotation`       ``rotation list|status|pause|resume|abort`` — node-image rotations
:mod:`.operators`      ``install``, ``controller``, ``crds`` — real clusters (the assembly)
:mod:`.apicmd`         ``api`` — the gateway in front of a real host cluster
:mod:`.dev`            ``dev kube-env``
=====================  ==================================================================

User verbs reach the platform through the SDK only (:mod:`.common`); ``up``,
``install`` and ``controller`` start controllers through the assembly.  Errors are
one line with a hint and an exit code per kind of failure (``pincompute --help``
lists them); shell completion comes from Typer (``--install-completion``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from pincompute import __version__

from . import (
    apicmd,
    debugging,
    dev,
    operations,
    operators,
    platform,
    region,
    rotation,
    top,
    workloads,
)
from .common import EXIT_CODES, GLOBALS, console

_EPILOG = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items())

app = typer.Typer(name="pincompute", no_args_is_help=True, add_completion=True,
                  rich_markup_mode=None, epilog=_EPILOG,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="PinCompute: a Kubernetes-backed regional Platform-as-a-Service.")


@app.callback()
def main(
    server: Annotated[str | None, typer.Option(
        envvar="PINCOMPUTE_SERVER", help="the API's URL (default: the config file's)",
        show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        envvar="PINCOMPUTE_TOKEN", help="the API token (default: the config file's)",
        show_default=False, show_envvar=True)] = None,
) -> None:
    """Global options; PINCOMPUTE_PROJECT and each verb's -p choose the project."""
    GLOBALS.server = server
    GLOBALS.token = token


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


for _module in (region, workloads, operations, debugging, top, platform, rotation, operators,
                dev):
    _module.register(app)
app.command("api")(apicmd.api_command)


if __name__ == "__main__":  # pragma: no cover
    app()
