"""Telling the user what they have: where the API is, and how to use the example app.

After ``up`` (foreground or ``--detach``) the user is told where the API serves
and where the config is (:func:`print_access`).  With ``--example``, a detached
``up`` applies the example through the SDK like any client, waits for it to roll
out, and prints how to reach each replica, watch it, read its logs, open a shell
in it and stop everything — the commands spelled as this user runs them
(``pincompute``, or the path to it when it is not on their PATH).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.sdk import Client, parse_object_ref

from . import manifests, rollout
from .common import DEFAULT_DATA_DIR, USAGE, console, fail, handled


def print_access(info: dict[str, Any]) -> None:
    console.print(f"API:     {info['server']}  (project demo)", highlight=False)
    console.print(f"console: {info['server']}/  (sign in with the admin token from the config)",
                  highlight=False)
    if info.get("config"):
        console.print(f"config:  {info['config']}  (server, admin token, project)",
                      highlight=False)
    console.print("try:     pincompute get apps · pincompute cluster list · "
                  "pincompute node list", highlight=False)


def data_dir_flag(info: dict[str, Any]) -> str:
    default = DEFAULT_DATA_DIR.expanduser().resolve()
    return "" if Path(info["dataDir"]) == default else f" --data-dir {info['dataDir']}"


def apply_example(info: dict[str, Any], example: Path) -> None:
    """Apply the example through the SDK, wait for it, say how to use it."""
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
                _how_to_use(pc, t.name, down=f"down{data_dir_flag(info)}")


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
        zone = labels.get(ZONE_LABEL, "-")
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
