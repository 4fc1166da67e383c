"""`initsim inspect`: a checkpoint's tensors, one at a time: which initialization each follows and
what looks wrong with it."""

from __future__ import annotations

import argparse
import sys

from ..engine.checkpoints import Checkpoint, CheckpointError, open_checkpoint
from ..engine.configfile import readable
from ..engine.params import params_text
from ..engine.schemes import get_scheme
from .common import UsageError, number_text, print_json

# The table's columns. A flag is a sentence: the table counts them, and each follows the table on
# a line of its own (as `simulate` prints its warnings). Names and matches are cut so that a row
# fits 100 columns for the usual shapes.
HEADER = ("tensor", "shape", "kind", "fans", "std", "best match", "KS", "flags")
NAME_WIDTH = 24
MATCH_WIDTH = 24


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        with open_checkpoint(args.file) as checkpoint:
            layout = args.layout or checkpoint.default_layout
            reports = inspected(checkpoint, layout)
    except CheckpointError as exc:  # a file that cannot be read is a usage error, as a bad config file
        raise UsageError(str(exc)) from None
    if args.json:
        print_json({"file": str(checkpoint.path), "layout": layout,
                    "tensors": [report.to_json() for report in reports]})
        return 0
    skipped = len(checkpoint.tensors) - len(reports)
    count = f"{len(reports)} tensor{'' if len(reports) == 1 else 's'}" + (f" ({skipped} skipped)" if skipped else "")
    print(f"{readable(str(checkpoint.path))}: {checkpoint.format}, {count}, layout {layout} "
          f"(a weight is {'(out, in)' if layout == 'torch' else '(in, out)'})")
    widths = table_widths(reports)
    print(row(HEADER, widths))
    for report in reports:
        print(row(cells(report), widths))
    for report in reports:
        for flag in report.flags:
            print(f"flag: {readable(report.name)}: {flag}")
    flagged = sum(bool(report.flags) for report in reports)
    print(f"{flagged} of {len(reports)} tensors flagged" if flagged else "no tensor flagged")
    return 0


def inspected(checkpoint: Checkpoint, layout: str) -> list:
    """Every tensor's report, read and inspected one at a time (only one tensor in memory), with
    "tensor k of n" on stderr when it is a terminal."""
    from ..engine.inspection import inspect_tensor

    terminal = sys.stderr.isatty()
    total = len(checkpoint.tensors)
    reports = []
    for done, info in enumerate(checkpoint.tensors, 1):
        if terminal:
            print(f"\rtensor {done} of {total}", end="", file=sys.stderr, flush=True)
        array = checkpoint.read(info.name)
        try:
            reports.append(inspect_tensor(info.name, array, layout))
        except ValueError as exc:  # a tensor the inspector has no words for (complex numbers)
            print(f"{chr(13) if terminal else ''}initsim: skipped {readable(str(exc))}", file=sys.stderr)
        del array  # before the next one is read
    if terminal and total:
        print("\r" + " " * len(f"tensor {total} of {total}") + "\r", end="", file=sys.stderr, flush=True)
    return reports


def cut_name(text: str, width: int = NAME_WIDTH) -> str:
    """``text`` in ``width`` characters: its end kept, which tells tensors apart
    ("…self_attn.q_proj.weight"). Control characters, which would move a terminal's cursor, as
    spaces."""
    text = readable(text)
    return text if len(text) <= width else "\u2026" + text[len(text) - width + 1:]


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def match_text(report) -> str:
    """The best match with the parameters that tell it apart: its spread (or constant value), and
    any other away from the scheme's defaults (``uniform(limit=0.037)``,
    ``kaiming_normal(nonlinearity=tanh)``); ``+2``: two more names give the same distribution at
    these fans (``equivalent``, in --json)."""
    from ..engine.inspection import SPREAD_PARAMS

    best = report.best
    if best is None:
        return "-"
    defaults = get_scheme(best.scheme).params()
    changed = {name: value for name, value in best.params.items()
               if name in SPREAD_PARAMS or name == "value" or defaults.get(name) != value}
    text = readable(f"{best.scheme}({params_text(changed)})" if changed else best.scheme)
    more = f" +{len(report.equivalent)}" if report.equivalent else ""
    room = MATCH_WIDTH - len(more)
    # Cut at its end: the scheme's name says most.
    return (text if len(text) <= room else text[:room - 1] + "\u2026") + more


def cells(report) -> tuple[str, ...]:
    fans = "-" if report.fan_in is None else f"{report.fan_in}/{report.fan_out}"
    return (cut_name(report.name), shape_text(report.shape), report.kind, fans, number_text(report.std),
            match_text(report), "-" if report.best is None else f"{report.best.ks:.3f}",
            str(len(report.flags)) if report.flags else "-")


def table_widths(reports: list) -> tuple[int, ...]:
    """Each column as wide as its widest cell."""
    table = [HEADER, *(cells(report) for report in reports)]
    return tuple(max(len(line[i]) for line in table) for i in range(len(HEADER)))


def row(values: tuple[str, ...], widths: tuple[int, ...]) -> str:
    # Text to the left, numbers to the right, as people read each.
    right = {3, 4, 6, 7}
    return "  ".join(f"{v:>{w}}" if i in right else f"{v:<{w}}" for i, (v, w) in enumerate(zip(values, widths))
                     ).rstrip()
