from decimal import Decimal

import pytest

from pincompute.kube.quantity import (
    QuantityError,
    cpu_millis,
    format_bytes,
    format_cpu,
    parse_quantity,
    to_int,
)


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("1", Decimal(1)), ("1.5", Decimal("1.5")), ("2Gi", Decimal(2**31)),
    ("128Mi", Decimal(128 * 2**20)), ("1k", Decimal(1000)), ("1e3", Decimal(1000)),
    ("100Ki", Decimal(102400)), (".5", Decimal("0.5")), (3, Decimal(3)), ("-1", Decimal(-1)),
])
def test_parse(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1.2.3", "Gi", "1 Gi", True, None, "nan"])
def test_malformed(text: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)  # type: ignore[arg-type]


def test_conversions() -> None:
    assert cpu_millis("0.1") == 100
    assert cpu_millis("250m") == 250
    assert cpu_millis("1.0001") == 1001  # rounded up, never down
    assert to_int("1Mi") == 2**20
    assert format_bytes(3 * 2**30) == "3Gi"
    assert format_bytes(1000) == "1000"
    assert format_cpu(1500) == "1500m"
    assert format_cpu(2000) == "2"
