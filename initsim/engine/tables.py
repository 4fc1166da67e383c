"""The registries of schemes and activations as rows (what `initsim schemes --json` prints) and as
the README's Markdown tables, which `initsim schemes --markdown` prints and a test keeps equal."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .activations import ACTIVATIONS
from .params import params_in_brackets
from .schemes import SCHEMES


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _call(text: str) -> str:
    """A framework call set as code, the words after it (if any) as text."""
    found = re.match(r"((?:nn|keras)\.[^ ]*?\([^)]*\)(?:; [^ ]*?\([^)]*\))?)(.*)", text)
    return _code(found.group(1)) + found.group(2) if found else text


def scheme_rows() -> list[dict]:
    return [{"name": s.name, "label": s.label, "family": s.family, "truncated": s.truncated,
             "formula": s.formula, "params": dict(s.defaults), "aliases": list(s.aliases),
             "pytorch": s.pytorch, "keras": s.keras, "description": s.description,
             "data_dependent": s.data_dependent} for s in SCHEMES.values()]


def activation_rows() -> list[dict]:
    rows = []
    for a in ACTIVATIONS.values():
        p = a.params()
        rows.append({"name": a.name, "formula": a.formula, "params": dict(a.defaults),
                     "gain": a.gain(), "pytorch_gain": a.torch_gain is not None,
                     "recommended": a.recommended, "recommended_params": a.recommended_params(p),
                     "why": a.why, "can_die": a.can_die(p),
                     "saturation": list(a.saturation) if a.saturation else None})
    return rows


def gain_source(row: dict) -> str:
    return "PyTorch" if row["pytorch_gain"] else "mean field"


def schemes_markdown() -> str:
    """The README's table of schemes (a test keeps the README equal to it)."""
    return _markdown_table(
        ("scheme", "framework", "W ~", "parameters", "PyTorch", "Keras"),
        [(_code(r["name"]) + "".join(f" ({_code(a)})" for a in r["aliases"]),
          r["family"] + (", truncated" if r["truncated"] else ""), r["formula"],
          params_in_brackets(r["params"]) or "-", _call(r["pytorch"]), _call(r["keras"])) for r in scheme_rows()])


def activations_markdown() -> str:
    """The README's table of activations, from the registry."""
    return _markdown_table(
        ("activation", "phi", "gain", "recommended", "why"),
        [(_code(r["name"]), r["formula"], f"{r['gain']:.4f} ({gain_source(r)})",
          _code(r["recommended"] + params_in_brackets(r["recommended_params"])), r["why"])
         for r in activation_rows()])
