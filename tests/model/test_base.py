"""Shared field types: quantities, int-or-percent, labels, selectors, error paths."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pincompute.kube.errors import Invalid
from pincompute.model.base import CamelModel, IntOrPercent, Labels, LabelSelector, Quantity
from pincompute.model.validation import format_path, parse


class Box(CamelModel):
    amount: Quantity | None = None
    surge: IntOrPercent | None = None
    labels: Labels | None = None
    selector: LabelSelector | None = None


def cause(data: dict) -> tuple[str, str]:
    with pytest.raises(Invalid) as info:
        parse(Box, data)
    assert len(info.value.causes) == 1, info.value.causes
    c = info.value.causes[0]
    return c.field, c.message


@pytest.mark.parametrize("value", ["500m", "2Gi", "1.5", "1e3", 3, 0, "0", "+1"])
def test_quantities_accepted_as_written(value: object) -> None:
    assert parse(Box, {"amount": value}).amount == value


def test_float_quantity_becomes_exact_string() -> None:
    assert parse(Box, {"amount": 0.5}).amount == "0.5"
    assert parse(Box, {"amount": 2.0}).amount == "2"


@pytest.mark.parametrize("value", ["-1", -2, "-500m"])
def test_negative_quantity_names_field(value: object) -> None:
    field, message = cause({"amount": value})
    assert field == "spec.amount"
    assert "greater than or equal to 0" in message


@pytest.mark.parametrize("value", ["lots", "1Gb", "", True, [1]])
def test_malformed_quantity(value: object) -> None:
    field, _ = cause({"amount": value})
    assert field == "spec.amount"


@pytest.mark.parametrize("value", [0, 3, "0%", "25%", "100%"])
def test_int_or_percent(value: object) -> None:
    assert parse(Box, {"surge": value}).surge == value


@pytest.mark.parametrize("value", [-1, "101%", "25", "x%", 1.5])
def test_bad_int_or_percent(value: object) -> None:
    assert cause({"surge": value})[0] == "spec.surge"


def test_label_key_error_names_key() -> None:
    field, message = cause({"labels": {"Bad Key": "v"}})
    assert field == "spec.labels[Bad Key]"
    assert "Bad Key" in message
    field, _ = cause({"labels": {"example.com/ok": "not ok!"}})
    assert field == "spec.labels[example.com/ok]"


def test_selector_parses_and_matches() -> None:
    box = parse(Box, {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}]}})
    assert box.selector is not None
    sel = box.selector.to_selector()
    assert sel.matches({"app": "web", "tier": "a"})
    assert not sel.matches({"app": "web", "tier": "c"})


@pytest.mark.parametrize(("selector", "field"), [
    ({"matchExpressions": [{"key": "tier", "operator": "In"}]},
     "spec.selector.matchExpressions[0]"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     "spec.selector.matchExpressions[0]"),
    ({"matchExpressions": [{"key": "a", "operator": "Near"}]},
     "spec.selector.matchExpressions[0].operator"),
    ({"matchLabels": {"-bad-": "x"}}, "spec.selector.matchLabels"),
    ({"matchLabels": {"app": 3}}, "spec.selector.matchLabels.app"),
])
def test_bad_selector_names_field(selector: dict, field: str) -> None:
    assert cause({"selector": selector})[0] == field


def test_unknown_field_and_snake_case_rejected_in_json() -> None:
    assert cause({"amount": "1", "colour": "red"}) == ("spec.colour", "unknown field")
    with pytest.raises(Invalid):
        parse(Box, {"match_labels": {}})


def test_python_construction_by_field_name() -> None:
    assert LabelSelector(match_labels={"a": "b"}).to_dict() == {"matchLabels": {"a": "b"}}
    with pytest.raises(ValidationError):
        LabelSelector(match_labels={"a b": "c"})


def test_format_path() -> None:
    assert format_path("spec", ("containers", 0, "image")) == "spec.containers[0].image"
    assert format_path("spec", ("limits", "nvidia.com/gpu")) == "spec.limits[nvidia.com/gpu]"
    assert format_path("", ("a", "b")) == "a.b"
