"""The registry of presets: the classic story, one JSON file each in resources/presets/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from .config import SimConfig
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
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, f"line {exc.lineno}: {exc.msg}") from None
    try:
        config = SimConfig.from_dict(data["config"]).validated()
        return Preset(name=str(data["name"]), title=str(data["title"]),
                      explanation=str(data["explanation"]), config=config,
                      order=int(data.get("order", 0)))
    except KeyError as exc:
        raise ConfigError(source, f"missing key {exc.args[0]!r}") from None
    except ConfigError as exc:
        raise ConfigError(source, str(exc)) from None


@cache
def presets() -> dict[str, Preset]:
    """Every shipped preset by name, in story order."""
    found = [parse_preset(entry.read_text(encoding="utf-8"), entry.name)
             for entry in resource_dir("presets").iterdir() if entry.name.endswith(".json")]
    return {p.name: p for p in sorted(found, key=lambda p: (p.order, p.name))}


def get_preset(name: str) -> Preset:
    return lookup("preset", name, presets())
