"""Generated CRDs: in sync with deploy/crds, structural, with the right metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pincompute.model import crd
from pincompute.model.registry import KINDS, PINAPPS, RESOURCES

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
ALLOWED_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRDS = {r.kind: crd.crd_for(r) for r in RESOURCES}


def test_committed_crds_are_up_to_date() -> None:
    stale = crd.stale_files(CRD_DIR)
    assert not stale, (f"CRDs out of date in deploy/crds: {', '.join(stale)}. Regenerate them "
                       f"with `.venv/bin/python -m pincompute.model.crd` and commit the result.")
    generated = {crd.filename(r) for r in RESOURCES}
    present = {p.name for p in CRD_DIR.glob("*.pincompute.io.yaml")}
    assert present == generated, f"unexpected files in deploy/crds: {present - generated}"


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "python -m pincompute.model.crd" in capsys.readouterr().err
    assert crd.main(["--dir", str(tmp_path)]) == 0
    assert crd.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "pinapps.pincompute.io.yaml").write_text("# edited\n")
    assert crd.main(["--check", "--dir", str(tmp_path)]) == 1
    assert crd.write(tmp_path) == ["pinapps.pincompute.io.yaml"]


def test_files_parse_back_to_the_crds() -> None:
    for r in RESOURCES:
        text = (CRD_DIR / crd.filename(r)).read_text()
        assert yaml.load(text, Loader=LOADER) == CRDS[r.kind]


def walk(node: dict[str, Any], path: str) -> list[str]:
    """Violations of Kubernetes' structural-schema rules below ``node``."""
    problems: list[str] = []
    for key in ("$ref", "$defs", "const", "title", "oneOf", "allOf", "not", "nullable"):
        if key in node:
            problems.append(f"{path}: has {key}")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "anyOf" in node and not (int_or_string and node["anyOf"] == INT_OR_STRING):
        problems.append(f"{path}: anyOf outside the int-or-string pattern")
    if "type" in node:
        if node["type"] not in ALLOWED_TYPES:
            problems.append(f"{path}: bad type {node['type']!r}")
        if int_or_string:
            problems.append(f"{path}: int-or-string with a type")
    elif not (int_or_string or preserve):
        problems.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties together")
    if node.get("additionalProperties") is False or node.get("additionalProperties") is True:
        problems.append(f"{path}: boolean additionalProperties")
    if node.get("uniqueItems"):
        problems.append(f"{path}: uniqueItems")
    if not isinstance(node.get("exclusiveMinimum", False), bool):
        problems.append(f"{path}: numeric exclusiveMinimum")
    if "default" in node:
        default = node["default"]
        if "enum" in node and default not in node["enum"]:
            problems.append(f"{path}: default {default!r} not in enum")
        expected = {"string": str, "integer": int, "boolean": bool, "number": (int, float),
                    "object": dict, "array": list}.get(node.get("type", ""))
        if expected is not None and not isinstance(default, expected):
            problems.append(f"{path}: default {default!r} is not a {node['type']}")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    for name, sub in (node.get("properties") or {}).items():
        problems += walk(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += walk(node["additionalProperties"], f"{path}{{}}")
    if isinstance(node.get("items"), dict):
        problems += walk(node["items"], f"{path}[]")
    for i, sub in enumerate(node.get("anyOf") or ()):
        if set(sub) != {"type"}:
            problems.append(f"{path}.anyOf[{i}]: only a type is allowed")
    return problems


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_is_structural(kind: str) -> None:
    root = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert root["type"] == "object"
    assert root["properties"]["metadata"] == {"type": "object"}
    assert walk(root, kind) == []
    status = root["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_quantities_are_int_or_string() -> None:
    spec = CRDS["PinPod"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    requests = spec["properties"]["containers"]["items"]["properties"]["resources"][
        "properties"]["requests"]["additionalProperties"]
    assert requests["x-kubernetes-int-or-string"] is True
    assert requests["anyOf"] == INT_OR_STRING
    assert "pattern" in requests


def test_defaults_and_required_fields_appear() -> None:
    spec = CRDS["PinApp"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert spec["required"] == ["spec"]
    props = spec["properties"]["spec"]["properties"]
    assert props["replicas"]["default"] == 1 and props["replicas"]["minimum"] == 0
    assert props["tier"] == {**props["tier"], "type": "string", "default": "ondemand",
                             "enum": ["reserved", "ondemand", "preemptible"]}
    assert spec["properties"]["spec"]["required"] == ["template"]
    # The template's restart policy depends on its owner, so it has no schema default.
    pod_spec = props["template"]["properties"]["spec"]["properties"]
    assert "default" not in pod_spec["restartPolicy"]
    project = CRDS["Project"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert "required" not in project


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crd_metadata(kind: str) -> None:
    resource = KINDS[kind].resource
    doc = CRDS[kind]
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["metadata"]["name"] == f"{resource.plural}.pincompute.io"
    spec = doc["spec"]
    assert spec["group"] == "pincompute.io"
    assert spec["scope"] == ("Namespaced" if resource.namespaced else "Cluster")
    names = spec["names"]
    assert names["kind"] == kind and names["plural"] == resource.plural
    assert names["singular"] == kind.lower()
    assert names["shortNames"] == list(resource.short_names)
    assert names["categories"] == ["pincompute"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"]["status"] == {}
    selectable = [{"jsonPath": "." + f} for f in resource.selectable_fields]
    assert version.get("selectableFields", []) == selectable
    for field in resource.selectable_fields:
        node = version["schema"]["openAPIV3Schema"]
        for part in field.split("."):
            node = node["properties"][part]
        assert node["type"] == "string"
    columns = version["additionalPrinterColumns"]
    assert columns[-1] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    schema = version["schema"]["openAPIV3Schema"]
    for column in columns[:-1]:
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            assert part in node.get("properties", {}), f"{kind}: {column['jsonPath']}"
            node = node["properties"][part]
        assert node["type"] == column["type"] or (column["type"] == "date"
                                                   and node["type"] == "string")


def test_pinapp_columns_and_scale_subresource() -> None:
    version = CRDS["PinApp"]["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]][:3] == [
        "Tier", "Replicas", "Ready"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}
    assert PINAPPS.kind == "PinApp"
    assert all("scale" not in CRDS[k]["spec"]["versions"][0]["subresources"]
               for k in KINDS if k != "PinApp")
