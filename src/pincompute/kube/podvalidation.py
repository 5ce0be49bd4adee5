"""What a core Pod must satisfy before a store accepts it: names and paths.

Theory
------
A node agent turns a Pod's container names, volume names and paths into file
system paths on the machine (a container's root, a volume's directory, a mount
link, a working directory).  The API server's Pod validation is the first line
that keeps those inside the pod's tree, so the embedded store applies the same
subset (registered for Pods by :func:`pincompute.model.registry.install`):

- container and volume names are RFC 1123 labels, unique in the pod;
- ``mountPath`` is absolute and not the root; ``subPath``, ``workingDir`` and a
  config item's ``path`` have no ``..`` component; relative ones are relative;
- no path holds a NUL.

The path rules (:func:`path_errors`) are shared with PinCompute's own kinds
(:mod:`pincompute.model.containers`).  The node still checks every name and
path again where it uses them (:mod:`pincompute.node.fsguard`): validation
keeps bad input out, the node never trusts that it did.

Only what the node depends on is checked; the rest of a Pod is the API
server's business (a real cluster) or passed through (the embedded store), so
existing loose test objects stay valid.  An unchanged spec (a status write) is
not checked again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import names
from .errors import Cause, invalid

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_ITEM_SOURCES = ("configMap", "secret", "downwardAPI")


def path_errors(path: object, *, absolute: bool) -> list[str]:
    """What is wrong with a container path (``absolute``: must start with ``/``, else not)."""
    if not isinstance(path, str):
        return ["must be a string"]
    errors = []
    if "\0" in path:
        errors.append("must not contain a NUL character")
    if absolute and not path.startswith("/"):
        errors.append("must be an absolute path")
    if not absolute and path.startswith("/"):
        errors.append("must be a relative path")
    if ".." in path.split("/"):
        errors.append("must not contain '..'")
    if absolute and not errors and not path.strip("/."):
        errors.append("must not be the container's root")
    return errors


def _label(value: object, field: str, seen: set[str], causes: list[Cause]) -> None:
    if not isinstance(value, str) or not value:
        causes.append(Cause(field, "Required value", "FieldValueRequired"))
        return
    causes.extend(Cause(field, f"Invalid value: {value!r}: {e}")
                  for e in names.dns1123_label(value))
    if value in seen:
        causes.append(Cause(field, f"Duplicate value: {value!r}", "FieldValueDuplicate"))
    seen.add(value)


def _path(value: object, field: str, causes: list[Cause], *, absolute: bool) -> None:
    causes.extend(Cause(field, f"Invalid value: {value!r}: {e}")
                  for e in path_errors(value, absolute=absolute))


def _list(value: object, field: str, causes: list[Cause]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        causes.append(Cause(field, "must be a list", "FieldValueTypeInvalid"))
        return []
    return value


def _map(value: object, field: str, causes: list[Cause]) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        causes.append(Cause(field, "must be an object", "FieldValueTypeInvalid"))
        return None
    return value


def spec_causes(spec: Mapping[str, Any], *, where: str = "spec") -> list[Cause]:
    """Every problem with the names and paths of a pod spec (fields named from ``where``)."""
    causes: list[Cause] = []
    volumes: set[str] = set()
    for i, raw in enumerate(_list(spec.get("volumes"), f"{where}.volumes", causes)):
        field = f"{where}.volumes[{i}]"
        volume = _map(raw, field, causes)
        if volume is None:
            continue
        _label(volume.get("name"), f"{field}.name", volumes, causes)
        for source in _ITEM_SOURCES:
            src = volume.get(source)
            if not isinstance(src, Mapping):
                continue
            for k, raw_item in enumerate(_list(src.get("items"), f"{field}.{source}.items",
                                               causes)):
                item = _map(raw_item, f"{field}.{source}.items[{k}]", causes)
                if item is not None:
                    _path(item.get("path"), f"{field}.{source}.items[{k}].path", causes,
                          absolute=False)
    containers: set[str] = set()
    for key in _CONTAINER_LISTS:
        for i, raw in enumerate(_list(spec.get(key), f"{where}.{key}", causes)):
            field = f"{where}.{key}[{i}]"
            container = _map(raw, field, causes)
            if container is None:
                continue
            _label(container.get("name"), f"{field}.name", containers, causes)
            if container.get("workingDir") is not None:
                _path(container["workingDir"], f"{field}.workingDir", causes,
                      absolute=str(container["workingDir"]).startswith("/"))
            mounts: set[str] = set()
            for j, raw_mount in enumerate(_list(container.get("volumeMounts"),
                                                f"{field}.volumeMounts", causes)):
                mfield = f"{field}.volumeMounts[{j}]"
                mount = _map(raw_mount, mfield, causes)
                if mount is None:
                    continue
                name = mount.get("name")
                if not isinstance(name, str) or name not in volumes:
                    causes.append(Cause(f"{mfield}.name", f"Not found: {name!r}",
                                        "FieldValueNotFound"))
                _path(mount.get("mountPath"), f"{mfield}.mountPath", causes, absolute=True)
                path = mount.get("mountPath")
                if isinstance(path, str):
                    normal = "/".join(p for p in path.split("/") if p not in ("", "."))
                    if normal in mounts:
                        causes.append(Cause(f"{mfield}.mountPath", f"Duplicate value: {path!r}",
                                            "FieldValueDuplicate"))
                    mounts.add(normal)
                for sub in ("subPath", "subPathExpr"):
                    if mount.get(sub):
                        _path(mount[sub], f"{mfield}.{sub}", causes, absolute=False)
    return causes


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The embedded store's validator for core Pods: raises ``Invalid`` naming each field."""
    spec = obj.get("spec")
    if spec is None or (old is not None and spec == old.get("spec")):
        return None
    causes: list[Cause] = []
    if isinstance(spec, Mapping):
        causes = spec_causes(spec)
    else:
        causes.append(Cause("spec", "must be an object", "FieldValueTypeInvalid"))
    if causes:
        metadata = obj.get("metadata")
        if not isinstance(metadata, Mapping):
            metadata = {}
        name = str(metadata.get("name") or metadata.get("generateName") or "")
        raise invalid("Pod", name, causes)
    return None


__all__ = ["path_errors", "spec_causes", "validate_pod"]
