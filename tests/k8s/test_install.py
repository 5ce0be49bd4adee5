"""``pincompute install`` on real API servers, checked with a real external client (kubectl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pincompute.kube.resource import NAMESPACES
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import PINAPPS

from .support import kubectl, one_line_error, pincompute

APP = {
    "apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
    "metadata": {"name": "web"},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "main", "image": "python:3.11", "command": ["python3", "-m", "http.server"],
         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}},
}


@pytest.fixture(scope="module")
def installed(kube_env: KubeEnv) -> KubeEnv:
    result = pincompute("install", "--kubeconfig", str(kube_env.host.kubeconfig),
                        "--role", "host")
    assert result.returncode == 0, result.stderr
    for member in kube_env.members:
        result = pincompute("install", "--kubeconfig", str(member.kubeconfig),
                            "--role", "member", "--cluster", member.name)
        assert result.returncode == 0, result.stderr
    return kube_env


def test_install_is_idempotent_and_kubectl_sees_the_kinds(installed: KubeEnv,
                                                          kube_bin: Path) -> None:
    host = installed.host.kubeconfig
    again = pincompute("install", "--kubeconfig", str(host), "--role", "host")
    assert again.returncode == 0 and "installed PinCompute (host)" in again.stdout
    listed = kubectl(kube_bin, host, "get", "pinapps", "-A")
    assert listed.returncode == 0, listed.stderr
    explained = kubectl(kube_bin, host, "explain", "pinapp.spec")
    assert explained.returncode == 0, explained.stderr
    for field in ("replicas", "template", "tier", "placement", "strategy"):
        assert field in explained.stdout
    assert "pinapps" in kubectl(kube_bin, host, "api-resources", "--api-group=pincompute.io",
                                "-o", "name").stdout
    # Short names and printer columns from the generated CRD.
    assert kubectl(kube_bin, host, "get", "app", "-A").returncode == 0
    member = installed.members[0].kubeconfig
    assert kubectl(kube_bin, member, "get", "nodepools").returncode == 0
    # The member role has no projects: they live on the host only.
    assert kubectl(kube_bin, member, "get", "projects").returncode != 0


async def test_objects_cross_between_our_client_and_kubectl(installed: KubeEnv,
                                                            kube_bin: Path,
                                                            tmp_path: Path) -> None:
    host = installed.host
    client = host.client()
    try:
        await client.create(NAMESPACES, {"metadata": {"name": "interop"}})
        made = await client.create(PINAPPS, APP, namespace="interop")
        seen = kubectl(kube_bin, host.kubeconfig, "get", "pinapp", "web", "-n", "interop",
                       "-o", "json")
        assert seen.returncode == 0, seen.stderr
        theirs = json.loads(seen.stdout)
        assert theirs["metadata"]["uid"] == made["metadata"]["uid"]
        assert theirs["spec"]["replicas"] == 2

        other = {**APP, "metadata": {"name": "api", "namespace": "interop"}}
        manifest = tmp_path / "app.yaml"
        manifest.write_text(yaml.safe_dump(other))
        applied = kubectl(kube_bin, host.kubeconfig, "apply", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr
        ours = await client.get(PINAPPS, "api", namespace="interop")
        assert ours["spec"]["template"]["spec"]["containers"][0]["name"] == "main"

        # The CRD schema validates on the real server as the embedded store does.
        bad = {**APP, "metadata": {"name": "bad", "namespace": "interop"},
               "spec": {**APP["spec"], "replicas": -1}}
        manifest.write_text(yaml.safe_dump(bad))
        rejected = kubectl(kube_bin, host.kubeconfig, "apply", "-f", str(manifest))
        assert rejected.returncode != 0 and "spec.replicas" in rejected.stderr
    finally:
        await client.delete(NAMESPACES, "interop")
        await client.close()


def test_bad_kubeconfigs_give_one_clear_line(installed: KubeEnv, tmp_path: Path) -> None:
    missing = one_line_error(pincompute("install", "--kubeconfig", str(tmp_path / "nope")))
    assert "does not exist" in missing

    garbage = tmp_path / "garbage"
    garbage.write_text("this: is: not: a kubeconfig")
    assert "kubeconfig" in one_line_error(pincompute("install", "--kubeconfig", str(garbage)))

    config = yaml.safe_load(installed.host.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(yaml.safe_dump(config))
    line = one_line_error(pincompute("controller", "federation", "--kubeconfig",
                                     str(unreachable)))
    assert "cannot reach the API server" in line


def test_missing_crds_and_rights_are_named(installed: KubeEnv, kube_bin: Path,
                                           tmp_path: Path) -> None:
    member = installed.members[0]
    # A member has no host CRDs: the federation refuses to start there, saying why.
    line = one_line_error(pincompute("controller", "federation", "--kubeconfig",
                                     str(member.kubeconfig)))
    assert "CRDs are not installed" in line and "pincompute install" in line

    # Credentials without rights: a service account nobody bound to anything.
    made = kubectl(kube_bin, member.kubeconfig, "create", "serviceaccount", "nobody",
                   "-n", "default")
    assert made.returncode == 0 or "AlreadyExists" in made.stderr, made.stderr
    token = kubectl(kube_bin, member.kubeconfig, "create", "token", "nobody", "-n", "default")
    assert token.returncode == 0, token.stderr
    config = yaml.safe_load(member.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token.stdout.strip()}
    weak = tmp_path / "weak"
    weak.write_text(yaml.safe_dump(config))
    line = one_line_error(pincompute("install", "--kubeconfig", str(weak), "--role", "member"))
    assert "cluster-admin" in line
    line = one_line_error(pincompute("controller", "member", "--cluster", member.name,
                                     "--kubeconfig", str(weak)))
    assert "refused" in line or "may not" in line
