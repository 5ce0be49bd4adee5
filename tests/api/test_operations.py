"""The operations table and rollback's choice of revision (no cluster needed)."""

from __future__ import annotations

import pytest

from pincompute.api.operations import (
    OPERATIONS,
    check_container,
    find_revision,
    shard_revisions,
)
from pincompute.kube.errors import Invalid
from pincompute.model.wellknown import (
    CRON_TRIGGER_ANNOTATION,
    PARENT_UID_LABEL,
    RESTARTED_AT_ANNOTATION,
)


def test_each_operation_is_a_spec_change() -> None:
    app = OPERATIONS["pinapps"]
    assert app["pause"].patch({}) == {"spec": {"paused": True}}
    assert app["stop"].patch({}) == {"spec": {"stopped": True}}
    assert app["scale"].patch({"replicas": 4}) == {"spec": {"replicas": 4}}
    resume = app["resume"].patch({})
    assert resume["spec"] == {"paused": False} and resume["metadata"]["annotations"]
    one = app["restart"].patch({})["spec"]["template"]["metadata"]["annotations"]
    two = app["restart"].patch({})["spec"]["template"]["metadata"]["annotations"]
    assert one[RESTARTED_AT_ANNOTATION] != two[RESTARTED_AT_ANNOTATION]  # each a new restart
    assert OPERATIONS["pinjobs"]["suspend"].patch({}) == {"spec": {"suspend": True}}
    trigger = OPERATIONS["pincronjobs"]["trigger"].patch({})
    assert CRON_TRIGGER_ANNOTATION in trigger["metadata"]["annotations"]
    restart = OPERATIONS["pinpods"]["restart-container"].patch({"container": "main"})
    assert list(restart["spec"]["restarts"]) == ["main"]
    assert set(OPERATIONS) == {"pinapps", "pinpods", "pinjobs", "pintrainingjobs",
                               "pincronjobs"}


def test_container_must_exist() -> None:
    spec = {"containers": [{"name": "main"}], "initContainers": [{"name": "init"}]}
    check_container("PinPod", "p", spec, "init")
    with pytest.raises(Invalid) as e:
        check_container("PinPod", "p", spec, "other")
    assert e.value.causes[0].field == "container" and "main, init" in e.value.message


def test_rollback_reads_the_longest_history_of_the_apps_own_shards() -> None:
    host = {"metadata": {"uid": "u1"}}
    history = [{"revision": "aaa", "number": 1, "template": {"a": 1}},
               {"revision": "bbb", "number": 2, "template": {"b": 2}},
               {"revision": "ccc", "number": 3, "template": {"c": 3}}]
    shards = [
        {"metadata": {"labels": {PARENT_UID_LABEL: "u1"}}, "status": {"revisions": history[1:]}},
        {"metadata": {"labels": {PARENT_UID_LABEL: "u1"}}, "status": {"revisions": history}},
        {"metadata": {"labels": {PARENT_UID_LABEL: "other"}},
         "status": {"revisions": history * 2}},
    ]
    got = shard_revisions(host, shards)
    assert got == history
    assert find_revision(got, "")["revision"] == "bbb"
    assert find_revision(got, "previous")["revision"] == "bbb"
    assert find_revision(got, "1")["revision"] == "aaa"
    assert find_revision(got, "ccc")["number"] == 3
    assert find_revision(got, "9") is None
    assert find_revision(got[:1], "") is None
