"""Pod volumes on the node: where each kind lives and who may read it.

Theory of operation
-------------------
The process runtime has no mount namespaces, so a volume is a directory and a
mount is a symbolic link: a container sees ``mountPath`` (``/data``) at
``$PINCOMPUTE_ROOT/data``, a link to the volume's directory, and the
environment variable ``PINCOMPUTE_VOLUME_<NAME>`` names the directory itself.
Where each kind of volume lives (DESIGN §8):

``emptyDir``   ``<pod dir>/volumes/<name>`` — lives and dies with the pod, shared
               by its containers (they run as the same uid).
``logging``    ``<pod dir>/logging/<name>`` — files the app writes there are logs
               the node API can stream like stdout.
``persistent`` ``<cluster storage>/persistent/<namespace>/<owner>/<name>`` — keyed
               by the pod's controlling owner (the PinPod), so a replacement pod
               on another node of the machine finds the same data (an EBS volume
               re-attached after failover).  Ownership moves to the new pod's uid
               while it runs and back to root at teardown
               (:func:`~.identity.disown`), so whoever gets the uid next finds
               nothing of it.
``shared``     ``<cluster storage>/shares/<namespace>/<share>`` — one directory for
               every pod of the project naming the share (EFS): group-owned by the
               project's gid, which each pod of the project holds as a
               supplementary group, mode 2770.
``configMap``, ``secret``  ``<pod dir>/config/<name>`` — the object's keys as
               files, written when the pod starts.

Everything of a pod (its directory, the files inside) belongs to the pod's uid
with mode 0700 when the agent runs as root (:mod:`.identity`), so another pod
cannot look in.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .env import config_data

_ENV_NAME = re.compile(r"[^A-Za-z0-9]")


class VolumeError(ValueError):
    """A volume cannot be prepared (reported on the pod, which does not start)."""


@dataclass(frozen=True, slots=True)
class VolumePaths:
    by_name: Mapping[str, Path]
    """Volume name → host directory."""
    read_only: frozenset[str] = frozenset()


def env_name(volume: str) -> str:
    return "PINCOMPUTE_VOLUME_" + _ENV_NAME.sub("_", volume).upper()


def owner_key(pod: Mapping[str, Any]) -> str:
    md = pod.get("metadata") or {}
    for ref in md.get("ownerReferences") or ():
        if ref.get("controller"):
            return f"{ref.get('kind', 'owner').lower()}-{ref.get('name')}"
    return f"pod-{md.get('name')}"


def prepare(pod: Mapping[str, Any], *, pod_dir: Path, storage: Path,
            configs: Mapping[tuple[str, str], Mapping[str, Any] | None],
            uid: int | None, gid: int | None, project_gid: int | None) -> VolumePaths:
    """Create (or find) the directories of the pod's volumes; returns them by name."""
    md = pod.get("metadata") or {}
    namespace = md.get("namespace") or "default"
    out: dict[str, Path] = {}
    read_only: set[str] = set()
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        name = vol["name"]
        if "emptyDir" in vol:
            path = pod_dir / "volumes" / name
            _mkdir(path, uid, gid)
        elif "logging" in vol:
            path = pod_dir / "logging" / name
            _mkdir(path, uid, gid)
        elif "persistent" in vol:
            path = storage / "persistent" / namespace / owner_key(pod) / name
            _mkdir_parents(storage, path.parent)
            path.mkdir(exist_ok=True)
            if uid is not None:
                _chown_tree(path, uid, gid if gid is not None else -1)
            os.chmod(path, 0o700)
        elif "shared" in vol:
            share = vol["shared"]["share"]
            path = storage / "shares" / namespace / share
            _mkdir_parents(storage, path.parent)
            path.mkdir(exist_ok=True)
            if project_gid is not None:
                os.chown(path, 0, project_gid)
                os.chmod(path, 0o2770)
            if vol["shared"].get("readOnly"):
                read_only.add(name)
        elif "configMap" in vol or "secret" in vol:
            kind = "ConfigMap" if "configMap" in vol else "Secret"
            src = vol.get("configMap") or vol.get("secret") or {}
            obj_name = src.get("name") or src.get("secretName") or ""
            obj = configs.get((kind, obj_name))
            if obj is None and not src.get("optional"):
                raise VolumeError(f'{kind.lower()} "{obj_name}" not found')
            path = pod_dir / "config" / name
            _write_config(path, config_data(obj), src.get("items"), uid, gid)
            read_only.add(name)
        else:
            raise VolumeError(f"volume {name!r} has no supported source")
        out[name] = path
    return VolumePaths(out, frozenset(read_only))


def mount(container_root: Path, container: Mapping[str, Any], volumes: VolumePaths) -> dict[
        str, str]:
    """Link the container's mounts under its root; returns env vars naming the volumes."""
    env: dict[str, str] = {}
    for m in container.get("volumeMounts") or ():
        source = volumes.by_name.get(m["name"])
        if source is None:
            raise VolumeError(f"volume {m['name']!r} is not declared by the pod")
        if m.get("subPath"):
            source = source / m["subPath"]
            source.mkdir(parents=True, exist_ok=True)
        link = container_root / str(m["mountPath"]).lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(source, target_is_directory=True)
        env[env_name(m["name"])] = str(source)
    return env


def _mkdir(path: Path, uid: int | None, gid: int | None) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if uid is not None:
        os.chown(path, uid, gid if gid is not None else -1)


def _mkdir_parents(storage: Path, path: Path) -> None:
    """Every directory from ``storage`` down to ``path``: root's, mode 0711.

    The storage tree is the agent's: pods pass through it to their own volume
    but cannot list it, so no tenant learns another's project, owner or share
    names.  Each level is set explicitly — ``mkdir(parents=True)`` would create
    the intermediate ones 0755 (and the umask could take the x bits away).
    """
    current = storage
    for part in path.relative_to(storage).parts:
        current = current / part
        with contextlib.suppress(FileExistsError):
            current.mkdir(mode=0o711)
        st = os.lstat(current)
        if not stat.S_ISDIR(st.st_mode):
            raise VolumeError(f"{current} is not a directory")
        if stat.S_IMODE(st.st_mode) != 0o711 or (os.geteuid() == 0 and st.st_uid != 0):
            if os.geteuid() == 0:
                os.lchown(current, 0, 0)
            os.chmod(current, 0o711)


def persistent_paths(volumes: VolumePaths, *, storage: Path) -> list[Path]:
    """The volumes that outlive the pod (persistent ones), to hand back at teardown."""
    base = storage / "persistent"
    return [p for p in volumes.by_name.values() if p.is_relative_to(base)]


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, gid)


def _write_config(path: Path, data: Mapping[str, str], items: Any, uid: int | None,
                  gid: int | None) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    wanted = ({i["key"]: i["path"] for i in items} if items else {k: k for k in data})
    for key, rel in wanted.items():
        if key not in data:
            continue
        target = path / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise VolumeError(f"config item path {rel!r} must be relative without '..'")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[key])
        os.chmod(target, 0o400)
        if uid is not None:
            os.chown(target, uid, gid if gid is not None else -1)
    if uid is not None:
        _chown_tree(path, uid, gid if gid is not None else -1)


__all__ = ["VolumeError", "VolumePaths", "env_name", "mount", "owner_key", "persistent_paths",
           "prepare"]
