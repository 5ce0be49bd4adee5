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
    member_resources = {r for m in member if m["kind"] in ("ClusterRole", "Role")
                        for rule in m["rules"] for r in rule["resources"]}
    assert {"pods/binding", "nodes", "leases", "nodepools/status"} <= member_resources
    host_resources = {r for m in host if m["kind"] in ("ClusterRole", "Role")
                      for rule in m["rules"] for r in rule["resources"]}
    assert "pods/binding" not in host_resources and "secrets" in host_resources


def _rules(objects: list[dict], kind: str, name: str) -> list[dict]:
    return next(m for m in objects if m["kind"] == kind and m["metadata"]["name"] == name)["rules"]


def _allows(rules: list[dict], resource: str, verb: str) -> bool:
    return any(resource in r["resources"] and verb in r["verbs"] and not r.get("resourceNames")
               for r in rules)


def test_rbac_is_least_privilege() -> None:
    for role in ("host", "member"):
        objects = install.manifests(role)
        cluster = _rules(objects, "ClusterRole", f"pincompute-{role}-controller")
        system = _rules(objects, "Role", f"pincompute-{role}-controller")
        workload = _rules(objects, "ClusterRole", install.workload_role(role))
        # Cluster-wide: no Secrets, no ConfigMaps, no Leases, no pod writes, no RBAC
        # beyond creating bindings and binding the workload role by name.
        for resource in ("secrets", "configmaps", "leases", "events", "roles", "clusterroles",
                         "clusterrolebindings"):
            assert not any(resource in r["resources"] for r in cluster
                           if not r.get("resourceNames")), (role, resource)
        for verb in ("create", "update", "patch", "delete"):
            assert not _allows(cluster, "pods", verb)
        # Namespaces and bindings: the project controller's, on a member the federation's
        # own account's — the member's controllers cannot make either.
        projects = (cluster if role == "host" else
                    _rules(objects, "ClusterRole", "pincompute-member-federation"))
        if role == "member":
            assert not any(r for r in cluster if {"rolebindings", "clusterroles"}
                           & set(r["resources"]))
            for verb in ("create", "update", "patch", "delete"):
                assert not _allows(cluster, "namespaces", verb)  # read for labels only
            federation = next(m for m in objects if m["kind"] == "ClusterRoleBinding"
                              and m["roleRef"]["name"] == "pincompute-member-federation")
            assert federation["subjects"][0]["name"] == install.FEDERATION_SERVICE_ACCOUNT
        assert _allows(projects, "namespaces", "create")
        assert not _allows(projects, "namespaces", "update")
        assert not _allows(projects, "namespaces", "patch")
        assert not _allows(projects, "rolebindings", "delete")
        assert not _allows(projects, "pods", "create")
        bind = next(r for r in projects if "bind" in r["verbs"])
        assert bind["resourceNames"] == [install.workload_role(role)]
        assert not any("escalate" in r["verbs"] or "*" in r["verbs"] for r in cluster + projects)
        # Leases (and on the host Secrets) only in pincompute-system.
        assert _allows(system, "leases", "update")
        assert _allows(system, "secrets", "get") == (role == "host")
        assert not _allows(system, "secrets", "create")
        # The workload role is bound per namespace only, never cluster-wide.
        assert _allows(workload, "configmaps", "create")
        assert _allows(workload, "pods", "create") == (role == "member")
        bound = [m for m in objects if m["kind"] in ("ClusterRoleBinding", "RoleBinding")
                 and m["roleRef"]["name"] == install.workload_role(role)]
        assert [(b["kind"], b["metadata"]["namespace"]) for b in bound] == [
            ("RoleBinding", "pincompute-system")]


def test_controller_pods_are_restricted() -> None:
    for role in ("host", "member"):
        spec = install.deployment(role)["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}


def test_render_writes_only_what_changed(tmp_path: Path) -> None:
    assert sorted(install.write_rendered(tmp_path)) == ["host.yaml", "member.yaml"]
    assert install.write_rendered(tmp_path) == []
