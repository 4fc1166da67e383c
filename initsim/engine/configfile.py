"""Configs as TOML files: what File > Save config writes and File > Open config reads, and the
one reader of files a user gives (configs, presets, tours).

Every problem in a file becomes a ConfigError whose field names the file and, where it can be
found, the line: ``"my.toml:7: init: unknown name 'he_nrmal'; did you mean 'he_normal'?"``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .config import SimConfig
from .errors import ConfigError
from .userfiles import UnreadableFile, open_regular

_PARAM_TABLES = ("activation_params", "init_params", "bias_params")
T = TypeVar("T")

# A config, preset or tour is a few kilobytes: anything larger is not one, and is refused before it
# is read (a 50 MB file, /dev/zero, would otherwise hold the window for minutes).
MAX_FILE_BYTES = 1 << 20
# Nested [ and { beyond this are refused before parsing: the TOML and JSON parsers recurse once
# per level, and a few thousand levels end in a RecursionError. A config needs three.
MAX_DEPTH = 32
# Messages quoting a file are cut to this: enough for the longest list of valid names.
MESSAGE_LIMIT = 500
# Where a key can start on a line (after a table's brackets), and what follows a key. [ \t], not
# \s: \s would reach back over blank lines and name the line above the key.
_LINE_START = re.compile(r"^[ \t]*(?:\[+[ \t]*)?", re.MULTILINE)
_AFTER_KEY = re.compile(r"[ \t]*(?:=|\])")
# What the depth scan stops at: an opening or closing bracket, the start of a string or a comment.
_SCAN_STOPS = re.compile(r"""[\[\]{}"'#]""")
# TOML's strings (JSON's are its basic ones) by their quote: (multi-line, one-line), matched at the
# quote that opens them.
_STRINGS = {
    '"': (re.compile(r'"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""(?:""?)?'), re.compile(r'"(?:[^"\\\n]|\\.)*"')),
    "'": (re.compile(r"'''[\s\S]*?'''(?:''?)?"), re.compile(r"'[^'\n]*'")),
}


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
    table (inside ``[table]``, when given), if any. Linear in the text, whatever the key: a key
    of a million characters from a bad file is compared, not compiled into a pattern."""
    if table:
        header = re.compile(rf"^[ \t]*\[\s*{re.escape(table)}\s*\]", re.MULTILINE).search(text, start)
        if header is None:
            return None
        start = header.end()
    for line in _LINE_START.finditer(text, start):
        if text.startswith(key, line.end()) and _AFTER_KEY.match(text, line.end() + len(key)):
            return text.count("\n", 0, line.end()) + 1
    return None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """The TOML ``text`` parsed (checked_text first); errors name ``source`` and the line."""
    checked_text(text, source)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        where = f"{source}:{found.group(1)}" if found else source
        raise ConfigError(where, re.sub(r"\s*\(at line.*\)", "", str(exc))) from None
    except ValueError:  # Python reads integers of at most 4,300 digits (sys.int_info)
        raise ConfigError(source, "an integer of thousands of digits: not a config or tour value") from None


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


# --- files from users ---------------------------------------------------------------------

def readable(message: str) -> str:
    """``message`` on one line (control characters, which could move a terminal's cursor, as
    spaces) and at most MESSAGE_LIMIT characters."""
    line = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", message)
    return line if len(line) <= MESSAGE_LIMIT else line[:MESSAGE_LIMIT - 1] + "\u2026"


def nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { in TOML or JSON ``text``, strings and comments skipped, in
    one pass without recursion. Where the text stops being TOML or JSON (an unclosed string) the
    parsers stop too, so the scan does; what it counts is never less than what they descend."""
    depth = deepest = 0
    position = 0
    while (found := _SCAN_STOPS.search(text, position)) is not None:
        char, position = found.group(), found.start()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            position += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
            position += 1
        elif char == "#":
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        else:
            multi, single = _STRINGS[char]
            string = (multi if text.startswith(char * 3, position) else single).match(text, position)
            if string is None:
                break
            position = string.end()
    return deepest


def _too_large(source: str, size: int) -> ConfigError:
    return ConfigError(source, f"{size / 2**20:,.1f} MiB: config and tour files are at most "
                               f"{MAX_FILE_BYTES // 2**20} MiB")


def checked_text(text: str, source: str) -> None:
    """A ConfigError unless a parser can take ``text`` in bounded time and depth: at most
    MAX_FILE_BYTES characters, nested at most MAX_DEPTH levels."""
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(source, len(text))
    if nesting_depth(text) > MAX_DEPTH:
        raise ConfigError(source, f"nested more than {MAX_DEPTH} levels deep ([ or {{): not a config or tour")


def read_untrusted(path: str | Path) -> str:
    """The text of a file a user gave: a regular file (not a folder, a pipe or a device, also
    through a link) of at most MAX_FILE_BYTES, UTF-8 (its parser checks the rest). Opened without
    blocking (a pipe with no writer would wait forever) and checked after opening, so what is
    checked is what is read. Every problem is a ConfigError naming the file."""
    source = str(path)
    try:
        fd = open_regular(path, "a config or tour file")
    except UnreadableFile as exc:
        raise ConfigError(source, str(exc)) from None
    try:
        info = os.fstat(fd)
        if info.st_size > MAX_FILE_BYTES:
            raise _too_large(source, info.st_size)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_FILE_BYTES + 1)  # a file growing, or /proc's that say size 0
    except OSError as exc:
        raise ConfigError(source, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(source, len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source}:{line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x}): "
                                              "not a config or tour file") from None
    return text


def from_file(path: str | Path, parse: Callable[[str, str], T]) -> T:
    """``parse(text, str(path))`` of the file at ``path`` read with read_untrusted; any problem is
    one ConfigError, its message on one line of readable length."""
    try:
        return parse(read_untrusted(path), str(path))
    except ConfigError as exc:
        raise ConfigError(exc.field, readable(exc.message)) from None
