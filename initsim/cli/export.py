"""`initsim export`: images of the window or a view, and tours as slides, rendered offscreen."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import memory
from .common import CONFIG_FIELDS, Progress, UsageError, announce, config_from_args, memory_limit
from .simulate import simulated

if TYPE_CHECKING:
    from ..app.io.offscreen import Report


# The window, or a view of the app's registry marked offscreen (imported here, it would pull in Qt at
# every start); tests/app/test_view_registry.py keeps the two equal.
IMAGE_VIEWS = ("window", "histograms", "heatmap", "stats", "theory", "spectra", "sweep", "training", "compare")
SIDE_RANGE = (100, 10000)


def _size(text: str) -> tuple[int, int]:
    """--size WIDTHxHEIGHT, each side in SIDE_RANGE."""
    match = re.fullmatch(r"\s*(\d+)\s*[x\u00d7X]\s*(\d+)\s*", text)
    if match is None:
        raise UsageError(f"--size takes WIDTHxHEIGHT in pixels, e.g. 1600x1000; got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    low, high = SIDE_RANGE
    if not (low <= width <= high and low <= height <= high):
        raise UsageError(f"--size: each side must be {low}..{high} pixels; got {width}x{height}")
    return width, height


def cmd_export(args: argparse.Namespace) -> int:
    """Everything is checked (the flags, the config, that the folder takes files) before anything
    is rendered or simulated."""
    from ..engine.export import DATA_FORMATS, check_writable, image_scale

    if args.image_scale is not None:
        image_scale(args.image_scale, "--image-scale")
    size = _size(args.size) if args.size else None  # checked before Qt is imported for it
    if args.tour is not None:
        return _export_tour(args, size)
    if args.out_dir is not None:
        raise UsageError("--out-dir is for the slides of a --tour; one file is written with --out")
    if args.out is None:
        raise UsageError("export needs --out FILE (.png, .svg, .csv, .json, .npz) or --tour NAME --out-dir DIR")
    if args.steps is not None and args.view != "training":
        raise UsageError("--steps is for --view training: the steps of the run it draws")
    out = Path(args.out)
    suffix = out.suffix.lower()
    config = config_from_args(args)
    if suffix in DATA_FORMATS:  # numbers only: no Qt
        from ..engine.export import export_data

        given = [flag for flag in ("view", "size", "image_scale") if getattr(args, flag) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is for images; {suffix} holds data")
        check_writable(out)
        for path in export_data(simulated(config, args), out):
            print(f"wrote {path}")
        return 0
    if suffix not in (".png", ".svg"):
        raise UsageError(f"cannot export as {suffix or 'a file without a suffix'}: use .png or .svg "
                         f"(images), or {', '.join(DATA_FORMATS)} (data)")
    view = args.view or "window"
    if suffix == ".svg" and (view == "window" or args.image_scale is not None):
        raise UsageError(f"SVG holds one view's plots, at no scale: pick --view {', '.join(IMAGE_VIEWS[1:-1])} "
                         f"or {IMAGE_VIEWS[-1]}")
    check_writable(out)
    limit = memory_limit(args)  # the hidden window runs the config under the same limit
    announce(memory.check(memory.simulation(config), limit, "layers, width or batch"), limit)
    from PySide6.QtCore import QSize

    from ..app.io.offscreen import DEFAULT_SIZE, ViewWork, export_view, headless

    with headless():  # a view whose work waits for its button (Train, Compare, a sweep's Run) runs it first
        path = export_view(config, view, out, QSize(*size) if size else DEFAULT_SIZE,
                           args.image_scale or 1.0, memory_limit=limit, work=ViewWork(args.steps, _progress_lines()))
    print(f"wrote {path}: the {view}")
    return 0


def _progress_lines() -> Report:
    """A view's progress on stderr, as the other commands report theirs (common.Progress), one
    count per thing counted."""
    counts: dict[str, Progress] = {}

    def report(what: str, done: int, total: int) -> None:
        if what not in counts:
            counts[what] = Progress(what, total, shown=True)
        counts[what].update(done)
    return report


def _export_tour(args: argparse.Namespace, size: tuple[int, int] | None) -> int:
    from ..engine.export import check_writable
    from ..engine.tours import get_tour, read_tour

    others = [flag for flag in ("out", "view", "steps") if getattr(args, flag) is not None]
    if others:
        raise UsageError(f"--{others[0]} does not go with --tour: the slides are the window, one per step")
    flags = [name for name in CONFIG_FIELDS if name != "memory_limit_gib" and getattr(args, name) is not None]
    if flags:
        raise UsageError(f"--{flags[0].replace('_', '-')} does not go with --tour: each step has its config")
    if args.out_dir is None:
        raise UsageError("--tour needs --out-dir DIR for its slides")
    tour = read_tour(args.tour) if args.tour.endswith(".toml") else get_tour(args.tour)
    check_writable(args.out_dir, folder=True)
    limit = memory_limit(args)
    for step in tour.steps:  # each step runs in the hidden window under this limit
        memory.check(memory.simulation(step.config), limit, f"the layers, width or batch of step {step.title!r}")
    from PySide6.QtCore import QSize

    from ..app.io.offscreen import SLIDE_SIZE, export_tour, headless

    with headless():
        paths = export_tour(tour, args.out_dir, QSize(*size) if size else SLIDE_SIZE, args.image_scale or 1.0,
                            memory_limit=limit)
    print(f"wrote {len(paths)} slides of {tour.title!r} to {args.out_dir}:")
    for path in paths:
        print(f"  {path.name}")
    return 0

