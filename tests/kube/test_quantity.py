import time
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


@pytest.mark.parametrize("text", ["1e9999999", "1e999999", "-1e999999", "1e65", "1e-65",
                                  "9223372036854775808", "8Ei", "1" * 65, 2**63, -(2**63),
                                  1e300, -1e19])
def test_out_of_range_quantities_are_refused_quickly(text: object) -> None:
    started = time.perf_counter()
    with pytest.raises(QuantityError):
        parse_quantity(text)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(("text", "value"), [
    ("9223372036854775807", Decimal(2**63 - 1)), ("-9223372036854775807", -Decimal(2**63 - 1)),
    ("7Ei", Decimal(7 * 2**60)), ("1e18", Decimal(10**18)), ("1e-9", Decimal("1e-9")),
    ("1e64", None), ("0e64", Decimal(0)), ("0.5e1", Decimal(5)),
])
def test_the_edges_of_the_range(text: str, value: Decimal | None) -> None:
    if value is None:
        with pytest.raises(QuantityError, match="too large"):
            parse_quantity(text)
    else:
        assert parse_quantity(text) == value


def test_finer_than_nano_rounds_away_from_zero_as_kubernetes() -> None:
    assert parse_quantity("0.9n") == Decimal("1e-9")
    assert parse_quantity("1e-40") == Decimal("1e-9")
    assert parse_quantity("-1e-40") == Decimal("-1e-9")
    assert parse_quantity(1e-300) == Decimal("1e-9")
    assert parse_quantity("1.5n") == Decimal("2e-9")


def test_cpu_beyond_int64_millicores_is_refused() -> None:
    assert cpu_millis("9223372036854775") == 9223372036854775000
    with pytest.raises(QuantityError, match="CPU"):
        cpu_millis("9223372036854776")
