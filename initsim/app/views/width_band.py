"""The finite-width band of the Layer statistics view: the network simulated with several seeds in
the background, the middle of their spread shaded around the infinite-width theory line."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QSpinBox, QWidget

from initsim.engine import SimConfig
from initsim.engine.sweep import BAND_QUANTILES, FiniteWidthBand, SweepResult, band_of, local_pool, seed_configs, sweep

from ..preferences import memory_limit
from ..runtime.controller import StreamRunner
from ..runtime.pools import LazyPool, core_count
from ..widgets import named, note_label
from .plotstyle import COLORS, positive

DEFAULT_SEEDS = 8
# (band field, colour of the curve it surrounds)
BANDS = (("pre_std", "pre"), ("grad_std", "grad"))


def band_job(config: SimConfig, seeds: int, pool: LazyPool):
    executor, limit = pool.get(), memory_limit()
    return lambda should_stop: sweep(seed_configs(config, seeds), executor, should_stop=should_stop,
                                     memory_limit=limit)


class WidthBand(QObject):
    """Shades, on ``plot`` (log y), the 16-84 % range over seeds of the pre-activation and gradient
    std by layer, with the seeds' median dotted. Off by default: each seed is a full simulation."""

    def __init__(self, plot: pg.PlotItem, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shown: SimConfig | None = None  # the network the view shows
        self.config: SimConfig | None = None  # the network of the results held
        self.seeds = DEFAULT_SEEDS
        self.results: list[SweepResult] = []
        self.band: FiniteWidthBand | None = None
        # One result per seed's simulation: each is sent as it comes, as the sweep's.
        self.runner = StreamRunner("finite-width band", parent=self, batch_seconds=0,
                                   pool=LazyPool(lambda: local_pool(core_count())))
        self.runner.events.connect(self._on_events)
        self.runner.failed.connect(self._on_failed)

        self.enabled = named(QCheckBox("Finite-width band"), "width_band", "Simulate this network with "
                             "several seeds in the background and shade the middle 68 % of their std by "
                             "layer around the theory line: how far a network of this width strays from "
                             "the infinite-width limit")
        self.enabled.toggled.connect(self._update)
        self.seed_count = named(QSpinBox(), "width_band_seeds", "How many seeds the band is made of (the "
                                "network's own seed and the ones after it); each is a full simulation")
        self.seed_count.setRange(3, 64)
        self.seed_count.setValue(DEFAULT_SEEDS)
        self.seed_count.setSuffix(" seeds")
        self.seed_count.setKeyboardTracking(False)
        self.seed_count.valueChanged.connect(self._update)
        self.note = note_label(name="width_band_note", tooltip="What the band shows, and where the theory leaves it")
        # Two lines' room from the start: a note that grows would relayout the plots below.
        self.note.setMinimumHeight(2 * self.note.fontMetrics().lineSpacing())
        self.toolbar = QWidget()
        row = QHBoxLayout(self.toolbar)
        row.setContentsMargins(6, 4, 6, 0)
        row.addWidget(self.enabled)
        row.addWidget(self.seed_count)
        row.addSpacing(12)
        row.addWidget(self.note, 1)

        self.items = {}
        for name, color in BANDS:
            # Faint edges: a curve without a pen has no path, and so nothing to fill between.
            edge, fill = pg.mkColor(COLORS[color]), pg.mkColor(COLORS[color])
            edge.setAlpha(90)
            fill.setAlpha(50)
            low, high = pg.PlotDataItem(pen=pg.mkPen(edge, width=1)), pg.PlotDataItem(pen=pg.mkPen(edge, width=1))
            shade = pg.FillBetweenItem(low, high, brush=fill)
            median = pg.PlotDataItem(pen=pg.mkPen(COLORS[color], width=1.5, style=Qt.PenStyle.DotLine))
            for item in (low, high, shade, median):
                item.setZValue(-1)
                plot.addItem(item)
            self.items[name] = (low, high, median)
        self._show_band()

    # --- the view's calls ---------------------------------------------------------------------

    def show_state(self, config: SimConfig) -> None:
        """The view shows ``config``."""
        self.shown = config
        self._update()

    @property
    def complete(self) -> bool:
        return self.band is not None and self.band.seeds == self.seeds

    def shutdown(self) -> None:
        self.runner.shutdown()

    # --- internals ------------------------------------------------------------------------

    def _update(self) -> None:
        """Band off: nothing runs or shows. On: the band of the network shown, computed unless held."""
        if not self.enabled.isChecked():
            self.runner.cancel()
            self.config, self.results, self.band = None, [], None
            self._show_band()
        elif self.shown is not None and (self.shown != self.config or self.seed_count.value() != self.seeds):
            self.config, self.seeds = self.shown, self.seed_count.value()
            self.results, self.band = [], None
            self._show_band()
            self.runner.start(band_job(self.config, self.seeds, self.runner.pool))

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        self.results.extend(events)
        self.band = band_of(self.results)
        self._show_band()

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        self.note.setText(f"The band failed: {message}")

    def _show_band(self) -> None:
        band = self.band
        for name, (low, high, median) in self.items.items():
            if band is None:
                for item in (low, high, median):
                    item.setData([], [])
                continue
            quantity = getattr(band, name)
            layers = np.arange(1, len(quantity.median) + 1)
            bottom, top = positive(quantity.low), positive(quantity.high)
            gaps = np.isnan(bottom) | np.isnan(top)  # both edges must break together for the fill
            bottom[gaps] = top[gaps] = np.nan
            low.setData(layers, bottom, connect="finite")
            high.setData(layers, top, connect="finite")
            median.setData(layers, positive(quantity.median), connect="finite")
        self.note.setText(self._describe())

    def _describe(self) -> str:
        if not self.enabled.isChecked():
            return "Off: the theory line is the infinite-width limit."
        band = self.band
        low, high = BAND_QUANTILES
        if band is None:
            return "Simulating the seeds\u2026"
        counted = f"{band.seeds} of {self.seeds} seeds" if band.seeds < self.seeds else f"{band.seeds} seeds"
        text = f"Shaded: {low:g}\u2013{high:g} % of {counted} at width {band.config.width}, median dotted."
        if band.seeds < self.seeds:  # a band of a few seeds is too narrow to judge the theory by
            return text
        outside = []
        for name, label in (("pre_std", "pre-activations"), ("grad_std", "gradients")):
            layers = np.flatnonzero(getattr(band, name).theory_outside) + 1
            if layers.size:
                outside.append(f"{label} at {layers.size} of {band.config.layers} layers (from layer {layers[0]})")
        return text + (" Theory outside the band: " + ", ".join(outside) + "." if outside
                       else " The theory stays inside the band.")
