from typing import Any

import pytest

from pincompute.kube.errors import BadRequest
from pincompute.kube.patch import MAX_DEPTH, check_depth, merge_diff, merge_patch


def test_rfc7386_examples() -> None:
    # Appendix A of RFC 7386.
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert merge_patch(target, patch) == expected


def test_inputs_are_not_changed() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_diff_round_trips() -> None:
    old = {"spec": {"replicas": 3, "paused": True, "template": {"x": [1]}}, "keep": 1}
    new = {"spec": {"replicas": 5, "template": {"x": [1, 2]}}, "keep": 1, "added": {"k": "v"}}
    assert merge_patch(old, merge_diff(old, new)) == new


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_patches_up_to_the_depth_limit_apply() -> None:
    result = merge_patch({}, _nested(MAX_DEPTH))
    check_depth(_nested(MAX_DEPTH))
    depth = 0
    while isinstance(result, dict):
        result = result.get("a")
        depth += 1
    assert depth == MAX_DEPTH


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 10_000, 200_000])
def test_deeper_patches_are_a_bad_request_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(BadRequest, match="nested too deeply") as err:
        merge_patch({}, _nested(depth))
    assert err.value.code == 400
    with pytest.raises(BadRequest):
        check_depth(_nested(depth))


def test_deep_lists_are_values_not_patches() -> None:
    deep: Any = "x"
    for _ in range(10_000):
        deep = [deep]
    assert merge_patch({}, {"a": deep}) == {"a": deep}
