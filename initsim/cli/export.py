"""`initsim export`: images of the window or a view, tours as slides, and the presets' gallery,
rendered offscreen."""

from __future__ import annotations

import argparse
import html
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import memory
from .common import CONFIG_FIELDS, Progress, UsageError, announce, config_from_args, memory_limit
from .simulate import simulated

if TYPE_CHECKING:
    from ..app.io.offscreen import GalleryEntry, Report
    from ..engine.presets import Preset


# The window, or a view of the app's registry marked offscreen (imported here, it would pull in Qt at
# every start); tests/app/test_view_registry.py keeps the two equal.
IMAGE_VIEWS = ("window", "histograms", "heatmap", "stats", "theory", "spectra", "sweep", "training", "compare")
SIDE_RANGE = (100, 10000)
GALLERY_PAGE = "index.html"


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
    if args.gallery is not None:
        return _export_gallery(args, size)
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


def _export_gallery(args: argparse.Namespace, size: tuple[int, int] | None) -> int:
    """Every preset's main views as PNGs and a page of them, all written or none."""
    from ..engine.export import check_writable
    from ..engine.presets import presets

    others = [flag for flag in ("out", "out_dir", "view", "tour", "steps") if getattr(args, flag) is not None]
    if others:
        raise UsageError(f"--{others[0].replace('_', '-')} does not go with --gallery: it draws every "
                         "preset's main views into its folder")
    flags = [name for name in CONFIG_FIELDS if name != "memory_limit_gib" and getattr(args, name) is not None]
    if flags:
        raise UsageError(f"--{flags[0].replace('_', '-')} does not go with --gallery: each preset has its config")
    chosen = list(presets().values())
    check_writable(args.gallery, folder=True)
    limit = memory_limit(args)
    for preset in chosen:  # each runs in the hidden window under this limit
        memory.check(memory.simulation(preset.config), limit, f"the layers, width or batch of preset {preset.name!r}")
    paths = export_gallery(chosen, args.gallery, size, args.image_scale or 1.0, limit)
    print(f"wrote {len(paths) - 1} images of {len(chosen)} presets and {GALLERY_PAGE} to {args.gallery}")
    return 0


def export_gallery(chosen: Sequence[Preset], out_dir: str | Path, size: tuple[int, int] | None = None,
                   scale: float = 1.0, limit: int | None = None) -> list[Path]:
    """The main views of the ``chosen`` presets rendered (a line on stderr as each image is made)
    and written into ``out_dir`` with their page (gallery_page), all or none (a caller checks the
    folder with check_writable first); returns the files, the page last."""
    from PySide6.QtCore import QSize

    from ..app.io.offscreen import GALLERY_SIZE, GALLERY_VIEWS, headless, render_gallery
    from ..engine.export import write_into_folder

    total = len(chosen) * len(GALLERY_VIEWS)
    made = 0

    def report(preset: Preset, view: str) -> None:
        nonlocal made
        made += 1
        print(f"initsim: gallery image {made} of {total}: {preset.name} {view}", file=sys.stderr, flush=True)

    with headless():
        entries = render_gallery(chosen, GALLERY_VIEWS, QSize(*size) if size else GALLERY_SIZE, scale, limit, report)
    files: dict[str, bytes] = {image_name(entry.preset, view): image
                               for entry in entries for view, image in entry.images.items()}
    files[GALLERY_PAGE] = gallery_page(entries).encode("utf-8")
    return write_into_folder(out_dir, files)


def image_name(preset: Preset, view: str) -> str:
    return f"{preset.name}-{view}.png"


GALLERY_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1800px; padding: 0 1em; color: #222; }
section { margin: 0 0 3em; }
h2 { margin-bottom: 0.2em; }
.views { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
figure { margin: 0; }
img { width: 100%; border: 1px solid #ccc; }
figcaption { font-size: 0.9em; color: #555; }
.diagnosis { list-style: none; padding: 0; }
.warning { color: #a4470c; font-weight: 600; }
.information { color: #555; }
.clear { color: #2b7a2b; }
"""


WARNING_SIGN, INFORMATION_SIGN, CLEAR_SIGN = "\u26a0", "\u2139", "\u2713"  # as the window's warning line


def gallery_page(entries: Sequence[GalleryEntry]) -> str:
    """The gallery as one HTML page: per preset its title, explanation and network, the engine's
    diagnosis of the run drawn (warnings first, then information; the window's all-clear when
    there is no warning), and its views side by side, each a link to its full-size PNG."""
    sections = "\n".join(_gallery_section(entry) for entry in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>initsim: the presets at initialization</title>
<style>{GALLERY_STYLE}</style>
</head>
<body>
<h1>initsim: the presets at initialization</h1>
<p>Each preset's network as <code>initsim export --gallery</code> drew it; under its title, the engine's
diagnosis of the same run (what the window's warning line says).</p>
{sections}
</body>
</html>
"""


def _gallery_section(entry: GalleryEntry) -> str:
    from ..engine.diagnosis import ALL_CLEAR

    preset, config = entry.preset, entry.preset.config
    findings = []
    if not any(finding.is_warning for finding in entry.findings):
        findings.append(f'<li class="clear">{CLEAR_SIGN} No warnings over all {config.layers} layers: '
                        f"{html.escape(ALL_CLEAR)}.</li>")
    for finding in entry.findings:
        kind, sign = ("warning", WARNING_SIGN) if finding.is_warning else ("information", INFORMATION_SIGN)
        findings.append(f'<li class="{kind}" data-kind="{finding.kind}" data-layer="{finding.layer}">{sign} '
                        f'<span class="message">{html.escape(finding.message)}</span></li>')
    figures = []
    for view in entry.images:
        name = image_name(preset, view)
        figures.append(f'<figure><a href="{name}"><img src="{name}" alt="{html.escape(preset.title)}: {view}" '
                       f'loading="lazy"></a><figcaption>{view}</figcaption></figure>')
    network = (f"{config.layers} layers of {config.width} {config.activation}, init {config.init}, "
               f"norm {config.norm}, batch {config.batch}, seed {config.seed}")
    newline = "\n"
    return f"""<section id="{preset.name}">
<h2>{html.escape(preset.title)}</h2>
<p>{html.escape(preset.explanation)}</p>
<p>Preset <code>{preset.name}</code> (<code>initsim simulate --preset {preset.name}</code>): {html.escape(network)}</p>
<ul class="diagnosis">
{newline.join(findings)}
</ul>
<div class="views">
{newline.join(figures)}
</div>
</section>"""
