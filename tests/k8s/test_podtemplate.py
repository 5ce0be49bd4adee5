"""A Pod made by :func:`pincompute.member.podtemplate.pod_for` for ``backend="kubernetes"``
is accepted by a real kube-apiserver as it is: sidecars as native sidecar containers,
every PinCompute volume kind mapped to a core source, nothing dropped."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube.resource import NAMESPACES, PODS, Resource
from pincompute.kubeenv import KubeEnv
from pincompute.member.podtemplate import persistent_claims, pod_for, template_hash
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import OWNER_UID_LABEL, SCHEDULER_NAME, TIER_LABEL

from .support import create_namespace, pincompute

pytestmark = pytest.mark.slow

PVCS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "a"}},
    "spec": {
        "restartPolicy": "Always",
        "networkMode": "bridge",
        "containers": [
            {"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
             "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}},
             "volumeMounts": [{"name": n, "mountPath": f"/v/{n}"}
                              for n in ("scratch", "data", "team", "logs", "conf", "creds")]},
            {"name": "proxy", "image": "busybox:1.36", "type": "sidecar",
             "command": ["sleep", "3600"],
             "volumeMounts": [{"name": "logs", "mountPath": "/logs", "readOnly": True}]}],
        "volumes": [
            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "data", "persistent": {"size": "1Gi"}},
            {"name": "team", "shared": {"share": "models", "readOnly": True}},
            {"name": "logs", "logging": {"sizeLimit": "100Mi"}},
            {"name": "conf", "configMap": {"name": "app-config", "optional": True}},
            {"name": "creds", "secret": {"secretName": "app-secret", "optional": True}}],
    },
}


def _kept(got: Any, sent: Any) -> bool:
    """``sent`` is in ``got``: every field, except false/empty ones (the server omits them);
    lists element by element, ``got`` may have more at the end."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(
            _kept(got.get(k), v) for k, v in sent.items() if v not in (False, None))
    if isinstance(sent, list):
        return (isinstance(got, list) and len(got) >= len(sent)
                and all(_kept(g, v) for g, v in zip(got, sent, strict=False)))
    return bool(got == sent)


async def test_kube_apiserver_accepts_a_converted_pod_with_sidecar_and_every_volume_kind(
        kube_env: KubeEnv) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0
    client = member.client()
    ns = "podtemplate"
    try:
        await create_namespace(client, ns)
        app = await client.create(PINAPPS, {
            "apiVersion": PINAPPS.api_version, "kind": "PinApp",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 1, "template": TEMPLATE}}, namespace=ns)
        template = app["spec"]["template"]
        pod = pod_for(template, name="web-0", namespace=ns, owner=app, backend="kubernetes",
                      tier="preemptible", index=0,
                      tolerations=[{"key": "gpu", "operator": "Exists",
                                    "effect": "NoSchedule"}])
        created = await client.create(PODS, pod, namespace=ns)
        for claim in persistent_claims(template, owner=app, namespace=ns):
            got = await client.create(PVCS, claim, namespace=ns)
            assert got["metadata"]["name"] == "web-data"
            assert _kept(got["spec"], claim["spec"])

        spec = created["spec"]
        assert spec["schedulerName"] == SCHEDULER_NAME
        sidecar = spec["initContainers"][0]
        assert sidecar["name"] == "proxy" and sidecar["restartPolicy"] == "Always"
        assert [c["name"] for c in spec["containers"]] == ["app"]
        # Nothing we sent was dropped or changed (the server only adds defaults, and the
        # service account's token mount).
        assert _kept(spec["containers"], pod["spec"]["containers"])
        assert _kept(spec["initContainers"], pod["spec"]["initContainers"])
        by_name = {v["name"]: v for v in spec["volumes"]}
        assert _kept([by_name[v["name"]] for v in pod["spec"]["volumes"]],
                     pod["spec"]["volumes"])
        assert by_name["data"]["persistentVolumeClaim"]["claimName"] == "web-data"
        md = created["metadata"]
        assert md["labels"][OWNER_UID_LABEL] == app["metadata"]["uid"]
        assert md["labels"][TIER_LABEL] == "preemptible"
        assert md["labels"]["pincompute.io/revision"] == template_hash(template)
        assert md["annotations"] == pod["metadata"]["annotations"]
        assert md["ownerReferences"][0]["uid"] == app["metadata"]["uid"]
        assert spec["tolerations"][0]["key"] == "gpu"
    finally:
        try:
            await client.delete(NAMESPACES, ns)
        finally:
            await client.close()
