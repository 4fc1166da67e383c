"""The Training tab: train the controls' network on a built-in task and watch it learn, or not.

Loss (log scale) and accuracy by step, of each mini-batch and, every few steps, of the whole
training set; per layer, the grad:data and update:data ratios by step, one curve per layer on a
colour ramp by depth (Karpathy's makemore part 3, with its -3 guide for update:data); for a 2-D task
the decision regions with the data over them; and a status line saying, in plain words, whether the
run is healthy, not learning, flat, diverged or too early to tell (the engine's verdict).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QWidget

from initsim.engine.errors import ConfigError
from initsim.engine.train import (Diverged, Setup, TrainConfig, TrainEvent, VerdictKind, chance_of, run,
                                  verdict_of)

from ..controls import ControlsPanel
from ..widgets import number
from ..model.histograms import panel_layers, panel_stride
from ..preferences import memory_limit
from .job_view import JobView
from .plot_notes import PlotNote
from .plotstyle import COLORS, SERIES_COLORS, add_legend_row, finite, fit_log_range, make_plot, positive
from .training_settings import TrainingSettings

# The decision regions are computed on this many points a side of the data's square.
REGION_GRID = 64
# A run probes the whole training set (and draws the regions) about this many times, at most every
# MIN_PROBE_EVERY steps: a probe costs about as much as seven steps of a 128-sample batch.
PROBES_PER_RUN = 50
MIN_PROBE_EVERY = 10
# Per-layer curves: the depth ramp (the colormap's brightest end is too pale on white).
DEPTH_MAP = "viridis"
DEPTH_SPAN = 0.85
# A class's region: its colour (SERIES_COLORS, the points' own) this far towards white.
REGION_LIGHTNESS = 0.75
REGRESSION_MAP = "CET-D1"
REGRESSION_LEVELS = (-2.5, 2.5)  # standardized targets
UPDATE_GUIDE = -3.0  # log10 update:data that makemore calls about right
# The status line's look for each verdict: green only when the loss has clearly fallen, orange when it
# does not learn, red when it diverged, neutral until there is evidence either way.
VERDICT_LEVELS: dict[VerdictKind, str] = {"healthy": "ok", "not learning": "warn", "flat": "warn",
                                          "diverged": "error", "too early": "info"}


def probe_every(steps: int) -> int:
    return max(MIN_PROBE_EVERY, math.ceil(steps / PROBES_PER_RUN))


def drawn_matrices(layers: int) -> list[int]:
    """The 1-based weight matrices with a curve: up to about 16 hidden layers, and the output
    layer (``layers`` + 1)."""
    return [*panel_layers(layers, panel_stride(layers)), layers + 1]


def depth_colors(count: int) -> list[QColor]:
    """``count`` colours from the shallowest layer to the deepest."""
    positions = np.linspace(0, DEPTH_SPAN, count) if count > 1 else np.zeros(1)
    return pg.colormap.get(DEPTH_MAP).mapToQColor(positions)


def ratio_note(drawn: np.ndarray, matrices: list[int]) -> tuple[str, str]:
    """(text, place) of a ratio plot's note, from ``drawn`` (steps so far x ``matrices``, NaN
    where a value cannot be drawn): why it draws nothing ("center"), or which matrices never had
    a value ("aside"); ("", "center") when every curve has one."""
    if not len(drawn):
        return "", "center"
    empty = np.all(np.isnan(drawn), axis=0)
    if empty.all():
        return ("Nothing to draw: std(W) is 0 (all weights equal, as after a zeros init) or no gradient "
                "reaches the weights.", "center")
    if not empty.any():
        return "", "center"
    names = ", ".join(str(m) for m in np.asarray(matrices)[empty])
    return f"No value yet for layer {names}: its std(W) or its gradient is 0.", "aside"


def alpha_text(alpha: tuple[float, ...] | None) -> str:
    """What ReZero's learned branch scales are (none: ""): each block's alpha started at 0."""
    if alpha is None:
        return ""
    values = np.abs(np.asarray(alpha))
    return (f" Learned branch scales alpha (from 0): mean |alpha| {number(float(values.mean()))}, largest "
            f"{number(float(values.max()))} (block {int(values.argmax()) + 1}).")


class TrainingRecord:
    """The events of one training run, folded into arrays as they arrive. No Qt here."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.chance = chance_of(setup.data)
        steps, layers = setup.training.steps, setup.net.config.layers
        self.matrices = drawn_matrices(layers)
        self.done = 0  # steps received
        self.loss = np.full(steps, np.nan)
        self.accuracy = np.full(steps, np.nan)
        self.grad_data = np.full((steps, len(self.matrices)), np.nan)
        self.update_data = np.full((steps, len(self.matrices)), np.nan)
        self.probe_steps: list[int] = []
        self.probe_loss: list[float] = []
        self.probe_accuracy: list[float] = []
        self.regions: np.ndarray | None = None
        self.regions_step = 0
        self.last: TrainEvent | None = None

    def add(self, event: TrainEvent) -> None:
        self.last = event
        if isinstance(event, Diverged):
            return
        row, columns = event.step - 1, [m - 1 for m in self.matrices]
        self.done = event.step
        self.loss[row] = event.loss
        self.accuracy[row] = np.nan if event.accuracy is None else event.accuracy
        self.grad_data[row] = np.take(event.grad_data, columns)
        self.update_data[row] = np.take(event.update_data, columns)
        if event.probe is not None:
            self.probe_steps.append(event.step)
            self.probe_loss.append(event.probe.loss)
            self.probe_accuracy.append(np.nan if event.probe.accuracy is None else event.probe.accuracy)
            if event.probe.regions is not None:
                self.regions, self.regions_step = event.probe.regions, event.step

    def status(self, running: bool, seconds: float | None) -> tuple[str, str]:
        """(level, text) of the status line; ``seconds``: the run's time once it has ended."""
        training = self.setup.training
        last = self.last
        estimate = f" ({self.setup.estimate.text()})" if self.setup.estimate.worth_showing else ""
        if last is None:
            return "info", f"Training {training.task}: waiting for the first step\u2026{estimate}"
        diverged = last if isinstance(last, Diverged) else None
        verdict = verdict_of(self.loss[:self.done], self.chance, training.flat_steps, diverged)
        level = VERDICT_LEVELS[verdict.kind]
        if isinstance(last, Diverged):
            return level, (f"\u2716 {verdict.message}. Try a smaller learning rate or an initialization "
                           "that keeps the std near 1.")
        if seconds is not None:
            where = f"Done: {last.steps:,} steps in {seconds:.1f} s"
        elif running:
            where = f"Step {last.step:,} of {last.steps:,}{estimate}"
        else:
            where = f"Stopped at step {last.step:,} of {last.steps:,}"
        return level, f"{where} \u00b7 {verdict.message}.{alpha_text(last.alpha)}"


