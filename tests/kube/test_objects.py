from pincompute.kube import objects
from pincompute.kube.resource import CONFIGMAPS


def test_conditions_move_transition_time_only_on_flip() -> None:
    obj: dict = {}
    assert objects.set_condition(obj, "Ready", False, reason="Starting")
    first = objects.get_condition(obj, "Ready")
    assert first is not None and first["status"] == "False"
    stamp = first["lastTransitionTime"]
    assert not objects.set_condition(obj, "Ready", False, reason="Starting")
    assert objects.set_condition(obj, "Ready", False, reason="Waiting", message="x")
    assert objects.get_condition(obj, "Ready")["lastTransitionTime"] == stamp
    assert objects.set_condition(obj, "Ready", True, observed_generation=2)
    assert objects.condition_true(obj, "Ready")
    assert objects.get_condition(obj, "Ready")["observedGeneration"] == 2


def test_owner_references_and_keys() -> None:
    owner = objects.new_object(CONFIGMAPS, "owner", namespace="ns")
    owner["metadata"]["uid"] = "u1"
    child = objects.new_object(CONFIGMAPS, "child", namespace="ns", labels={"a": "b"})
    objects.set_owner(child, owner)
    objects.set_owner(child, owner)  # idempotent
    assert len(child["metadata"]["ownerReferences"]) == 1
    assert objects.controller_of(child)["uid"] == "u1"
    assert objects.is_owned_by(child, "u1")
    assert objects.key_of(child) == "ns/child"
    assert objects.split_key("ns/child") == ("ns", "child")
    assert objects.split_key("node-1") == ("", "node-1")


def test_finalizers_and_copies() -> None:
    obj = objects.new_object(CONFIGMAPS, "x", namespace="ns")
    assert objects.add_finalizer(obj, "a/b")
    assert not objects.add_finalizer(obj, "a/b")
    assert objects.has_finalizer(obj, "a/b")
    copy = objects.deepcopy(obj)
    assert objects.remove_finalizers(copy, ["a/b"])
    assert objects.has_finalizer(obj, "a/b") and not objects.has_finalizer(copy, "a/b")
    assert not objects.is_deleting(obj)
