"""The window's views, in one registry: each view's name (what tours and `initsim export --view`
call it), its tab, the class that makes it, and where it may appear. The window's tabs and their
Ctrl+1.. shortcuts, the names a tour step may show (checked against `engine.tours.VIEWS`) and the
views `initsim export` renders (checked against the CLI's choices) all come from here.

Every view but the first is built when first shown or asked for (`MainWindow.view`); until then a
`PendingView` holds its tab.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from ..window import MainWindow


@dataclass(frozen=True)
class View:
    name: str  # what tours, the CLI and the window's attribute of the same name call it
    title: str  # its tab's
    tip: str  # its tab's tooltip
    module: str  # the module (in initsim.app.views) of its class, imported when first built
    cls: str
    needs_controls: bool = False  # built with the window's ControlsPanel
    offscreen: bool = False  # `initsim export --view` renders it (after its own work: offscreen.start_view_work)
    in_tours: bool = False  # a tour step may show it

    def build(self, window: MainWindow) -> QWidget:
        """A new view of this kind for ``window``."""
        cls = getattr(importlib.import_module(f"{__package__}.{self.module}"), self.cls)
        return cls(window.controls) if self.needs_controls else cls()


VIEWS = (
    View("histograms", "Histograms", "Per-layer histograms, filled in as the layers arrive",
         "histogram_view", "HistogramView", offscreen=True, in_tours=True),
    View("heatmap", "Depth heatmap", "Every layer at once: layer across, value up",
         "heatmap_view", "HeatmapView", offscreen=True, in_tours=True),
    View("stats", "Layer statistics", "Std, theory, dead and saturated units by layer",
         "stats_view", "StatsView", offscreen=True, in_tours=True),
    View("theory", "Theory", "The order/chaos phase diagram with this network on it; click to move it",
         "theory_view", "TheoryView", offscreen=True, in_tours=True),
    View("spectra", "Spectra",
         "Jacobian singular values, Gaussian vs orthogonal; weight spectra against Marchenko-Pastur",
         "spectra_view", "SpectraView", offscreen=True, in_tours=True),
    View("sweep", "Sweep", "The measured depth scale over a grid of \u03c3w\u00b2 \u00d7 \u03c3b\u00b2, beside the theory's",
         "sweep_view", "SweepView", offscreen=True),
    View("training", "Training", "Train this network on a task: loss, accuracy, per-layer ratios, decision regions",
         "training_view", "TrainingView", needs_controls=True, offscreen=True, in_tours=True),
    View("compare", "Compare", "Up to 4 schemes side by side over seeds: std by layer and loss",
         "compare_view", "CompareView", needs_controls=True, offscreen=True, in_tours=True),
    View("inspect", "Inspect", "A checkpoint's tensors: which initialization each follows, what is wrong, "
         "and what its dense layers do to a signal (File > Open checkpoint, or drop a file on the window)",
         "inspect_view", "InspectView"),
    View("reference", "Reference", "Which initialization for which activation, formulas, framework names",
         "reference_view", "ReferenceView"),
)
BY_NAME = {view.name: view for view in VIEWS}


class PendingView(QWidget):
    """A tab's place until its view is built (`MainWindow.view`): ``build()`` makes the view
    ``name``."""

    def __init__(self, name: str, build: Callable[[], QWidget]) -> None:
        super().__init__()
        self.name = name
        self.build = build
        self.setObjectName(name)


def view_name(window: MainWindow, widget: QWidget) -> str:
    """The name of ``widget``, a view of ``window`` or the place of one not built yet."""
    if isinstance(widget, PendingView):
        return widget.name
    return next(name for name, view in window.built_views().items() if view is widget)


def plot_views(widget: QWidget) -> list[pg.GraphicsView]:
    """The pyqtgraph views inside ``widget`` (itself included), outermost first."""
    found = [widget] if isinstance(widget, pg.GraphicsView) else []
    return found + widget.findChildren(pg.GraphicsView)
