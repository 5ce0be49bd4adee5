"""The registry: Resource descriptors, lookup, validators and installation in a store."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Conflict, Invalid
from pincompute.kube.resource import NAMESPACES, PODS, Resource
from pincompute.model import registry
from pincompute.model.registry import (
    KINDS,
    MEMBERCLUSTERS,
    NODEPOOLS,
    PINAPPS,
    PINPODS,
    PROJECTS,
    RESOURCES,
    install,
    kind_info,
    lookup,
    validator_for,
)

from ._support import TEMPLATE, make, pod

NAMESPACED = {"PinPod", "PinApp", "PinScaler", "PinJob", "PinTrainingJob", "PinCronJob"}


def test_every_kind_is_registered_once() -> None:
    assert set(KINDS) == NAMESPACED | {"PinDaemon", "PinSidecar", "Project", "MemberCluster",
                                       "NodePool", "NodeImage", "Rotation"}
    assert len(RESOURCES) == len(KINDS) == 13
    for kind, info in KINDS.items():
        resource, spec, status = info.resource, info.spec, info.status
        assert resource.kind == kind
        assert resource.group == "pincompute.io" and resource.version == "v1alpha1"
        assert resource.namespaced == (kind in NAMESPACED)
        assert resource.status_subresource
        assert resource.short_names
        assert spec.__name__.endswith("Spec") and status.__name__.endswith("Status")
    assert set(registry.HOST_RESOURCES) | set(registry.MEMBER_RESOURCES) == set(RESOURCES)
    assert NODEPOOLS not in registry.HOST_RESOURCES


@pytest.mark.parametrize(("name", "resource"), [
    ("pinapp", PINAPPS), ("pinapps", PINAPPS), ("app", PINAPPS), ("PinApp", PINAPPS),
    ("pinapps.pincompute.io", PINAPPS), (" APP ", PINAPPS), ("ppod", PINPODS),
    ("project", PROJECTS), ("proj", PROJECTS), ("cluster", MEMBERCLUSTERS),
    ("mc", MEMBERCLUSTERS), ("nodepool", NODEPOOLS), ("pool", NODEPOOLS),
])
def test_lookup(name: str, resource: Resource) -> None:
    assert lookup(name) is resource
    assert kind_info(name).resource is resource


def test_lookup_unknown_lists_known_kinds() -> None:
    with pytest.raises(KeyError, match="pinapps"):
        lookup("deployment")
    assert kind_info(PINAPPS).resource is PINAPPS
    assert kind_info("PinApp").resource is PINAPPS


def test_validator_fills_defaults_without_mutating_input() -> None:
    obj = make("PinApp", {"template": TEMPLATE})
    before = copy.deepcopy(obj)
    out = validator_for(PINAPPS)(obj, None)
    assert obj == before
    assert out is not None and out is not obj
    assert out["spec"]["replicas"] == 1
    assert out["metadata"] == obj["metadata"] and out["metadata"] is not obj["metadata"]
    # Already defaulted: nothing to fill, so the store keeps what it has.
    assert validator_for(PINAPPS)(out, None) is None


def test_unchanged_spec_is_not_revalidated_on_update() -> None:
    stored = registry.validate(make("PinApp", {"template": TEMPLATE}))
    # A status write carries the stored spec: only the status is checked.
    candidate = {**stored, "status": {"replicas": 1, "readyReplicas": 1}}
    assert validator_for(PINAPPS)(candidate, stored) is None
    bad = {**stored, "status": {"readyReplicas": "one"}}
    with pytest.raises(Invalid) as info:
        validator_for(PINAPPS)(bad, stored)
    assert [c.field for c in info.value.causes] == ["status.readyReplicas"]


@pytest.mark.parametrize(("change", "field"), [
    ({"extra": 1}, "extra"),
    ({"apiVersion": "apps/v1"}, "apiVersion"),
    ({"kind": "Deployment"}, "kind"),
    ({"spec": "web"}, "spec"),
    ({"spec": None}, "spec.template"),
    ({"metadata": {"name": "Web", "namespace": "team"}}, "metadata.name"),
    ({"metadata": {"name": "w" * 64, "namespace": "team"}}, "metadata.name"),
])
def test_object_level_errors(change: dict[str, Any], field: str) -> None:
    obj = {**make("PinApp", {"template": TEMPLATE}), **change}
    with pytest.raises(Invalid) as info:
        validator_for(PINAPPS)(obj, None)
    assert field in [c.field for c in info.value.causes]
    assert info.value.kind == "PinApp"


def test_invalid_error_names_object_and_fields() -> None:
    obj = make("PinApp", {"replicas": -1, "template": TEMPLATE}, name="web")
    with pytest.raises(Invalid) as info:
        registry.validate(obj)
    err = info.value
    assert err.name == "web"
    assert str(err).startswith('PinApp "web" is invalid: spec.replicas: ')
    status = err.to_status()
    assert status["code"] == 422
    assert status["details"]["causes"][0]["field"] == "spec.replicas"


def test_validate_and_normalize_reject_foreign_kinds() -> None:
    with pytest.raises(KeyError):
        registry.validate({"kind": "Deployment", "spec": {}})
    out = registry.normalize(make("PinPod", pod()))
    assert out["spec"]["restartPolicy"] == "Always"


class RecordingStore:
    def __init__(self) -> None:
        self.registered: dict[str, Any] = {}

    def register(self, resource: Resource, *, validator: Any = None) -> None:
        self.registered[resource.kind] = validator


def test_install_registers_every_kind_with_a_validator() -> None:
    store = RecordingStore()
    install(store)
    assert set(store.registered) == set(KINDS) | {"Pod"}  # core Pods: names and paths
    assert all(callable(v) for v in store.registered.values())
    member = RecordingStore()
    install(member, resources=registry.MEMBER_RESOURCES)
    assert "NodePool" in member.registered and "Project" not in member.registered


async def test_embedded_store_applies_validators() -> None:
    embedded = pytest.importorskip("pincompute.kube.backends.embedded")
    store = await embedded.EmbeddedStore.open(path=None)
    try:
        install(store)
        client = store.client()
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "team"}})
        created = await client.create(PINAPPS, make("PinApp", {"template": TEMPLATE}, name="web"))
        assert created["spec"]["replicas"] == 1
        assert created["spec"]["template"]["spec"]["restartPolicy"] == "Always"

        # Bad input: a typed error naming the field, and the store unchanged.
        bad = make("PinApp", {"template": {"spec": pod(resources={"requests": {"cpu": "-1"}})}},
                   name="bad")
        with pytest.raises(Invalid) as info:
            await client.create(PINAPPS, bad)
        assert [c.field for c in info.value.causes] == [
            "spec.template.spec.containers[0].resources.requests.cpu"]
        assert [o["metadata"]["name"] for o in await client.list(PINAPPS, namespace="team")] \
            == ["web"]

        update = copy.deepcopy(created)
        update["spec"]["replicas"] = "three"
        with pytest.raises(Invalid):
            await client.update(PINAPPS, update)
        stored = await client.get(PINAPPS, "web", namespace="team")
        assert stored == created

        # A stale resourceVersion is a Conflict (the store's check), also leaving it unchanged.
        ok = copy.deepcopy(created)
        ok["spec"]["replicas"] = 3
        updated = await client.update(PINAPPS, ok)
        stale = copy.deepcopy(created)
        stale["spec"]["replicas"] = 5
        with pytest.raises(Conflict):
            await client.update(PINAPPS, stale)
        assert (await client.get(PINAPPS, "web", namespace="team")) == updated

        # Status writes are validated too.
        with pytest.raises(Invalid) as info:
            await client.update_status(PINAPPS, {**updated, "status": {"replicas": "x"}})
        assert [c.field for c in info.value.causes] == ["status.replicas"]
        done = await client.update_status(PINAPPS, {**updated, "status": {"replicas": 3}})
        assert done["status"] == {"replicas": 3}

        # Cluster-scoped platform kinds.
        project = await client.create(PROJECTS, make("Project", {"members": [{"user": "ana"}]},
                                                     name="team"))
        assert project["spec"]["members"] == [{"user": "ana", "role": "viewer"}]
    finally:
        await store.close()


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "kube-node-lease",
                                  "pincompute-system", "kube-x", "pincompute-x"])
def test_projects_may_not_take_system_namespace_names(name: str) -> None:
    with pytest.raises(Invalid) as err:
        registry.validate(make("Project", None, name=name))
    assert [c.field for c in err.value.causes] == ["metadata.name"]
    # A Project stored before the rule can still be updated (and so deleted).
    old = make("Project", {}, name=name)
    registry.validate(make("Project", {"members": [{"user": "ana"}]}, name=name), old)


def test_non_object_metadata_is_invalid_not_a_crash() -> None:
    obj = make("NodeImage", {"version": "1"})
    obj["metadata"] = 1
    with pytest.raises(Invalid) as err:
        registry.validate(obj)
    assert "metadata" in [c.field for c in err.value.causes]


async def test_install_validates_raw_pods_in_the_store() -> None:
    store = await EmbeddedStore.open(path=None)
    install(store, resources=registry.MEMBER_RESOURCES)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "t"}})
    bad = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "main", "image": "x", "workingDir": "/../../etc"}]}}
    try:
        with pytest.raises(Invalid) as info:
            await client.create(PODS, bad, namespace="t")
        assert [c.field for c in info.value.causes] == ["spec.containers[0].workingDir"]
        bad["spec"]["containers"][0]["workingDir"] = "/w"
        await client.create(PODS, bad, namespace="t")
    finally:
        await store.close()
