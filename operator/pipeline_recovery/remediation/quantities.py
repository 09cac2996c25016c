"""Exact parsing, scaling and formatting of Kubernetes resource quantities (512Mi, 1.5G, 100m)."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

_BINARY: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Kubernetes' grammar: <signedNumber><suffix>; the suffix is binary SI, decimal SI or an exponent.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]{1,3})?$"
)
_MAX_LEN = 64


class QuantityError(ValueError):
    """A string is not a Kubernetes quantity."""


def parse_quantity(text: object) -> Fraction:
    """The exact value of a quantity (bytes for memory, cores for cpu); QuantityError if invalid."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise QuantityError(f"not a quantity: {text!r}")
    raw = str(text).strip()
    if len(raw) > _MAX_LEN:
        raise QuantityError("quantity too long")
    match = _QUANTITY.match(raw)
    if match is None:
        raise QuantityError(f"not a quantity: {raw!r}")
    try:
        number = Fraction(Decimal(match["num"]))
    except (InvalidOperation, ValueError) as exc:  # pragma: no cover - regex already filters
        raise QuantityError(f"not a quantity: {raw!r}") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def is_binary(text: str) -> bool:
    """True when a quantity is written with a binary suffix (Ki, Mi, Gi ...)."""
    return str(text).strip()[-2:] in _BINARY


def format_bytes(value: Fraction, binary: bool = True) -> str:
    """Whole bytes (rounded up) in the largest unit of the family that divides them exactly."""
    whole = math.ceil(value)
    if whole <= 0:
        return "0"
    if binary:
        for suffix, size in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if whole % size == 0:
                return f"{whole // size}{suffix}"
        return str(whole)
    for suffix in ("E", "P", "T", "G", "M", "k"):
        size = int(_DECIMAL[suffix])
        if whole % size == 0:
            return f"{whole // size}{suffix}"
    return str(whole)


def factor_fraction(factor: float) -> Fraction:
    """A float setting such as 1.5 as the exact decimal fraction a human wrote (3/2)."""
    return Fraction(Decimal(repr(factor)))


def scale_bytes(text: str, factor: float, cap: str) -> tuple[str, bool]:
    """The quantity times factor, at most cap, in the original's unit family; and whether capped."""
    old = parse_quantity(text)
    ceiling = parse_quantity(cap)
    new = old * factor_fraction(factor)
    capped = new > ceiling
    return format_bytes(min(new, ceiling), binary=is_binary(text) or not old), capped
