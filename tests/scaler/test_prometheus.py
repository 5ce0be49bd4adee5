"""Reading one number out of a Prometheus instant-query answer."""

from __future__ import annotations

import pytest

from pincompute.scaler.prometheus import value_of
from pincompute.scaler.replicas import MetricUnavailable


def vector(*values: str) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1.0, v]} for v in values]}}


def test_one_series_or_a_scalar_is_a_number() -> None:
    assert value_of(vector("12.5")) == 12.5
    assert value_of({"status": "success",
                     "data": {"resultType": "scalar", "result": [1.0, "3"]}}) == 3.0


@pytest.mark.parametrize(("body", "why"), [
    (vector(), "no series"),
    (vector("1", "2"), "2 series"),
    (vector("NaN"), "nan"),
    ({"status": "error", "error": "parse error"}, "parse error"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
])
def test_anything_else_is_unavailable_with_the_reason(body: dict[str, object], why: str) -> None:
    with pytest.raises(MetricUnavailable, match=why):
        value_of(body)
