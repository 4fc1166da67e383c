"""The one error type the engine raises for bad input, values as its messages show them, and name
suggestions."""

from __future__ import annotations

import difflib
import math
import reprlib
from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid. ``field`` names it; the message gives the allowed range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


SHOWN_CHARS = 60  # a value longer than this is cut in messages
_LOG10_2 = math.log10(2)


class _Shown(reprlib.Repr):
    """reprlib's bounded repr (depth, items, characters), with integers too long to print (Python
    refuses more than 4,300 digits) given by their number of digits."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 3 * SHOWN_CHARS:
            return f"<an integer of {int(x.bit_length() * _LOG10_2) + 1} digits>"
        return super().repr_int(x, level)


_SHOWN = _Shown()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = SHOWN_CHARS


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length, whatever the value's size or nesting."""
    text = _SHOWN.repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def unknown_name(field: str, name: Any, valid: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown registry name, suggesting the closest valid ones."""
    valid = sorted(valid)
    # A ratio of 0.5 needs the name within 3 times a valid one's length; a longer name (a whole
    # file's worth from a bad config) would hold difflib for seconds to find nothing.
    similar = isinstance(name, str) and len(name) <= 3 * max(map(len, valid), default=0)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5) if similar else []
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(field, f"unknown name {shown(name)}{hint} (valid: {', '.join(valid)})")


def lookup(field: str, name: str, registry: dict, aliases: dict[str, str] | None = None):
    """Find ``name`` in a registry (case-insensitive, aliases allowed) or raise a ConfigError."""
    if not isinstance(name, str):
        valid = ", ".join(sorted(list(registry) + list(aliases or ())))
        raise ConfigError(field, f"got {shown(name)}, expected a name (valid: {valid})")
    key = name.strip().lower().replace("-", "_")
    if aliases and key in aliases:
        key = aliases[key]
    if key not in registry:
        raise unknown_name(field, name, list(registry) + list(aliases or ()))
    return registry[key]
