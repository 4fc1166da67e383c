"""The one error type the engine raises for bad input, and name suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value is invalid. ``field`` names it; the message gives the allowed range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def unknown_name(field: str, name: str, valid: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown registry name, suggesting the closest valid ones."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(field, f"unknown name {name!r}{hint} (valid: {', '.join(valid)})")


def lookup(field: str, name: str, registry: dict, aliases: dict[str, str] | None = None):
    """Find ``name`` in a registry (case-insensitive, aliases allowed) or raise a ConfigError."""
    if not isinstance(name, str):  # its type, not its repr: a value of any size gives one short line
        valid = ", ".join(sorted(list(registry) + list(aliases or ())))
        raise ConfigError(field, f"got a {type(name).__name__}, expected a name (valid: {valid})")
    key = name.strip().lower().replace("-", "_")
    if aliases and key in aliases:
        key = aliases[key]
    if key not in registry:
        raise unknown_name(field, name, list(registry) + list(aliases or ()))
    return registry[key]