class TrainingView(JobView):
    def __init__(self, controls: ControlsPanel) -> None:
        super().__init__("training", "training", controls, "Train",
                         "Train the controls' network with these settings (the window's other views "
                         "show it at initialization)")
        self.record: TrainingRecord | None = None
        self.settings = TrainingSettings("train")
        self.settings.lr.refused.connect(lambda text: self.set_status("error", text))
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        self.settings.grid.addLayout(buttons, 1, 4, 1, 2)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.settings)
        toolbar.addStretch(1)
        self._build_plots()
        self.lay_out(toolbar, self.plots)
        self.set_status("info", "Press Train to train the network of the controls on the task; the "
                                "curves fill in as it learns.")

    def _build_plots(self) -> None:
        self.plots = pg.GraphicsLayoutWidget()
        grid = self.plots.ci
        self.loss_plot = make_plot("Loss", "loss (log scale)", log_y=True)
        self.accuracy_plot = make_plot("Accuracy", "accuracy")
        self.accuracy_plot.setYRange(0, 1, padding=0.04)
        self.grad_plot = make_plot("grad:data ratio by layer", "std(dL/dW) / std(W) (log)", log_y=True)
        self.update_plot = make_plot("update:data by layer (\u22123 dashed)",
                                     "log10 std(lr\u00b7update) / std(W)")
        self.regions_plot = make_plot("Decision regions", "x\u2082", bottom="x\u2081")
        self.regions_plot.setAspectLocked(True)
        for plot in (self.accuracy_plot, self.grad_plot, self.update_plot):
            plot.setXLink(self.loss_plot)
        grid.addItem(self.loss_plot, row=0, col=0)
        grid.addItem(self.accuracy_plot, row=0, col=1)
        grid.addItem(self.regions_plot, row=0, col=2, rowspan=3)
        batch_pen = pg.mkPen(COLORS["pre"] + "70", width=1)
        set_pen = pg.mkPen(COLORS["grad"], width=2.5)
        self.loss_curve = self.loss_plot.plot([], [], pen=batch_pen, connect="finite")
        self.set_loss_curve = self.loss_plot.plot([], [], pen=set_pen, connect="finite", antialias=True)
        self.accuracy_curve = self.accuracy_plot.plot([], [], pen=batch_pen, connect="finite")
        self.set_accuracy_curve = self.accuracy_plot.plot([], [], pen=set_pen, connect="finite",
                                                          antialias=True)
        legend = add_legend_row(grid, 1, 0, 2, 2)
        legend.addItem(self.loss_curve, "each mini-batch (before its step)")
        legend.addItem(self.set_loss_curve, "the whole training set")
        grid.addItem(self.grad_plot, row=2, col=0)
        grid.addItem(self.update_plot, row=2, col=1)
        self.update_plot.addItem(pg.InfiniteLine(
            UPDATE_GUIDE, angle=0, pen=pg.mkPen("#303030", width=1.5, style=Qt.PenStyle.DashLine)))
        self.depth_key = pg.ColorBarItem(values=(0.5, 1.5), interactive=False, orientation="horizontal",
                                         colorMap=pg.colormap.get(DEPTH_MAP).getSubset(0, DEPTH_SPAN),
                                         width=10, label="hidden layer (the output layer: grey, dashed)")
        grid.addItem(self.depth_key, row=3, col=0, colspan=2)
        self.regions_image = pg.ImageItem()
        self.regions_points = pg.ScatterPlotItem(size=4, pen=pg.mkPen("#ffffff", width=0.5))
        self.regions_plot.addItem(self.regions_image)
        self.regions_plot.addItem(self.regions_points)
        self.regions_note = PlotNote(self.regions_plot)
        for row, stretch in ((0, 3), (1, 0), (2, 3), (3, 0)):
            grid.layout.setRowStretchFactor(row, stretch)
        for col, stretch in ((0, 5), (1, 5), (2, 6)):
            grid.layout.setColumnStretchFactor(col, stretch)
        self.grad_curves: list[pg.PlotDataItem] = []
        self.update_curves: list[pg.PlotDataItem] = []
        self._regions_shown: np.ndarray | None = None
        self.grad_note = PlotNote(self.grad_plot)
        self.update_note = PlotNote(self.update_plot)
        self._show_empty_frame()

    # --- running --------------------------------------------------------------------------

    def settings_widgets(self) -> list[QWidget]:
        return self.settings.inputs

    def start(self) -> None:
        """Train the controls' network with the settings shown; a run in progress is cancelled."""
        try:
            config = self.network()
            steps = self.settings.steps.value()
            setup = Setup.of(config, self.settings.training(region_grid=REGION_GRID,
                                                            record_every=probe_every(steps)),
                             memory_limit=memory_limit())
        except ConfigError as exc:
            self.set_status("error", f"Cannot train this: {exc}")
            return
        self.record = TrainingRecord(setup)
        self._prepare(setup)
        self.start_job(config, lambda should_stop: run(setup, should_stop))
        self.paint()

    def train(self, training: TrainConfig | None = None) -> None:
        """Show ``training``'s settings (if given) and train the controls' network with them."""
        if training is not None:
            self.settings.set_training(training)
        self.start()

    def _prepare(self, setup: Setup) -> None:
        """Lay the plots out for a new run: its steps, its layers' curves, its data."""
        steps, layers = setup.training.steps, setup.net.config.layers
        self.loss_plot.setXRange(0, steps, padding=0.02)
        classification = setup.data.is_classification
        self.accuracy_plot.setTitle("Accuracy" if classification else "Accuracy: none for regression",
                                    size="9.5pt")
        record = self.record
        for plot, curves in ((self.grad_plot, self.grad_curves), (self.update_plot, self.update_curves)):
            for curve in curves:
                plot.removeItem(curve)
            curves.clear()
            hidden = record.matrices[:-1]
            for color in depth_colors(len(hidden)):
                curves.append(plot.plot([], [], pen=pg.mkPen(color, width=1), connect="finite"))
            output = pg.mkPen(COLORS["muted"], width=1, style=Qt.PenStyle.DashLine)
            curves.append(plot.plot([], [], pen=output, connect="finite"))
        self.depth_key.setLevels((0.5, layers + 0.5))
        blocks = setup.net.config.residual != "none"
        self.depth_key.getAxis("bottom").setLabel(
            f"{'block (its W1)' if blocks else 'hidden layer'} (the output layer: grey, dashed)")
        self.depth_key.setVisible(True)
        self._prepare_regions(setup)

    def _prepare_regions(self, setup: Setup) -> None:
        data = setup.data
        self.regions_plot.setTitle("Decision regions", size="9.5pt")
        if data.dim != 2:
            self._show_regions_note(f"{data.task} is {data.dim}-D: no regions to draw (2-D tasks only).")
            return
        self.regions_image.clear()
        for axis in ("left", "bottom"):
            self.regions_plot.showAxis(axis, True)
        self.regions_note.say("")
        x0, x1, y0, y1 = data.extent
        self.regions_plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        if data.is_classification:
            colors = [pg.mkBrush(c) for c in SERIES_COLORS]
            brushes = [colors[label % len(colors)] for label in data.targets]
            lut = np.array([_lighter(c) for c in SERIES_COLORS[:data.classes]], dtype=np.uint8)
        else:
            cmap = pg.colormap.get(REGRESSION_MAP)
            low, high = REGRESSION_LEVELS
            brushes = [pg.mkBrush(c) for c in cmap.mapToQColor((data.targets[:, 0] - low) / (high - low))]
            lut = (255 * (1 - REGION_LIGHTNESS) * cmap.getLookupTable(nPts=256, mode="float")[:, :3]
                   + 255 * REGION_LIGHTNESS).astype(np.uint8)
        self.regions_image.setLookupTable(lut)
        self.regions_points.setData(pos=data.inputs[:, :2], brush=brushes)

    def _show_regions_note(self, text: str) -> None:
        """``text`` in place of the regions, without axes."""
        self.regions_image.clear()
        self.regions_points.clear()
        for axis in ("left", "bottom"):
            self.regions_plot.showAxis(axis, False)
        self.regions_note.say(text)
        self.regions_plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def _show_empty_frame(self) -> None:
        """Before the first run: the axes a run of the settings shown would start with."""
        self.loss_plot.setXRange(0, self.settings.steps.value(), padding=0.02)
        # The view's y is log10 on the log axes: loss 0.01..10, grad:data 1e-4..10.
        for plot, (low, high) in ((self.loss_plot, (-2, 1)), (self.grad_plot, (-4, 1)),
                                  (self.update_plot, (UPDATE_GUIDE - 2, UPDATE_GUIDE + 2))):
            plot.setYRange(low, high, padding=0)
        self.depth_key.setVisible(False)  # no layers to key yet
        self._show_regions_note("The decision regions of a 2-D task appear here as it trains.")

    # --- JobView ----------------------------------------------------------------------------

    def fold(self, events: list) -> None:
        for event in events:
            self.record.add(event)

    def paint(self) -> None:
        record = self.record
        if record is None:
            return
        steps = np.arange(1, record.done + 1)
        self.loss_curve.setData(steps, positive(record.loss[:record.done]), connect="finite")
        self.set_loss_curve.setData(record.probe_steps, positive(record.probe_loss), connect="finite")
        self.accuracy_curve.setData(steps, finite(record.accuracy[:record.done]), connect="finite")
        self.set_accuracy_curve.setData(record.probe_steps, finite(record.probe_accuracy), connect="finite")
        grad_data, update_data = positive(record.grad_data[:record.done]), finite(record.update_data[:record.done])
        for column, (grad, update) in enumerate(zip(self.grad_curves, self.update_curves)):
            grad.setData(steps, grad_data[:, column], connect="finite")
            update.setData(steps, update_data[:, column], connect="finite")
        fit_log_range(self.loss_plot, record.loss[:record.done], record.probe_loss)
        fit_log_range(self.grad_plot, record.grad_data[:record.done])
        self._fit_update_range(record)
        self.grad_note.say(*ratio_note(grad_data, record.matrices))
        self.update_note.say(*ratio_note(update_data, record.matrices))
        if record.regions is not None and record.regions is not self._regions_shown:
            self._regions_shown = record.regions
            data = record.setup.data
            levels = (0, data.classes) if data.is_classification else REGRESSION_LEVELS
            # ImageItem indexes [x, y]; the engine's rows are the y values.
            self.regions_image.setImage(record.regions.T, autoLevels=False, levels=levels)
            x0, x1, y0, y1 = data.extent
            self.regions_image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))  # needs the image's size
            self.regions_plot.setTitle(f"Decision regions at step {record.regions_step:,}", size="9.5pt")
        if self.running or self.shown_config is not None:
            self.set_status(*record.status(self.running, self.seconds))

    def _fit_update_range(self, record: TrainingRecord) -> None:
        """The update:data axis spans the data and the -3 guide."""
        values = record.update_data[:record.done]
        values = values[np.isfinite(values)]
        low = min(float(values.min()), UPDATE_GUIDE) if values.size else UPDATE_GUIDE - 1
        high = max(float(values.max()), UPDATE_GUIDE) if values.size else UPDATE_GUIDE + 1
        self.update_plot.setYRange(low - 0.3, high + 0.3, padding=0)


def _lighter(color: str) -> tuple[int, int, int]:
    rgb = np.array(QColor(color).getRgb()[:3], dtype=float)
    return tuple(int(v) for v in rgb + (255 - rgb) * REGION_LIGHTNESS)
