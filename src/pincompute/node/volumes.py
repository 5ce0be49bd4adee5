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
               files, written when the pod starts and replaced atomically whenever the
               object changes (:mod:`.configvolume`, :mod:`.configsync`).

When the agent runs as root (:mod:`.identity`) a pod's directory and the
directories grouping its volumes belong to root; each volume directory is the
pod's own (mode 0700), and config volumes are root's, readable by the pod's
group only (0750/0440), so a pod cannot rewrite its secrets and no other pod
can look in.  Every directory here is reached without following links, from a
descriptor of a root-owned directory (:mod:`.fsguard`): a link a tenant planted
in its own volume is never followed by the agent.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import configvolume, fsguard
from .env import config_data

_ENV_NAME = re.compile(r"[^A-Za-z0-9]")


class VolumeError(ValueError):
    """A volume cannot be prepared (reported on the pod, which does not start)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigSource:
    """A config volume of the pod: which object it shows, to rewrite it when that changes."""

    volume: str
    kind: str
    """``ConfigMap`` or ``Secret``."""
    name: str
    items: Any = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class VolumePaths:
    by_name: Mapping[str, Path]
    """Volume name → host directory."""
    read_only: frozenset[str] = frozenset()
    configs: tuple[ConfigSource, ...] = ()
    """The ConfigMap and Secret volumes (written again when their object changes)."""


def env_name(volume: str) -> str:
    return "PINCOMPUTE_VOLUME_" + _ENV_NAME.sub("_", volume).upper()


def owner_key(pod: Mapping[str, Any]) -> str:
    md = pod.get("metadata") or {}
    for ref in md.get("ownerReferences") or ():
        if ref.get("controller"):
            return f"{ref.get('kind', 'owner').lower()}-{ref.get('name')}"
    return f"pod-{md.get('name')}"


def prepare(pod: Mapping[str, Any], *, pod_dir: Path, pod_fd: int, storage: Path,
            configs: Mapping[tuple[str, str], Mapping[str, Any] | None],
            uid: int | None, gid: int | None, project_gid: int | None) -> VolumePaths:
    """Create (or find) the directories of the pod's volumes; returns them by name.

    ``pod_fd`` is the pod's directory ``pod_dir``, open (the agent's, root-owned).
    """
    md = pod.get("metadata") or {}
    namespace = md.get("namespace") or "default"
    owner = -1 if uid is None else uid
    group = -1 if uid is None else (gid if gid is not None else uid)
    out: dict[str, Path] = {}
    read_only: set[str] = set()
    sources: list[ConfigSource] = []
    groups: dict[str, int] = {}
    with contextlib.ExitStack() as fds:
        def group_dir(parent_fd: int, name: str) -> int:
            # Directories that only group a pod's leaves are root's.
            if name not in groups:
                groups[name] = fsguard.ensure_dir(parent_fd, name, mode=0o711,
                                                  uid=-1 if uid is None else 0,
                                                  gid=-1 if uid is None else 0)
                fds.callback(os.close, groups[name])
            return groups[name]

        storage_fd = -1
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            name = fsguard.check_name(vol.get("name"), what="volume name")
            if "emptyDir" in vol or "logging" in vol:
                kind = "volumes" if "emptyDir" in vol else "logging"
                path = pod_dir / kind / name
                os.close(fsguard.ensure_dir(group_dir(pod_fd, kind), name, mode=0o700,
                                            uid=owner, gid=group, owners=_owners(uid)))
            elif "persistent" in vol or "shared" in vol:
                parts: tuple[str, ...]
                if storage_fd == -1:
                    storage_fd = fds.enter_context(fsguard.opened_dir(storage))
                if "persistent" in vol:
                    parts = ("persistent", fsguard.check_name(namespace, what="namespace"),
                             fsguard.check_name(owner_key(pod), what="owner"), name)
                    leaf = _persistent(storage_fd, parts, uid=uid, gid=gid)
                else:
                    share = fsguard.check_name((vol.get("shared") or {}).get("share"),
                                               what="share")
                    parts = ("shares", fsguard.check_name(namespace, what="namespace"), share)
                    leaf = _share(storage_fd, parts, project_gid=project_gid, root=uid)
                    if vol["shared"].get("readOnly"):
                        read_only.add(name)
                os.close(leaf)
                path = storage.joinpath(*parts)
            elif "configMap" in vol or "secret" in vol:
                kind = "ConfigMap" if "configMap" in vol else "Secret"
                src = vol.get("configMap") or vol.get("secret") or {}
                obj_name = src.get("name") or src.get("secretName") or ""
                obj = configs.get((kind, obj_name))
                if obj is None and not src.get("optional"):
                    raise VolumeError(f'{kind.lower()} "{obj_name}" not found')
                path = pod_dir / "config" / name
                write_config(group_dir(pod_fd, "config"), name, obj, src.get("items"),
                             uid=uid, gid=group)
                sources.append(ConfigSource(volume=name, kind=kind, name=obj_name,
                                            items=src.get("items"),
                                            optional=bool(src.get("optional"))))
                read_only.add(name)
            else:
                raise VolumeError(f"volume {name!r} has no supported source")
            out[name] = path
    return VolumePaths(out, frozenset(read_only), tuple(sources))


def mount(root_fd: int, container: Mapping[str, Any], volumes: VolumePaths) -> list[int]:
    """Link the container's mounts under its root (open as ``root_fd``, still root's).

    Returns the descriptors of the directories created on the way (to be handed to the
    pod, deepest last; the caller closes them).  The root is new (rebuilt at each start)
    and the agent's until the caller hands it over, so nothing in it is the tenant's yet.
    """
    created: list[int] = []
    try:
        for m in container.get("volumeMounts") or ():
            source = volumes.by_name.get(m.get("name"))
            if source is None:
                raise VolumeError(f"volume {m.get('name')!r} is not declared by the pod")
            parts = fsguard.relative_parts(m.get("mountPath"), what="mountPath")
            if not parts:
                raise VolumeError("mountPath must not be the container's root")
            if m.get("subPath"):
                sub = fsguard.relative_parts(m["subPath"], what="subPath")
                if any(c.volume == m.get("name") for c in volumes.configs):
                    # Root's and read-only: nothing to create; through ``..data`` so the
                    # mount follows the object's updates (:mod:`.configvolume`).
                    source = source.joinpath(configvolume.DATA, *sub)
                else:
                    _make_sub_path(source, sub)
                    source = source.joinpath(*sub)
            fds = fsguard.make_dirs(root_fd, parts[:-1], mode=0o700)
            created += fds
            fsguard.symlink(str(source), fds[-1] if fds else root_fd, parts[-1])
    except BaseException:
        for fd in created:
            os.close(fd)
        raise
    return created


def _owners(uid: int | None) -> tuple[int, ...] | None:
    # A pod's leaf may be kept only if it is the pod's or root's; anything else is replaced.
    return None if uid is None else (uid, 0)


def _make_sub_path(source: Path, sub: tuple[str, ...]) -> None:
    """Create ``sub`` inside the volume ``source`` (a tenant's tree: links are refused).

    What is created gets the volume's own owner, group and mode, as if its owner had.
    """
    with fsguard.opened_dir(source) as fd:
        st = os.fstat(fd)
        for sub_fd in fsguard.make_dirs(fd, sub, mode=st.st_mode & 0o7777, uid=st.st_uid,
                                        gid=st.st_gid):
            os.close(sub_fd)


def _persistent(storage_fd: int, parts: tuple[str, ...], *, uid: int | None,
                gid: int | None) -> int:
    """``persistent/<ns>/<owner>/<name>``: root's tree to the leaf, the leaf the pod's."""
    owner = -1 if uid is None else 0
    fds = fsguard.make_dirs(storage_fd, parts[:-1], mode=0o711, uid=owner, gid=owner,
                            owners=None if uid is None else (0,))
    try:
        leaf = fsguard.ensure_dir(fds[-1], parts[-1], mode=0o700)
    finally:
        for fd in fds:
            os.close(fd)
    if uid is not None:
        # The data moves to the new pod's uid: what the previous owner owned, never
        # following a link the previous pod left (:func:`fsguard.chown_tree`).
        st = os.fstat(leaf)
        group = gid if gid is not None else uid
        if (st.st_uid, st.st_gid) != (uid, group):
            fsguard.chown_tree(leaf, uid, group, only_from=st.st_uid)
            if os.fstat(leaf).st_uid != uid:
                os.fchown(leaf, uid, group)
    return leaf


def _share(storage_fd: int, parts: tuple[str, ...], *, project_gid: int | None,
           root: int | None) -> int:
    """``shares/<ns>/<share>``: root's, group-owned by the project, setgid 2770."""
    owner = -1 if root is None else 0
    fds = fsguard.make_dirs(storage_fd, parts[:-1], mode=0o711, uid=owner, gid=owner,
                            owners=None if root is None else (0,))
    try:
        if project_gid is None:
            return fsguard.ensure_dir(fds[-1], parts[-1], mode=0o700)
        return fsguard.ensure_dir(fds[-1], parts[-1], mode=0o2770, uid=0, gid=project_gid,
                                  owners=(0,))
    finally:
        for fd in fds:
            os.close(fd)


def write_config(parent_fd: int, name: str, obj: Mapping[str, Any] | None, items: Any, *,
                 uid: int | None, gid: int) -> None:
    """The object's keys as files of the volume ``name`` (:mod:`.configvolume`: replaced
    atomically, root's, readable by the pod's group); called again when the object changes."""
    try:
        files = configvolume.files_of(config_data(obj), items)
    except configvolume.ConfigVolumeError as exc:
        raise VolumeError(str(exc)) from exc
    configvolume.write(parent_fd, name, files, uid=uid, gid=gid)


def persistent_paths(volumes: VolumePaths, *, storage: Path) -> list[Path]:
    """The volumes that outlive the pod (persistent ones), to hand back at teardown."""
    base = storage / "persistent"
    return [p for p in volumes.by_name.values() if p.is_relative_to(base)]


__all__ = ["ConfigSource", "VolumeError", "VolumePaths", "env_name", "mount", "owner_key",
           "persistent_paths", "prepare", "write_config"]
