"""`initsim schemes`, `activations` and `presets` (the registries, as text, JSON or Markdown) and
`initsim install-desktop`."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..engine import ACTIVATIONS, SCHEMES
from ..engine.presets import presets
from .common import UsageError, bracketed_params, print_json


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


def _gain_source(row: dict) -> str:
    return "PyTorch" if row["pytorch_gain"] else "mean field"


def schemes_markdown() -> str:
    """The README's table of schemes, from the registry (a test keeps the README equal to it)."""
    return _markdown_table(
        ("scheme", "framework", "W ~", "parameters", "PyTorch", "Keras"),
        [(_code(r["name"]) + "".join(f" ({_code(a)})" for a in r["aliases"]),
          r["family"] + (", truncated" if r["truncated"] else ""), r["formula"],
          bracketed_params(r["params"]) or "-", _call(r["pytorch"]), _call(r["keras"])) for r in scheme_rows()])


def activations_markdown() -> str:
    """The README's table of activations, from the registry."""
    return _markdown_table(
        ("activation", "phi", "gain", "recommended", "why"),
        [(_code(r["name"]), r["formula"], f"{r['gain']:.4f} ({_gain_source(r)})",
          _code(r["recommended"] + bracketed_params(r["recommended_params"])), r["why"])
         for r in activation_rows()])


def _listing(args: argparse.Namespace, rows: list[dict], text: Callable[[dict], str],
             markdown: Callable[[], str] | None = None) -> int:
    """A registry listing: JSON, the README's markdown table, or text for people."""
    if args.json:
        print_json(rows)
    elif markdown is not None and args.markdown:
        print(markdown())
    else:
        print("\n".join(text(row) for row in rows))
    return 0


def cmd_schemes(args: argparse.Namespace) -> int:
    return _listing(args, scheme_rows(), lambda r: (
        f"{r['label']}\n    {r['formula']}\n    params: {bracketed_params(r['params']) or '-'}"
        f"\n    PyTorch: {r['pytorch']}\n    Keras:   {r['keras']}"), schemes_markdown)


def cmd_activations(args: argparse.Namespace) -> int:
    return _listing(args, activation_rows(), lambda r: (
        f"{r['name']:<11} gain {r['gain']:.4f} ({_gain_source(r)})  ->  {r['recommended']} "
        f"{bracketed_params(r['recommended_params'])}\n    {r['formula']}\n    {r['why']}"), activations_markdown)


def cmd_presets(args: argparse.Namespace) -> int:
    rows = [{"name": p.name, "title": p.title, "explanation": p.explanation,
             "config": p.config.to_dict()} for p in presets().values()]
    return _listing(args, rows, lambda r: f"{r['name']:<22} {r['title']}")


def cmd_install_desktop(args: argparse.Namespace) -> int:
    from ..desktop import data_home, install_desktop_entry

    try:
        written = install_desktop_entry(Path(args.prefix) if args.prefix else None)
    except OSError as exc:
        raise UsageError(f"cannot install under {args.prefix or data_home()}: {exc.strerror or exc}") from None
    print("installed the desktop entry and icons:\n  " + "\n  ".join(str(p) for p in written))
    return 0
