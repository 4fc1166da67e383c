"""`initsim schemes`, `activations` and `presets` (the registries, as text, JSON or Markdown) and
`initsim install-desktop`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..engine.params import params_in_brackets
from ..engine.presets import presets
from ..engine.tables import activation_rows, activations_markdown, gain_source, scheme_rows, schemes_markdown
from .common import UsageError, print_json


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
        f"{r['label']}\n    {r['formula']}\n    params: {params_in_brackets(r['params']) or '-'}"
        f"\n    PyTorch: {r['pytorch']}\n    Keras:   {r['keras']}"), schemes_markdown)


def cmd_activations(args: argparse.Namespace) -> int:
    return _listing(args, activation_rows(), lambda r: (
        f"{r['name']:<11} gain {r['gain']:.4f} ({gain_source(r)})  ->  {r['recommended']} "
        f"{params_in_brackets(r['recommended_params'])}\n    {r['formula']}\n    {r['why']}"), activations_markdown)


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
