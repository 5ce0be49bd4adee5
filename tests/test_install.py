from pathlib import Path

from pincompute import install


def test_rendered_manifests_are_in_sync() -> None:
    for name, text in install.rendered().items():
        path = install.DEPLOY_DIR / name
        assert path.exists() and path.read_text() == text, (
            f"deploy/{name} is out of date: run `pincompute install --render deploy`")


def test_roles_get_the_crds_and_rights_they_need() -> None:
    host = install.manifests("host")
    member = install.manifests("member")
    host_crds = {m["metadata"]["name"] for m in host if m["kind"] == "CustomResourceDefinition"}
    member_crds = {m["metadata"]["name"] for m in member
                   if m["kind"] == "CustomResourceDefinition"}
    assert "projects.pincompute.io" in host_crds and "projects.pincompute.io" not in member_crds
    assert "nodepools.pincompute.io" in member_crds
    assert "pinapps.pincompute.io" in host_crds & member_crds
    member_role = next(m for m in member if m["kind"] == "ClusterRole")
    resources = {r for rule in member_role["rules"] for r in rule["resources"]}
    assert {"pods/binding", "nodes/status", "leases", "nodepools/status"} <= resources
    host_role = next(m for m in host if m["kind"] == "ClusterRole")
    assert "pods/binding" not in {r for rule in host_role["rules"] for r in rule["resources"]}


def test_render_writes_only_what_changed(tmp_path: Path) -> None:
    assert sorted(install.write_rendered(tmp_path)) == ["host.yaml", "member.yaml"]
    assert install.write_rendered(tmp_path) == []
