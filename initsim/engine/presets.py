"""The registry of presets: the classic story, one JSON file each in resources/presets/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from .checks import integer_in, params_mapping, shown
from .config import SimConfig
from .configfile import checked_text
from .errors import ConfigError, lookup

DEFAULT_PRESET = "he_relu"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    explanation: str
    config: SimConfig
    order: int = 0


def resource_dir(*parts: str) -> Traversable:
    """A folder of the shipped resources (the top-level resources/ installed as initsim.resources)."""
    folder = resources.files("initsim.resources")
    for part in parts:
        folder = folder / part
    return folder


def parse_preset(text: str, source: str) -> Preset:
    """A Preset from a JSON text; any problem is a ConfigError naming ``source`` (and the line)."""
    checked_text(text, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, f"line {exc.lineno}: {exc.msg}") from None
    except ValueError:  # Python reads integers of at most 4,300 digits (sys.int_info)
        raise ConfigError(source, "an integer of thousands of digits: not a preset value") from None
    if not isinstance(data, dict):
        raise ConfigError(source, "expected a JSON object with name, title, explanation and config")
    missing = [key for key in ("name", "title", "explanation", "config") if key not in data]
    if missing:
        raise ConfigError(source, f"missing key {missing[0]!r}")
    texts = {key: data[key] for key in ("name", "title", "explanation")}
    try:
        for key, value in texts.items():
            if not isinstance(value, str):
                raise ConfigError(key, f"got {shown(value)}, expected text")
        config = SimConfig.from_dict(params_mapping("config", data["config"])).validated()
        order = integer_in("order", data.get("order", 0), -1000, 1000)
    except ConfigError as exc:
        raise ConfigError(source, str(exc)) from None
    return Preset(**texts, config=config, order=order)


@cache
def presets() -> dict[str, Preset]:
    """Every shipped preset by name, in story order."""
    found = [parse_preset(entry.read_text(encoding="utf-8"), entry.name)
             for entry in resource_dir("presets").iterdir() if entry.name.endswith(".json")]
    return {p.name: p for p in sorted(found, key=lambda p: (p.order, p.name))}


def get_preset(name: str) -> Preset:
    return lookup("preset", name, presets())
