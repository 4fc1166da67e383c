"""Guided tours: a sequence of steps, each a config to apply, a view to show and a few sentences.

A tour is a TOML file (the shipped ones are in resources/tours/):

    title = "..."
    description = "..."

    [[step]]
    title = "All zeros"
    text = "Two to four sentences."
    look_at = "What to look at."
    view = "histograms"            # one of VIEWS
    preset = "zeros"               # optional: the config starts from this preset
    compare = ["kaiming_normal", "xavier_normal"]   # optional, a compare step: schemes side by side
                                   # ("xavier_normal (plain)": on plain layers, beside blocks)
    isometry = true                # optional, a spectra step: Gaussian vs orthogonal weights
    [step.config]                  # optional: overrides, the keys of a saved config
    layers = 10
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .checks import listed, shown
from .config import SimConfig
from .configfile import at_line, from_file, line_of, located_error, parse_toml
from .errors import ConfigError, lookup, unknown_name
from .presets import get_preset, resource_dir
from .schemes import get_scheme

# The views a step may show: those of the app's registry (initsim.app.views.registry) marked in_tours,
# which the engine cannot import; tests/app/test_view_registry.py keeps the two equal.
VIEWS = ("histograms", "heatmap", "stats", "theory", "spectra", "training", "compare")
_STEP_KEYS = ("title", "text", "look_at", "view", "preset", "compare", "isometry", "config")
_TOUR_KEYS = ("title", "description", "step")
# A compared scheme on plain layers with no norm, beside the step's residual blocks.
PLAIN = " (plain)"


@dataclass(frozen=True)
class TourStep:
    title: str
    text: str
    look_at: str
    view: str
    config: SimConfig
    compare: tuple[str, ...] = ()  # scheme names, when the step compares schemes
    # A spectra step shows Gaussian against orthogonal weights of the network's variance (the
    # lesson of dynamical isometry, which a slide cannot press a button for).
    isometry: bool = False


@dataclass(frozen=True)
class Tour:
    name: str
    title: str
    description: str
    steps: tuple[TourStep, ...]


class _Source:
    """A tour file's text, for errors that name the line of the offending key."""

    def __init__(self, text: str, name: str) -> None:
        self.text, self.name = text, name

    def error(self, message: str, key: str = "", start: int = 0) -> ConfigError:
        return at_line(self.name, line_of(self.text, key, start=start) if key else None, message)

    def text_of(self, table: dict, key: str, where: str, start: int) -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{where}: '{key}' must be a non-empty text", key, start)
        return value.strip()

    def optional_text(self, table: dict, key: str, where: str, start: int) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise self.error(f"{where}: '{key}' must be a text, not {shown(value)}", key, start)
        return value.strip()

    def check_keys(self, table: dict, allowed: tuple[str, ...], where: str, start: int) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(str(unknown_name(f"{where} key", key, allowed)), key, start)


def _step(table: Any, number: int, source: _Source, start: int) -> TourStep:
    where = f"step {number}"
    if not isinstance(table, dict):
        raise source.error(f"{where}: expected a [[step]] table")
    source.check_keys(table, _STEP_KEYS, where, start)
    view = table.get("view", "histograms")
    if view not in VIEWS:
        raise source.error(str(unknown_name(f"{where} view", str(view), VIEWS)), "view", start)
    overrides = table.get("config", {})
    if not isinstance(overrides, dict):
        raise source.error(f"{where}: 'config' must be a [step.config] table", "config", start)
    try:
        base = get_preset(table["preset"]).config if "preset" in table else SimConfig()
        config = SimConfig.from_dict({**base.to_dict(), **overrides}).validated()
    except ConfigError as exc:
        raise located_error(exc, source.text, source.name, overrides, start) from None
    return TourStep(title=source.text_of(table, "title", where, start),
                    text=source.text_of(table, "text", where, start),
                    look_at=source.optional_text(table, "look_at", where, start), view=view, config=config,
                    compare=_compared(table, where, source, start),
                    isometry=_isometry(table, view, where, source, start))


def _isometry(table: dict, view: str, where: str, source: _Source, start: int) -> bool:
    """Whether a spectra step compares Gaussian and orthogonal weights: 'isometry', false without it."""
    value = table.get("isometry", False)
    if not isinstance(value, bool):
        raise source.error(f"{where}: 'isometry' is true or false, not {shown(value)}", "isometry", start)
    if value and view != "spectra":
        raise source.error(f"{where}: 'isometry' is for a spectra step (view = \"spectra\"), not {view}",
                           "isometry", start)
    return value


def picked_scheme(pick: str) -> tuple[str, bool]:
    """(the scheme's registry name, whether on plain layers) of a compared scheme: "NAME" or
    "NAME (plain)". ConfigError for an unknown scheme."""
    plain = pick.endswith(PLAIN)
    return get_scheme(pick.removesuffix(PLAIN).strip()).name, plain


def _compared(table: dict, where: str, source: _Source, start: int) -> tuple[str, ...]:
    """The schemes a step compares: 1 to 4 names (each "NAME (plain)" on plain layers), or none
    without 'compare'; canonical."""
    if "compare" not in table:
        return ()
    try:
        names = listed(f"{where} compare", table["compare"], most=4)
        for name in names:
            if not isinstance(name, str):
                raise ConfigError(f"{where} compare", f"got {shown(name)}, expected a scheme's name")
        return tuple(scheme + (PLAIN if plain else "") for scheme, plain in map(picked_scheme, names))
    except ConfigError as exc:
        raise source.error(str(exc), "compare", start) from None


def parse_tour(text: str, source_name: str, name: str | None = None) -> Tour:
    """A Tour from TOML text; every problem is a ConfigError naming the source and the line."""
    source = _Source(text, source_name)
    data = parse_toml(text, source_name)
    source.check_keys(data, _TOUR_KEYS, "tour", 0)
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise source.error("a tour needs at least one [[step]]")
    # Where each [[step]] starts, so that an error names the line inside its own step.
    starts = [m.start() for m in re.finditer(r"^\s*\[\[\s*step\s*\]\]", text, re.MULTILINE)]
    starts += [0] * (len(steps) - len(starts))
    return Tour(name=name or Path(source_name).stem,
                title=source.text_of(data, "title", "tour", 0),
                description=source.optional_text(data, "description", "tour", 0),
                steps=tuple(_step(s, i, source, starts[i - 1]) for i, s in enumerate(steps, 1)))


def read_tour(path: str | Path) -> Tour:
    """A tour from a user's file (configfile.from_file: any problem is one ConfigError)."""
    return from_file(path, parse_tour)


@cache
def tours() -> dict[str, Tour]:
    """The shipped tours by name."""
    found = [parse_tour(entry.read_text(encoding="utf-8"), entry.name, entry.name.removesuffix(".toml"))
             for entry in resource_dir("tours").iterdir() if entry.name.endswith(".toml")]
    return {t.name: t for t in sorted(found, key=lambda t: t.name)}


def get_tour(name: str) -> Tour:
    return lookup("tour", name, tours())
