"""A container's environment: literal values, downward values, config references.

Theory of operation
-------------------
Kubernetes builds a container's environment in order: each ``env`` entry is a
literal ``value`` (in which ``$(NAME)`` expands to an earlier variable and ``$$``
escapes a dollar) or a ``valueFrom`` source — a field of the pod itself
(``metadata.name``, ``status.podIP``, ``metadata.labels['app']``...), a resource
request or limit of a container (``limits.memory`` with a divisor), or a key of a
ConfigMap or Secret in the pod's namespace.  ``command`` and ``args`` expand
``$(NAME)`` against the finished environment.

This module does exactly that, as pure functions: the agent first fetches the
ConfigMaps and Secrets the container names (:func:`references`), then calls
:func:`build` with them.  A missing required reference is a
:class:`ConfigError`, which the agent reports as the container's waiting reason
``CreateContainerConfigError`` — as the kubelet does — instead of starting it.

The platform adds a few variables of its own before the user's, so the user's
win: ``HOSTNAME``, ``HOME`` and ``PATH`` defaults, and ``PINCOMPUTE_*`` values
telling the process where it runs (pod, namespace, node, address, its root
directory, and where each mounted volume is — the process runtime has no mount
namespace, see :mod:`.volumes`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from pincompute.kube.quantity import QuantityError, parse_quantity

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


class ConfigError(ValueError):
    """A referenced ConfigMap, Secret, key or field does not exist."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$(NAME)`` from ``env``; unknown references stay as written; ``$$`` is ``$``."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _REF.sub(sub, text)


def references(container: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The ``(kind, name)`` of every ConfigMap/Secret the container's env reads."""
    found: set[tuple[str, str]] = set()
    for var in container.get("env") or ():
        source = var.get("valueFrom") or {}
        if source.get("configMapKeyRef"):
            found.add(("ConfigMap", source["configMapKeyRef"]["name"]))
        if source.get("secretKeyRef"):
            found.add(("Secret", source["secretKeyRef"]["name"]))
    for src in container.get("envFrom") or ():
        if src.get("configMapRef"):
            found.add(("ConfigMap", src["configMapRef"]["name"]))
        if src.get("secretRef"):
            found.add(("Secret", src["secretRef"]["name"]))
    return found


def config_data(obj: Mapping[str, Any] | None) -> dict[str, str]:
    """The string data of a ConfigMap or Secret (Secrets' ``data`` is base64)."""
    if obj is None:
        return {}
    if obj.get("kind") == "Secret":
        out = {k: base64.b64decode(v).decode(errors="replace")
               for k, v in (obj.get("data") or {}).items()}
        out.update(obj.get("stringData") or {})
        return out
    return {k: str(v) for k, v in (obj.get("data") or {}).items()}


def field_value(pod: Mapping[str, Any], path: str) -> str:
    m = _FIELD.match(path)
    md = pod.get("metadata") or {}
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
        "metadata.uid": md.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "status.podIPs":
        return ",".join(p.get("ip", "") for p in (pod.get("status") or {}).get("podIPs") or ())
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resource_value(pod: Mapping[str, Any], container: Mapping[str, Any],
                   ref: Mapping[str, Any], node_allocatable: Mapping[str, str]) -> str:
    name = ref.get("containerName") or container.get("name")
    target = next((c for c in (pod.get("spec") or {}).get("containers") or ()
                   if c.get("name") == name), None)
    if target is None:
        raise ConfigError(f"resourceFieldRef names unknown container {name!r}")
    kind, _, resource = str(ref.get("resource", "")).partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise ConfigError(f"unsupported resourceFieldRef {ref.get('resource')!r}")
    resources = target.get("resources") or {}
    raw = (resources.get(kind) or {}).get(resource)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(resource)
    if raw is None:
        # Kubernetes: an unset limit reads as the node's allocatable amount.
        raw = node_allocatable.get(resource, "0")
    try:
        value = parse_quantity(raw)
        divisor = parse_quantity(ref.get("divisor") or "1")
    except QuantityError as exc:
        raise ConfigError(str(exc)) from exc
    if divisor == 0:
        raise ConfigError("resourceFieldRef divisor must not be 0")
    # Kubernetes rounds up: 250m of cpu with divisor 1 reads as "1".
    return str(int((value / divisor).to_integral_value(rounding="ROUND_CEILING")))


def build(pod: Mapping[str, Any], container: Mapping[str, Any], *,
          base: Mapping[str, str], configs: Mapping[tuple[str, str], Mapping[str, Any] | None],
          node_allocatable: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``container``: ``base`` (platform values), then its ``env``."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    env.update(base)
    for src in container.get("envFrom") or ():
        prefix = src.get("prefix") or ""
        for key_name, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = src.get(key_name)
            if not ref:
                continue
            obj = configs.get((kind, ref["name"]))
            if obj is None and not ref.get("optional"):
                raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            for k, v in config_data(obj).items():
                env[prefix + k] = v
    for var in container.get("env") or ():
        name = var["name"]
        if "value" in var and var["value"] is not None:
            env[name] = expand(str(var["value"]), env)
            continue
        source = var.get("valueFrom") or {}
        if source.get("fieldRef"):
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif source.get("resourceFieldRef"):
            env[name] = resource_value(pod, container, source["resourceFieldRef"],
                                       node_allocatable)
        elif source.get("configMapKeyRef") or source.get("secretKeyRef"):
            kind = "ConfigMap" if source.get("configMapKeyRef") else "Secret"
            ref = source.get("configMapKeyRef") or source["secretKeyRef"]
            obj = configs.get((kind, ref["name"]))
            data = config_data(obj)
            if ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional"):
                what = f'{kind.lower()} "{ref["name"]}"'
                raise ConfigError(f"{what} not found" if obj is None
                                  else f'couldn\'t find key {ref["key"]} in {what}')
        else:
            env[name] = ""
    return env


def command_line(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """``command`` + ``args`` with ``$(NAME)`` expanded; empty if neither is given."""
    argv = [str(a) for a in (container.get("command") or [])]
    argv += [str(a) for a in (container.get("args") or [])]
    return [expand(a, env) for a in argv]


__all__ = ["DEFAULT_PATH", "ConfigError", "build", "command_line", "config_data", "expand",
           "field_value", "references", "resource_value"]
