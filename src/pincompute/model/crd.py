"""CustomResourceDefinitions generated from the models, and their files in ``deploy/crds``.

Theory
------
In ``kubernetes`` mode the real API server validates PinCompute's objects, and
it does so from the CRDs, so the CRDs must say what the models say.  They are
therefore generated, never written by hand: :func:`crd_for` takes a kind's
spec and status models' JSON schema (pydantic's, camelCase) and rewrites it
into a *structural* OpenAPI v3 schema, as ``apiextensions.k8s.io/v1`` requires:

- ``$ref`` are inlined (no recursion exists in the models) and ``Optional``
  unions lose their ``null`` branch (absent is how we say "not set");
- every node has a ``type``, except int-or-string nodes (quantities, ports,
  percentages), which carry ``x-kubernetes-int-or-string`` with the
  ``anyOf: [integer, string]`` pattern Kubernetes itself uses;
- ``additionalProperties: false`` (the models' ``extra="forbid"``) is dropped:
  a structural schema prunes unknown fields instead; status models, which allow
  extra fields, become ``x-kubernetes-preserve-unknown-fields: true`` objects;
- JSON-Schema-only keywords (``title``, ``const``, numeric
  ``exclusiveMinimum``) are turned into their OpenAPI v3.0 forms or removed.

Each CRD also carries, from the kind's entry in the kinds table (:mod:`.kinds`),
the status subresource (and the scale subresource for PinApp), printer columns,
selectable fields (field selectors on ``spec.tier``, ``spec.zone``, ...;
Kubernetes 1.31+), short names, the ``pincompute`` category and its scope.
``python -m pincompute.model.crd`` writes one file per kind into
``deploy/crds/<plural>.pincompute.io.yaml``; ``--check`` only compares and
fails (exit 1) when a file is missing or stale, which a test also does.
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from pincompute.kube.resource import Resource
from pincompute.kube.wellknown import APP_PART_OF_LABEL

from .registry import KINDS, RESOURCES
from .wellknown import PART_OF

CATEGORIES = ["pincompute"]
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "deploy" / "crds"
REGENERATE = "python -m pincompute.model.crd"

_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

# Keywords of JSON Schema that OpenAPI v3 (as Kubernetes reads it) lacks or we do not need.
_DROP = frozenset({"title", "$defs", "examples", "discriminator", "propertyNames"})


class SchemaError(ValueError):
    """A model produced a schema that cannot be made structural."""


def structural(schema: dict[str, Any], *, path: str = "") -> dict[str, Any]:
    """Rewrite a pydantic JSON schema (with its ``$defs``) into a structural schema."""
    defs = schema.get("$defs", {})
    return _convert(schema, defs, path or "<root>")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = copy.deepcopy(defs[name])
        for key, value in node.items():
            if key != "$ref":
                merged[key] = value
        node = merged
    return node


def _convert(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, defs)
    # allOf of one schema is how pydantic attaches siblings to a $ref.
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node["allOf"][0], defs)
        node = {**inner, **{k: v for k, v in node.items() if k != "allOf"}}
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        if len(branches) != 1:
            raise SchemaError(f"{path}: a union of types is not structural: {node['anyOf']}")
        inner = _resolve(branches[0], defs)
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", 0) is None:
            rest.pop("default")
        node = {**inner, **rest}
        return _convert(node, defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "default" and value is None:
            continue
        if key == "description":
            out["description"] = " ".join(str(value).replace("``", "`").split())
        elif key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "properties":
            out["properties"] = {name: _convert(sub, defs, f"{path}.{name}")
                                 for name, sub in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                if "properties" in node:
                    raise SchemaError(f"{path}: properties and additionalProperties together")
                out["additionalProperties"] = _convert(value, defs, f"{path}{{}}")
            # False (extra="forbid"): structural schemas prune unknown fields instead.
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = _type_of(out["enum"][0])
    if "type" not in out and not (out.get("x-kubernetes-int-or-string")
                                  or out.get("x-kubernetes-preserve-unknown-fields")):
        raise SchemaError(f"{path}: schema node without a type: {node}")
    if out.get("type") == "object" and not out.get("properties") and \
            "additionalProperties" not in out:
        out.pop("properties", None)
    return out


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def model_schema(model: type[BaseModel], *, path: str) -> dict[str, Any]:
    """A model's structural schema (validation mode: what users may write)."""
    return structural(model.model_json_schema(by_alias=True, mode="validation"), path=path)


def _required(model: type[BaseModel]) -> bool:
    return any(f.is_required() for f in model.model_fields.values())


def crd_for(resource: Resource) -> dict[str, Any]:
    """The CustomResourceDefinition of one PinCompute kind."""
    info = KINDS[resource.kind]
    spec = model_schema(info.spec, path=f"{resource.kind}.spec")
    status = model_schema(info.status, path=f"{resource.kind}.status")
    status["x-kubernetes-preserve-unknown-fields"] = True
    root: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if _required(info.spec):
        root["required"] = ["spec"]
    subresources: dict[str, Any] = {"status": {}}
    if info.scale is not None:
        subresources["scale"] = info.scale.to_crd()
    version: dict[str, Any] = {
        "name": resource.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": root},
        "subresources": subresources,
        "additionalPrinterColumns": [*(c.to_crd() for c in info.printer_columns), _AGE],
    }
    if resource.selectable_fields:
        version["selectableFields"] = [{"jsonPath": "." + f} for f in resource.selectable_fields]
    names: dict[str, Any] = {
        "plural": resource.plural,
        "singular": resource.kind.lower(),
        "kind": resource.kind,
        "listKind": f"{resource.kind}List",
        "shortNames": list(resource.short_names),
        "categories": list(CATEGORIES),
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{resource.group}",
                     "labels": {APP_PART_OF_LABEL: PART_OF}},
        "spec": {
            "group": resource.group,
            "names": names,
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "versions": [version],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    """Every kind's CRD, in :data:`~.registry.RESOURCES` order."""
    return [crd_for(r) for r in RESOURCES]


def filename(resource: Resource) -> str:
    return f"{resource.plural}.{resource.group}.yaml"


def render(crd: dict[str, Any]) -> str:
    """The YAML text of a CRD as committed (stable key order, no line folding)."""
    header = f"# Generated by `{REGENERATE}` from pincompute.model; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, default_flow_style=False,
                                   width=10_000, allow_unicode=True)


def rendered() -> dict[str, str]:
    """File name → YAML text, for every kind."""
    return dict(_rendered())


@functools.cache
def _rendered() -> tuple[tuple[str, str], ...]:
    # The models do not change while the process runs, so render once.
    return tuple((filename(r), render(crd_for(r))) for r in RESOURCES)


def stale_files(directory: Path) -> list[str]:
    """File names in ``directory`` that are missing or differ from what would be generated."""
    stale = []
    for name, text in rendered().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write(directory: Path) -> list[str]:
    """Write every CRD into ``directory``; returns the names of files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in rendered().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pincompute.model.crd",
                                     description="Generate PinCompute's CRD manifests.")
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if a file is missing or out of date")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help=f"the CRD directory (default: {DEFAULT_DIR})")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.dir)
        if stale:
            print(f"out of date in {args.dir}: {', '.join(stale)}; regenerate with "
                  f"`{REGENERATE}`", file=sys.stderr)
            return 1
        print(f"{len(RESOURCES)} CRDs up to date in {args.dir}")
        return 0
    changed = write(args.dir)
    print(f"wrote {len(changed)} of {len(RESOURCES)} CRDs to {args.dir}"
          + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
