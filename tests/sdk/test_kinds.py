"""Kind names as users type them, and the REST paths they lead to."""

from __future__ import annotations

import pytest

from pincompute.sdk import KINDS, UnknownKind, parse_object_ref, resolve_kind
from pincompute.sdk.routes import collection


@pytest.mark.parametrize("name", ["pinapp", "pinapps", "app", "apps", "PinApp", " APP "])
def test_every_spelling_of_a_kind(name: str) -> None:
    assert resolve_kind(name).kind == "PinApp"


def test_names_resolve_to_one_kind_each() -> None:
    for ref in KINDS:
        for name in ref.names:
            assert resolve_kind(name) is ref
    assert resolve_kind("clusters").kind == "MemberCluster"
    assert resolve_kind("no").kind == "Node"


def test_object_refs() -> None:
    assert parse_object_ref("app/web")[1] == "web"
    assert parse_object_ref("app", "web")[1] == "web"
    assert parse_object_ref("jobs")[1] is None
    with pytest.raises(UnknownKind, match="unknown kind 'deployment'"):
        parse_object_ref("deployment/web")
    with pytest.raises(UnknownKind, match="not both"):
        parse_object_ref("app/web", "other")


def test_paths_by_scope() -> None:
    assert collection(resolve_kind("app"), project="demo")[0] == \
        "/api/v1/projects/demo/pinapps"
    assert collection(resolve_kind("cluster"), project=None)[0] == "/api/v1/clusters"
    assert collection(resolve_kind("node"), project=None, cluster="zone-a-1") == (
        "/api/v1/clusters/zone-a-1/nodes", "/api/v1/clusters/{cluster}/nodes")


def test_the_sdk_table_is_the_kinds_table() -> None:
    """The SDK's copy (kept so that commands start without loading the schemas) matches."""
    from pincompute.model.kinds import KIND_TABLE

    by_kind = {ref.kind: ref for ref in KINDS}
    for info in KIND_TABLE:
        ref = by_kind[info.kind]
        assert (ref.plural, ref.short_names) == (info.plural, info.short_names)
        # Node pools live in member clusters: the API addresses them through one.
        assert ref.scope == ("project" if info.namespaced else
                             "cluster" if info.kind == "NodePool" else "platform")
        assert [(c.name, c.type, c.json_path, c.priority) for c in ref.columns] == [
            (c.name, c.type, c.json_path, c.priority) for c in info.printer_columns]
    assert set(by_kind) == {info.kind for info in KIND_TABLE} | {"Node"}
