"""The kinds table: one well-formed entry per kind, whose facts name real fields."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from pincompute.model import registry
from pincompute.model.base import GROUP, VERSION
from pincompute.model.kinds import KIND_TABLE, KindInfo


def _aliases(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """JSON field name → the nested model it holds (if it holds one)."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        nested = None
        for candidate in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                nested = candidate
        out[info.alias or name] = nested
    return out


def _resolves(model: type[BaseModel], path: list[str]) -> bool:
    fields = _aliases(model)
    if path[0] not in fields:
        return False
    nested = fields[path[0]]
    return len(path) == 1 or nested is None or _resolves(nested, path[1:])


def test_names_are_unique_and_the_registry_is_derived() -> None:
    words = [w for info in KIND_TABLE
             for w in (info.kind.lower(), info.plural, *info.short_names)]
    assert len(words) == len(set(words))
    assert list(registry.KINDS) == [info.kind for info in KIND_TABLE]
    assert registry.RESOURCES == tuple(info.resource for info in KIND_TABLE)
    for info in KIND_TABLE:
        r = info.resource
        assert (r.group, r.version, r.plural, r.kind) == (GROUP, VERSION, info.plural, info.kind)
        assert r.namespaced == info.namespaced and r.short_names == info.short_names
        assert info.stored_on and info.description
        assert (r in registry.HOST_RESOURCES) == ("host" in info.stored_on)
        assert (r in registry.MEMBER_RESOURCES) == ("member" in info.stored_on)


@pytest.mark.parametrize("info", KIND_TABLE, ids=lambda i: i.kind)
def test_facts_name_fields_of_the_models(info: KindInfo) -> None:
    for name in info.immutable:
        assert name in _aliases(info.spec), name
    for path in info.selectable_fields:
        part, *rest = path.split(".")
        assert part == "spec" and _resolves(info.spec, rest), path
    for column in info.printer_columns:
        part, *rest = column.json_path.lstrip(".").split(".")
        model = info.spec if part == "spec" else info.status
        assert part in ("spec", "status") and _resolves(model, rest), column.json_path
    if info.scale is not None:
        assert _resolves(info.spec, info.scale.spec_replicas_path.split(".")[2:])
    if info.name_max_length is not None:
        assert 1 <= info.name_max_length <= 63
