"""Images of the window and its views: PNG with the config in a text chunk, SVG of a view's plots
with the config in a <metadata> element. Written atomically, like every export."""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from html import escape  # not xml.sax.saxutils: it imports urllib.request, slow at start-up

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import QWidget

from initsim.engine import SimConfig
from initsim.engine.export import ExportError, atomic_write, config_json

from ..views.registry import plot_views

# The PNG text chunks (and the SVG metadata id) that carry what an image shows.
CONFIG_KEY = "initsim-config"
VIEW_KEY = "initsim-view"
IMAGE_SUFFIXES = (".png", ".svg")
# Larger images are refused: 10000 x 10000 ARGB is 400 MB already.
MAX_SIDE = 10000


def render_image(widget: QWidget, scale: float = 1.0) -> QImage:
    """``widget`` as it is laid out now, ``scale`` image pixels per screen pixel: 2 draws the same
    layout twice as sharp (text, lines and plots are drawn again, not stretched)."""
    width, height = round(widget.width() * scale), round(widget.height() * scale)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ExportError(f"cannot make a {width} x {height} image: each side must be 1..{MAX_SIDE} pixels")
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(scale)
    image.fill(widget.palette().color(QPalette.ColorRole.Window))
    widget.render(image)
    image.setDevicePixelRatio(1.0)  # the file's pixels are the pixels: no "logical size" in it
    return image


def png_bytes(image: QImage, config: SimConfig, view: str) -> bytes:
    """The PNG of ``image`` with the config (JSON, as `initsim.engine.export` writes it) and the
    view's name in text chunks, so the image says how to reproduce it."""
    image = QImage(image)
    image.setText(CONFIG_KEY, config_json(config))
    image.setText(VIEW_KEY, view)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise ExportError(f"cannot encode a {image.width()} x {image.height()} image as PNG")
    return bytes(data)


def svg_bytes(widget: QWidget, config: SimConfig) -> bytes:
    """The plots of view ``widget`` as SVG (vector paths, clipped to their axes), the config in a
    ``<metadata id="initsim-config">`` element; a view of several plot areas (Layer statistics:
    the std plot, the lower plots) as one SVG of them, each where the view has it. Raises
    ExportError if the view has no plots."""
    views = [view for view in plot_views(widget) if view.isVisible()]
    if not views:
        raise ExportError("SVG is for a view of plots: export this view as PNG")
    parts = []
    with _closed_paths_understood() as exporter:
        for view in views:
            # Plots bring their axes' transforms up to date when told a paint is coming; a view that
            # has not painted since its last change (a hidden window, a paint throttled) would be
            # drawn stale.
            view.scene().prepareForPaint()
            text = bytes(exporter(view.scene()).export(toBytes=True)).decode("utf-8")
            parts.append((view, text[re.search(r"<svg\b", text).start():]))
    metadata = f'\n<metadata id="{CONFIG_KEY}">{escape(config_json(config), quote=False)}</metadata>'
    if len(parts) == 1:
        text = parts[0][1]
        opening = re.search(r"<svg\b[^>]*>", text)
        return (text[:opening.end()] + metadata + text[opening.end():]).encode("utf-8")
    nested = []
    for number, (view, text) in enumerate(parts):
        # Each part's content in a group at its place (nested <svg> elements are not SVG Tiny, and
        # Qt's renderer skips them), its ids made its own: every part has a ViewBox_1_clip.
        corner = view.mapTo(widget, QPoint(0, 0))
        body = text[re.search(r"<svg\b[^>]*>", text).end():text.rindex("</svg>")]
        body = re.sub(r'(id="|url\(#|href="#)', rf"\g<1>part{number}-", body)
        nested.append(f'<g transform="translate({corner.x()} {corner.y()})">{body}</g>')
    width, height = widget.width(), widget.height()
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<svg width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" version="1.2" xmlns="http://www.w3.org/2000/svg" '
            f'xmlns:xlink="http://www.w3.org/1999/xlink">{metadata}\n' + "\n".join(nested) + "\n</svg>\n"
            ).encode("utf-8")


@contextlib.contextmanager
def _closed_paths_understood() -> Iterator[type]:
    """pyqtgraph's SVGExporter class (imported here, when first used), fixed for the while: pyqtgraph
    0.14's SVG exporter reads path data as "x,y" pairs only, and fails on the "Z" (close path) that
    Qt >= 6.10's SVG generator writes (pyqtgraph issue #3495): around its coordinate pass, the Z
    tokens are taken out and put back where they were."""
    module = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    correct = module.correctCoordinates

    def tolerant(node, defs, item, options) -> None:
        closes = {}
        for path in node.getElementsByTagName("path"):
            tokens = path.getAttribute("d").split()
            if "Z" in tokens:
                closes[path] = [i for i, token in enumerate(tokens) if token == "Z"]
                path.setAttribute("d", " ".join(token for token in tokens if token != "Z"))
        correct(node, defs, item, options)
        for path, positions in closes.items():
            tokens = path.getAttribute("d").split()
            for i in positions:
                tokens.insert(i, "Z")
            path.setAttribute("d", " ".join(tokens))

    module.correctCoordinates = tolerant
    try:
        yield module.SVGExporter
    finally:
        module.correctCoordinates = correct


def image_bytes(suffix: str, widget: QWidget, config: SimConfig, view: str, scale: float = 1.0) -> bytes:
    """``widget`` as the PNG or SVG that ``suffix`` names (see png_bytes, svg_bytes)."""
    if suffix.lower() == ".png":
        return png_bytes(render_image(widget, scale), config, view)
    if suffix.lower() == ".svg":
        return svg_bytes(widget, config)
    raise ExportError(f"cannot write an image as {suffix or 'a file without a suffix'}: "
                      f"use {' or '.join(IMAGE_SUFFIXES)}")


def write_image(path: str | Path, widget: QWidget, config: SimConfig, view: str,
                scale: float = 1.0) -> Path:
    """``widget`` as the PNG or SVG that ``path``'s suffix names, written atomically."""
    return atomic_write(path, image_bytes(Path(path).suffix, widget, config, view, scale))
