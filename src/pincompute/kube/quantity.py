"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1.5``, ``1e3``).

Quantities are parsed into exact :class:`~decimal.Decimal` values so that sums of
many small requests do not drift; the scheduler converts them once into integer
milli-units or bytes for its arrays.

Quantities come from users, so parsing is bounded: text longer than
:data:`MAX_LENGTH` characters, an exponent beyond :data:`MAX_EXPONENT` and a
magnitude beyond :data:`MAX_VALUE` (2^63-1, the largest value Kubernetes'
``Quantity.Value()`` represents, and where it caps ``8Ei``) are rejected with a
:class:`QuantityError` before any arithmetic.  Every step then works on a few
dozen digits, so a hostile quantity costs what a normal one does (an unbounded
``1e999999`` used to take seconds to convert; ``1e9999999`` raised an overflow).
As Kubernetes does, a non-zero value finer than a nano-unit is rounded away from
zero to ``1n``.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_UP, Context, Decimal

MAX_LENGTH = 64
"""The longest quantity text accepted (the longest meaningful one is ~30 characters)."""
MAX_EXPONENT = 64
"""The largest decimal exponent (``e64``) accepted in the text."""
MAX_VALUE = Decimal(2**63 - 1)
"""The largest magnitude accepted: Kubernetes' int64 bound."""
_MAX_INT = 2**63 - 1

_NANO = Decimal("1e-9")
# Exact for any accepted input: at most MAX_LENGTH digits times a 19-digit suffix.
_EXACT = Context(prec=2 * MAX_LENGTH + 20)
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
# Decimal places a suffix adds ("1.5m" has 4); binary suffixes are whole numbers.
_PLACES = {"n": 9, "u": 6, "m": 3}
_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))"
                 r"(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


class QuantityError(ValueError):
    """A malformed or out-of-range quantity; the message says what form it must take."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a quantity; raises :class:`QuantityError` with the reason if malformed."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must be strings or numbers, not {value!r}")
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise QuantityError(_too_large(str(value)))
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"quantity {value!r} is not finite")
        return _bounded(Decimal(repr(value)), repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"quantities must be strings or numbers, not {type(value).__name__}")
    if len(value) > MAX_LENGTH:
        raise QuantityError(f"quantity {value[:16]!r}... is too long: must have at most "
                            f"{MAX_LENGTH} characters")
    m = _RE.match(value.strip())
    if not m:
        raise QuantityError(
            f"quantity {value!r} must match the regular expression "
            r"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    digits, exponent_text, suffix = m.groups()
    number = Decimal(digits)  # the regex admits only valid numbers
    dot = digits.find(".")
    places = len(digits) - dot - 1 if dot >= 0 else 0  # decimal places written
    if exponent_text is not None:
        exponent = int(exponent_text)  # at most MAX_LENGTH digits
        if abs(exponent) > MAX_EXPONENT:
            raise QuantityError(f"quantity {value!r}: the exponent must be between "
                                f"-{MAX_EXPONENT} and {MAX_EXPONENT}")
        return _bounded(number.scaleb(exponent, _EXACT), value,
                        finer_than_nano=places - exponent > 9)
    if suffix is None:
        return _bounded(number, value, finer_than_nano=places > 9)
    # Up to 9 digits times a suffix (at most 19 digits) is exact in the default context's
    # 28 digits; longer numbers take the exact context (slower, and rare).
    amount = (number * _SUFFIX[suffix] if len(digits) <= 9
              else _EXACT.multiply(number, _SUFFIX[suffix]))
    return _bounded(amount, value, finer_than_nano=places + _PLACES.get(suffix, 0) > 9)


def _bounded(amount: Decimal, text: str, *, finer_than_nano: bool = True) -> Decimal:
    """``amount`` checked against MAX_VALUE, rounded up to nano-units if it may be finer.

    (``finer_than_nano`` False is the caller's promise that it cannot be: the checks
    are ordered cheapest first, as every quantity of every pod passes here.)
    """
    if amount.adjusted() >= 18 and amount.copy_abs() > MAX_VALUE:
        raise QuantityError(_too_large(text))
    if finer_than_nano and amount and amount.as_tuple().exponent < -9:  # type: ignore[operator]
        # Finer than a nano-unit: round away from zero, as Kubernetes does ("0.9n" is "1n").
        amount = amount.quantize(_NANO, rounding=ROUND_UP, context=_EXACT)
    return amount


def _too_large(text: str) -> str:
    return f"quantity {text!r} is too large: its magnitude must be at most {MAX_VALUE} (2^63-1)"


def cpu_millis(value: str | int | float) -> int:
    """CPU in millicores, rounded up as the scheduler does (``0.1`` → 100, ``1`` → 1000).

    Raises :class:`QuantityError` if the result does not fit the scheduler's int64 columns.
    """
    millis = parse_quantity(value).scaleb(3, _EXACT)
    if millis.adjusted() >= 18 and millis.copy_abs() > MAX_VALUE:
        raise QuantityError(f"quantity {value!r} is too large for a CPU amount: at most "
                            f"{MAX_VALUE // 1000} cores")
    return int(millis.to_integral_value(rounding="ROUND_CEILING"))


def to_int(value: str | int | float) -> int:
    """A quantity as a whole number of units (bytes, pods, GPUs), rounded up."""
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))


def format_bytes(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def format_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
