"""Small multiples: one histogram panel per shown layer, filling in as the layers arrive."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QButtonGroup, QCheckBox, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from initsim.engine import Stats
from initsim.engine.diagnosis import percent

from ..model.histograms import MAX_PANELS, common_grid, panel_curve, panel_height, panel_layers, panel_stride
from ..model.runstate import QUANTITIES, RunState
from .plotstyle import COLORS, style_plot, tick_font, title_never_sizes

SHARED_BINS = 64
# Panels redrawn per paint: a change of depth changes every panel, and drawing them all in one
# paint stalls the GUI, the more while the worker holds the GIL.
PANELS_PER_PAINT = 3


# A panel reads best about this much wider than tall (a histogram's bell, its axis labels).
PANEL_ASPECT = 1.6


def panel_columns(count: int, width: float, height: float) -> int:
    """The columns of a grid of ``count`` panels in ``width`` x ``height`` whose panels are the
    largest (each scaled to PANEL_ASPECT): wide and short, as presenter mode with a tour leaves
    the view, takes two rows of five where a near-square grid would be three rows of four."""
    def scale(columns: int) -> float:
        rows = math.ceil(count / columns)
        return min(width / columns / PANEL_ASPECT, height / rows)
    return max(range(1, count + 1), key=scale) if count else 1


class HistogramPanel:
    """The plot of one layer: a filled step curve and a title with the layer's std. Panels are
    created once and reused for other layers and runs: a PlotItem is slow to make."""

    def __init__(self) -> None:
        self.plot = pg.PlotItem(enableMenu=False)  # its menu alone is a third of the cost
        style_plot(self.plot)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideAxis("left")
        title_never_sizes(self.plot)
        # A panel hidden until its layer arrives (after a change of depth) keeps its cell in the grid.
        policy = self.plot.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.plot.setSizePolicy(policy)
        self.axis = self.plot.getAxis("bottom")
        # One height for the x axis with and without its tick labels (`label_ticks`), so that every
        # panel keeps the same data area whichever row it is in: pyqtgraph's own height formula
        # with the tick font's line height as the text's.
        style = self.axis.style
        self.axis.setHeight(math.ceil(QFontMetricsF(tick_font()).height() + style["tickTextOffset"][1]
                                      + max(0, style["tickLength"])))
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self.plot.addItem(self.curve)
        # Marks a clipped tallest bin with its height.
        self.clip_label = pg.TextItem(color="#2a2a2a", anchor=(0, 0))
        self.clip_label.setFont(tick_font())
        self.plot.addItem(self.clip_label, ignoreBounds=True)
        self.layer = 0
        self.stats: Stats | None = None
        self._shown: tuple | None = None  # what is drawn: (layer, stats, quantity, grid)

    def wait_for(self, layer: int, part: str) -> None:
        """Hidden until ``layer`` arrives (`show`), its cell kept; titled already, so that the grid's
        rows keep one height as the panels appear (a title's text sets its row's least height)."""
        self.plot.hide()
        self._shown = None
        self._title(f"{part} {layer}", COLORS["muted"])

    def label_ticks(self, labelled: bool) -> None:
        """Whether the x axis writes its tick values; without them it draws its ticks only."""
        if self.axis.style["showValues"] != labelled:
            self.axis.setStyle(showValues=labelled)

    def is_showing(self, layer: int, stats: Stats | None, quantity: str, grid: np.ndarray | None) -> bool:
        """Whether the panel draws ``stats`` of ``layer`` already (a layer that did not change)."""
        shown = self._shown
        return (shown is not None and shown[0] == layer and shown[1] is stats and shown[2] == quantity
                and (shown[3] is grid or (grid is not None and shown[3] is not None
                                          and np.array_equal(shown[3], grid))))

    def show(self, layer: int, stats: Stats | None, quantity: str, grid: np.ndarray | None,
             size: int, part: str = "layer") -> None:
        """Draw ``stats`` (None: not arrived) of ``layer``, an array of ``size`` values; ``part``: what
        the title calls it, a layer or a residual block."""
        self._shown = (layer, stats, quantity, grid)
        self.layer, self.stats = layer, stats
        color = COLORS[quantity]
        self.clip_label.setVisible(False)
        if stats is None:
            self.curve.setData([], [])
            if grid is not None:  # on the shared range already: the labels under it are for it too
                self.plot.setXRange(grid[0], grid[-1], padding=0.03)
            self._title(f"{part} {layer}", COLORS["muted"])
            return
        self.plot.show()
        x, y = panel_curve(stats.histogram, grid)
        self.curve.setData(x, y, stepMode="center", fillLevel=0,
                           pen=pg.mkPen(color, width=1), brush=pg.mkBrush(color + "90"))
        height, clipped = panel_height(y)
        self.plot.setXRange(x[0], x[-1], padding=0.03)
        self.plot.setYRange(0, height, padding=0.05)
        if clipped:
            tallest = int(np.argmax(y))
            self.clip_label.setText(f"\u2191 {y[tallest]:.0%}")
            self.clip_label.setPos(x[tallest + 1], height * 1.04)
            self.clip_label.setVisible(True)
        if stats.nonfinite:
            text = ("all non-finite" if not stats.histogram.total
                    else f"{percent(stats.nonfinite / size)} non-finite")
            self._title(f"{part} {layer} \u00b7 {text}", COLORS["dead"])
        else:
            self._title(f"{part} {layer} \u00b7 std {stats.std:.3g}", "#2a2a2a")

    def _title(self, text: str, color: str) -> None:
        self.plot.setTitle(text, size="8.5pt", color=color)


class HistogramView(QWidget):
    """Per-layer histograms of the quantity picked in the toolbar, on shared or own x ranges."""

    options_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.quantity_buttons = QButtonGroup(self)
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(6, 4, 6, 0)
        tips = {"pre": "the activation's input, x W + b (normalized, with a norm)",
                "post": "the layer's output after the activation",
                "grad": "the gradient of the loss with respect to the layer's pre-activation"}
        for i, (key, label) in enumerate(QUANTITIES):
            button = QToolButton()
            button.setText(label)
            button.setCheckable(True)
            button.setObjectName(f"show_{key}")
            button.setToolTip(f"Show {label.lower()}: {tips[key]} (Alt+{i + 1})")
            self.quantity_buttons.addButton(button, i)
            toolbar.addWidget(button)
        self.quantity_buttons.button(1).setChecked(True)
        self.quantity_buttons.idClicked.connect(self.options_changed)
        self.shared_x = QCheckBox("Shared x range")
        self.shared_x.setObjectName("shared_x")
        self.shared_x.setToolTip("Draw every panel on the same x range and bins, so widths compare "
                                 "across layers; off, each panel spans its own layer's values")
        # On by default: on its own x range a vanished layer looks as healthy as any other (a
        # perfect bell curve at 1e-40); on a shared one it is a spike at 0.
        self.shared_x.setChecked(True)
        self.shared_x.toggled.connect(self._label_ticks)
        self.shared_x.toggled.connect(self.options_changed)
        toolbar.addSpacing(12)
        toolbar.addWidget(self.shared_x)
        toolbar.addStretch(1)
        self.caption = QLabel()
        self.caption.setProperty("role", "note")
        toolbar.addWidget(self.caption)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.ci.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.plots, 1)
        self._pool: list[HistogramPanel] = []
        self.panels: list[HistogramPanel] = []  # the pool's first ones, in the layout
        self._shown_layers: list[int] = []
        self._network = (0, "layer")  # the depth and part the panels are laid out for
        self._columns = 0
        # Panels that still show another layer or run: drawn at the next paints.
        self.catching_up = False
        # Spare panels are made one per event-loop turn once a run is painted whole, so that a later,
        # deeper net finds them made; never during a run, whose paints it would stall.
        self._spare_timer = QTimer(self)
        self._spare_timer.setSingleShot(True)
        self._spare_timer.timeout.connect(self._make_spare)

    @property
    def quantity(self) -> str:
        return QUANTITIES[self.quantity_buttons.checkedId()][0]

    def set_quantity(self, key: str) -> None:
        index = [k for k, _ in QUANTITIES].index(key)
        self.quantity_buttons.button(index).setChecked(True)
        self.options_changed.emit()

    def grid(self, state: RunState) -> np.ndarray | None:
        """The shared bins of the panels, or None when each panel keeps its own."""
        if not self.shared_x.isChecked():
            return None
        shown = (state.stats(self.quantity, layer) for layer in self._shown_layers)
        return common_grid((s.histogram for s in shown if s is not None), SHARED_BINS)

    def show_state(self, state: RunState) -> None:
        if (state.layers, state.config.part) != self._network:
            self._lay_out(state.layers, state.config.part)
        grid = self.grid(state)
        wanted = [(panel, layer, state.stats(self.quantity, layer))
                  for panel, layer in zip(self.panels, self._shown_layers)]
        stale = [(panel, layer, stats) for panel, layer, stats in wanted
                 if not panel.is_showing(layer, stats, self.quantity, grid)]
        # While a run streams in, a few panels a paint; a finished run (or a change of options
        # after it) is drawn whole at once, with no worker competing for the GIL.
        most = PANELS_PER_PAINT if not state.complete else len(stale)
        for panel, layer, stats in stale[:most]:
            # A layer's values: a checkpoint's layers differ in width (config.fans).
            size = state.config.batch * state.config.fans(layer)[1]
            panel.show(layer, stats, self.quantity, grid, size, state.config.part)
        self.catching_up = len(stale) > most
        if state.complete and not self.catching_up:
            self._spare_timer.start()
        else:
            self._spare_timer.stop()

    def shutdown(self) -> None:
        self._spare_timer.stop()

    def _make_spare(self) -> None:
        if len(self._pool) < MAX_PANELS:
            self._pool.append(HistogramPanel())
            self._spare_timer.start()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.panels:
            self._place_panels(len(self.panels))

    def _place_panels(self, count: int) -> None:
        """The first ``count`` panels of the pool in the grid whose panels are the largest for
        the view's shape (`panel_columns`); laid out again only when that grid changes, in Qt's
        grid layout itself: pyqtgraph's addItem lays the whole grid out again for every panel it
        adds, and its clear takes every panel out of the scene (a change of depth stalled the GUI
        100 ms). Panels not shown are hidden, out of the grid."""
        columns = panel_columns(count, self.plots.width(), self.plots.height())
        if (count, columns) == (len(self.panels), self._columns):
            return
        grid = self.plots.ci.layout
        for index in reversed(range(grid.count())):
            grid.removeAt(index)
        for panel in self.panels[count:]:
            panel.plot.hide()
        for i, panel in enumerate(self._pool[:count]):
            grid.addItem(panel.plot, i // columns, i % columns)
            panel.plot.show()
        self.panels = self._pool[:count]
        self._columns = columns
        self._label_ticks()
        grid.activate()

    def _label_ticks(self) -> None:
        """On a shared x range, only the lowest panel of each column writes its tick values, as
        small multiples do: the others' would repeat them, and each axis's text is the largest part
        of a panel's paint (a change of depth repaints them all in one turn of the GUI thread)."""
        shared, count, columns = self.shared_x.isChecked(), len(self.panels), self._columns
        for index, panel in enumerate(self.panels):
            panel.label_ticks(not shared or index + columns >= count)

    def _lay_out(self, layers: int, part: str) -> None:
        """The panels of a net of ``layers`` layers (or residual blocks: ``part``), from the pool."""
        stride = panel_stride(layers)
        self._shown_layers = panel_layers(layers, stride)
        count = len(self._shown_layers)
        while len(self._pool) < count:
            self._pool.append(HistogramPanel())
        self._place_panels(count)
        # Each panel now shows another layer: hidden until that layer arrives, so that the grid fills
        # in a few panels a paint, where painting every panel at its new place at once (axes, text)
        # held the GUI thread 60 ms.
        for panel, layer in zip(self.panels, self._shown_layers):
            panel.wait_for(layer, part)
        self._network = (layers, part)
        self.caption.setText(f"all {layers} {part}s" if stride == 1 else
                             f"{count} of {layers} {part}s: the first, every {stride}"
                             f"{'nd' if stride == 2 else 'th'}, the last")
