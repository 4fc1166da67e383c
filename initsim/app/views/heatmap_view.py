"""Depth heatmaps: every layer at once, layer across and value up, density as colour."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QVBoxLayout, QWidget

from initsim.engine import BackwardEvent

from ..model.histograms import LOG_DECADES, DepthImage
from ..model.runstate import RunState
from ..widgets import note_label
from .plotstyle import HEATMAP, LayerAxis, style_plot

LOG_DENSITY_TIP = (f"Colour by log10 of the density, {LOG_DECADES} decades below each layer's peak, "
                   "to see the tails")

VALUE_BINS = 128


class DepthMap:
    """One heatmap: an ImageItem created once, updated with setImage."""

    def __init__(self, plot: pg.PlotItem, quantity: str, title: str) -> None:
        self.plot = plot
        self.quantity = quantity
        style_plot(plot)
        plot.setTitle(title, size="9.5pt")
        plot.setLabel("left", "value")
        plot.setLabel("bottom", "layer")
        plot.setMouseEnabled(False, False)
        self.image = pg.ImageItem()
        plot.addItem(self.image)
        self._state: RunState | None = None  # the run drawn, and how many of its events
        self._read = 0
        self._depth = DepthImage(0, VALUE_BINS)
        self._range: QRectF | None = None  # the view's, as last set
        self._image_rect: QRectF | None = None  # the image's, as last set

    def show(self, state: RunState, log: bool) -> bool:
        """Draw ``state``; False when the image waits for the next paint. A new range makes the
        axes lay out their ticks and labels again, the costliest part of a paint: while the run
        streams in, that paint keeps the image drawn as it was (where it was: its layers and values
        stay in place) and the next one brings it up to date, so that no turn of the GUI thread
        does both. A finished run is drawn whole at once, with no worker competing."""
        if state is not self._state:
            self._state, self._read, self._depth = state, 0, DepthImage(state.layers, VALUE_BINS)
            if self.plot.getAxis("bottom").labelText != state.config.part:  # a new label: the axes' relayout
                self.plot.setLabel("bottom", state.config.part)
        backward = self.quantity == "grad"
        for event in state.arrived[self._read:]:
            if isinstance(event, BackwardEvent) == backward:
                self._depth.add(event.index, state.stats(self.quantity, event.index).histogram)
        self._read = len(state.arrived)
        # Layer l covers x in [l - 0.5, l + 0.5]; the value bins cover the grid.
        grid = self._depth.grid()
        rect = QRectF(0.5, float(grid[0]), state.layers, float(grid[-1] - grid[0]))
        if rect != self._range:
            self._range = rect
            self.plot.setRange(rect=rect, padding=0)
            if not state.complete:
                return False
        _, image = self._depth.image(log)
        self.image.setImage(image, autoLevels=False, levels=(-LOG_DECADES, 0) if log else (0, 1))
        if rect != self._image_rect:
            self._image_rect = rect
            self.image.setRect(rect)
        return True


class HeatmapView(QWidget):
    """Activations above, gradients below, one colour bar for both."""

    options_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.log_density = QCheckBox("Log density")
        self.log_density.setObjectName("log_density")
        self.log_density.setToolTip(LOG_DENSITY_TIP)
        self.log_density.toggled.connect(self._on_log)
        caption = note_label("Each column is one layer's histogram on a common value grid, coloured "
                             "relative to its own peak; blank: no finite value (or not computed yet).")
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(6, 4, 6, 0)
        toolbar.addWidget(self.log_density)
        toolbar.addSpacing(12)
        toolbar.addWidget(caption, 1)
        self.catching_up = False
        self.plots = pg.GraphicsLayoutWidget()
        self.maps = [DepthMap(self.plots.addPlot(row=row, col=0, axisItems={"bottom": LayerAxis("bottom")}),
                              quantity, title)
                     for row, (quantity, title) in enumerate((("post", "Activations"), ("grad", "Gradients (dL/dh)")))]
        self.color_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(HEATMAP),
                                         interactive=False, width=14)
        self.color_bar.setImageItem([m.image for m in self.maps])
        self.plots.addItem(self.color_bar, row=0, col=1, rowspan=2)
        self._on_log(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.plots, 1)

    def show_state(self, state: RunState) -> None:
        drawn = [depth_map.show(state, self.log_density.isChecked()) for depth_map in self.maps]
        self.catching_up = not all(drawn)  # the window paints again soon (see DepthMap.show)

    def _on_log(self, log: bool) -> None:
        self.color_bar.setLevels((-LOG_DECADES, 0) if log else (0, 1))
        self.color_bar.getAxis("right").setLabel("log10 density / peak" if log else "density / peak")
        self.options_changed.emit()
