"""PinJob: Job semantics, index ranges, success and failure policies."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.model.jobs import parse_indexes

from ._support import TEMPLATE, causes, make, only_cause, pod, valid


def job(**spec: Any) -> dict[str, Any]:
    return {"template": TEMPLATE, **spec}


def indexed(**spec: Any) -> dict[str, Any]:
    return job(completionMode="Indexed", completions=10, **spec)


def test_job_defaults() -> None:
    spec = valid("PinJob", job())
    assert (spec["parallelism"], spec["backoffLimit"], spec["completionMode"],
            spec["suspend"]) == (1, 6, "NonIndexed", False)
    assert "completions" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["tier"] == "ondemand"


def test_indexed_job_with_policies() -> None:
    spec = valid("PinJob", indexed(
        parallelism=4, backoffLimitPerIndex=1, maxFailedIndexes=2,
        successPolicy={"rules": [{"succeededIndexes": "0-2,5", "succeededCount": 3}]},
        failurePolicy={"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
        ]}))
    assert spec["failurePolicy"]["rules"][0]["onPodConditions"] == [
        {"type": "DisruptionTarget", "status": "True"}]


def test_on_failure_allowed_always_not() -> None:
    spec = valid("PinJob", {"template": {"spec": {**pod(), "restartPolicy": "OnFailure"}}})
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    cause = only_cause("PinJob", {"template": {"spec": {**pod(), "restartPolicy": "Always"}}})
    assert cause.field == "spec.template.spec.restartPolicy"


@pytest.mark.parametrize(("spec", "field"), [
    (job(parallelism=-1), "spec.parallelism"),
    (job(completions=-1), "spec.completions"),
    (job(backoffLimit="6"), "spec.backoffLimit"),
    (job(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds"),
    (job(completionMode="Sometimes"), "spec.completionMode"),
    (job(completionMode="Indexed"), "spec.completions"),
    (job(backoffLimitPerIndex=1), "spec.backoffLimitPerIndex"),
    (indexed(maxFailedIndexes=1), "spec.maxFailedIndexes"),
    (indexed(backoffLimitPerIndex=1, maxFailedIndexes=11), "spec.maxFailedIndexes"),
    (job(successPolicy={"rules": [{"succeededCount": 1}]}), "spec.successPolicy"),
    (indexed(successPolicy={"rules": []}), "spec.successPolicy.rules"),
    (indexed(successPolicy={"rules": [{}]}), "spec.successPolicy.rules[0]"),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "3-1"}]}),
     "spec.successPolicy.rules[0].succeededIndexes"),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "a,b"}]}),
     "spec.successPolicy.rules[0].succeededIndexes"),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "0-10"}]}),
     "spec.successPolicy.rules[0].succeededIndexes"),
    (indexed(successPolicy={"rules": [{"succeededIndexes": "0-1", "succeededCount": 3}]}),
     "spec.successPolicy.rules[0].succeededCount"),
    (indexed(successPolicy={"rules": [{"succeededCount": 11}]}),
     "spec.successPolicy.rules[0].succeededCount"),
    (job(failurePolicy={"rules": [{"action": "FailJob"}]}), "spec.failurePolicy.rules[0]"),
    (job(failurePolicy={"rules": [{"action": "Explode", "onExitCodes": {
        "operator": "In", "values": [1]}}]}), "spec.failurePolicy.rules[0].action"),
    (job(failurePolicy={"rules": [{"action": "FailJob", "onExitCodes": {
        "operator": "In", "values": [1, 0]}}]}),
     "spec.failurePolicy.rules[0].onExitCodes.values[1]"),
    (job(failurePolicy={"rules": [{"action": "FailIndex", "onExitCodes": {
        "operator": "NotIn", "values": [0]}}]}), "spec.failurePolicy.rules[0].action"),
    ({"template": {"spec": {**pod(), "restartPolicy": "OnFailure"}},
      "failurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {
          "operator": "In", "values": [3]}}]}}, "spec.template.spec.restartPolicy"),
])
def test_bad_job_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinJob", spec).field == field


def test_groups() -> None:
    spec = valid("PinJob", job(groups=[{"name": "leader"}, {"name": "worker", "replicas": 4}],
                               successPolicy={"rules": [{"groups": ["leader"]}]},
                               backoffLimitPerIndex=1))
    assert [g["replicas"] for g in spec["groups"]] == [1, 4]
    assert spec["successPolicy"]["rules"][0]["operator"] == "All"
    count = valid("PinJob", job(groups=[{"name": "w", "replicas": 4}],
                                successPolicy={"rules": [{"succeededCount": 4}]}))
    assert count["successPolicy"]["rules"][0]["succeededCount"] == 4


@pytest.mark.parametrize(("spec", "field"), [
    (job(groups=[{"name": "a"}, {"name": "a"}]), "spec.groups[1].name"),
    (job(groups=[{"name": "a"}], completions=3), "spec.completions"),
    (job(groups=[{"name": "a"}], successPolicy={"rules": [{"groups": ["b"]}]}),
     "spec.successPolicy.rules[0].groups[0]"),
    (job(groups=[{"name": "a", "replicas": 2}],
         successPolicy={"rules": [{"succeededCount": 3}]}),
     "spec.successPolicy.rules[0].succeededCount"),
    (job(groups=[{"name": "a", "template": {"spec": {**pod(), "restartPolicy": "Always"}}}]),
     "spec.groups[0].template.spec.restartPolicy"),
])
def test_bad_groups_name_the_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinJob", spec).field == field


def test_completion_mode_is_immutable() -> None:
    old = make("PinJob", valid("PinJob", job()))
    found = causes("PinJob", indexed(), old=old)
    assert found["spec.completionMode"].message == "field is immutable"


def test_parse_indexes() -> None:
    assert parse_indexes("0-2,5,7-9") == [(0, 2), (5, 5), (7, 9)]
    for bad in ("", "1,1", "2-1", "1-", "x", "0,,1"):
        with pytest.raises(ValueError):
            parse_indexes(bad)
