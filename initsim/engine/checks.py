"""One check per kind of input field, shared by every entry (configs, files, the CLI's flags).

Each returns the value in its canonical type or raises a ConfigError naming the field. Values come
from anywhere (TOML, JSON, the window, Python callers), so nothing here trusts a value's type:
bools are not integers, text is not a number, and a value's repr is cut before it is shown.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError, shown, unknown_name


def is_integer(value: Any) -> bool:
    """A Python or numpy integer, not a bool (True is not 1 in a config)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def integer_in(field: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int, if it is an integer in [low, high]."""
    if not is_integer(value) or not low <= value <= high:
        raise ConfigError(field, f"got {shown(value)}, expected an integer in [{low}, {high}]")
    return int(value)


def number_range(low: float, high: float, low_inclusive: bool = True) -> str:
    if low == -math.inf and high == math.inf:
        return "a finite number"
    left = "[" if low_inclusive else "("
    return f"a number in {left}{low:g}, {high:g}]"


def number_in(field: str, value: Any, low: float = -math.inf, high: float = math.inf,
              low_inclusive: bool = True) -> float:
    """``value`` as a float, if it is a finite real number (int or float, Python or numpy; not a
    bool, not text) in [low, high] (low excluded when not ``low_inclusive``)."""
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if numeric:
        # Compared before float(): an integer beyond float's range is out of range, not an OverflowError.
        above_low = low < value or (low_inclusive and low == value)
        if above_low and value <= high and (not isinstance(value, int) or abs(value) < 2**1023):
            number = float(value)
            if math.isfinite(number):
                return number
    raise ConfigError(field, f"got {shown(value)}, expected {number_range(low, high, low_inclusive)}")


def choice_in(field: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed`` (text, exactly)."""
    if not isinstance(value, str):
        raise ConfigError(field, f"got {shown(value)}, expected one of {', '.join(allowed)}")
    if value not in allowed:
        raise unknown_name(field, value, allowed)
    return str(value)


def params_mapping(field: str, value: Any) -> dict[str, Any]:
    """A table of parameters, ``{name: value}`` (None: no parameters), as a plain dict."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(field, f"got {shown(value)}, expected a table of name = value (e.g. gain = 1.5)")
    for name in value:
        if not isinstance(name, str):
            raise ConfigError(field, f"got the parameter name {shown(name)}, expected text")
    return dict(value)


def listed(field: str, values: Any, most: int | None = None) -> list:
    """``values`` (a list, tuple, range or other iterable; not text or a table) as a list of 1 to
    ``most`` items, read no further than ``most + 1`` items."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ConfigError(field, f"got {shown(values)}, expected a list of values")
    items = list(values if most is None else itertools.islice(values, most + 1))
    if not items or (most is not None and len(items) > most):
        count = "none" if not items else f"more than {most}"
        raise ConfigError(field, f"got {count}, expected " + ("at least one value" if most is None
                                                              else f"1 to {most} {field}"))
    return items
