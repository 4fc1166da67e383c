"""Configs as TOML files: what File > Save config writes and File > Open config reads.

Every problem in a file becomes a ConfigError whose field names the file and, where it can be
found, the line: ``"my.toml:7: init: unknown name 'he_nrmal'; did you mean 'he_normal'?"``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from .config import SimConfig
from .errors import ConfigError

_PARAM_TABLES = ("activation_params", "init_params", "bias_params")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no TOML form for {value!r}")


def config_to_toml(config: SimConfig, comment: str = "") -> str:
    """The config as TOML: scalars first, then one table per parameter dict (always written, so
    the file is complete), None fields omitted (they mean "the default")."""
    data = config.to_dict()
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{key} = {_toml_value(value)}" for key, value in data.items()
              if key not in _PARAM_TABLES and value is not None]
    for table in _PARAM_TABLES:
        lines += ["", f"[{table}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in data[table].items()]
    return "\n".join(lines) + "\n"


def line_of(text: str, key: str, table: str | None = None, start: int = 0) -> int | None:
    """The first line (1-based) from character ``start`` on where ``key`` is assigned or opens a
    table (inside ``[table]``, when given), if any."""
    if table:
        header = re.compile(rf"^[ \t]*\[\s*{re.escape(table)}\s*\]", re.MULTILINE).search(text, start)
        if header is None:
            return None
        start = header.end()
    # [ \t]*, not \s*: \s would reach back over blank lines and name the line above the key.
    pattern = re.compile(rf"^[ \t]*(\[+\s*)?{re.escape(key)}\s*(=|\])", re.MULTILINE)
    match = pattern.search(text, start)
    return text.count("\n", 0, match.start()) + 1 if match else None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        where = f"{source}:{found.group(1)}" if found else source
        raise ConfigError(where, re.sub(r"\s*\(at line.*\)", "", str(exc))) from None


# The config field that owns each parameter table, as ConfigError fields name it ("init he.gain").
_TABLE_OF_OWNER = {"activation": "activation_params", "init": "init_params", "bias_init": "bias_params"}


def located_error(exc: ConfigError, text: str, source: str, data: Mapping[str, Any],
                  start: int = 0) -> ConfigError:
    """``exc`` re-raised as ``source:line: ...``, the line being where the offending key stands
    (searched from character ``start`` on)."""
    owner, _, param = exc.field.partition(".")
    owner = owner.split()[0]
    if exc.field == "config":  # an unknown key (SimConfig.from_dict checks them in order)
        known = set(SimConfig().to_dict())
        line = line_of(text, next((k for k in data if k not in known), ""), start=start)
    elif param and owner in _TABLE_OF_OWNER:
        line = (line_of(text, param, _TABLE_OF_OWNER[owner], start)
                or line_of(text, param, start=start) or line_of(text, owner, start=start))
    else:
        line = line_of(text, owner, start=start)
    return at_line(source, line, str(exc))


def at_line(source: str, line: int | None, message: str) -> ConfigError:
    return ConfigError(f"{source}:{line}" if line else source, message)


def config_from_mapping(data: Mapping[str, Any], text: str, source: str) -> SimConfig:
    """A validated config from parsed TOML; unknown keys and bad values name the file and line."""
    try:
        return SimConfig.from_dict(data).validated()
    except ConfigError as exc:
        raise located_error(exc, text, source, data) from None


def config_from_toml(text: str, source: str = "<config>") -> SimConfig:
    return config_from_mapping(parse_toml(text, source), text, source)
