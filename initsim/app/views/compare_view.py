"""The Compare tab: up to four init schemes on the controls' network, side by side over seeds.

Each scheme runs once per seed: the forward simulation (activation std and gradient std by layer)
and, with "Include training", a training run on the same data, seeds and batch order (the
mini-batch loss by step). One colour per scheme: its median over the seeds as a line, its min..max
as a band. Each run is drawn as it finishes: a scheme's line with its first seed, its band from its
second on, and the legend says how many of its seeds are in. A slot's "plain" toggle runs its scheme
on a plain network of the controls' depth and width (no blocks, no norm), beside residual blocks in
the others: a pick is then named "xavier_normal (plain)". Drivable from code (the guided tour):
``compare(["kaiming_normal", "zeros"], seeds=3)``, ``compare(["xavier_normal (plain)", "xavier_normal"])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QSizePolicy,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from initsim.engine import SCHEMES, ConfigError, SimConfig, memory
from initsim.engine.compare import (MAX_CONFIGS, MAX_SEEDS, Band, CompareProgress, CompareResult,
                                    CompareRun, compare_stream)
from initsim.engine.tours import PLAIN, picked_scheme

from ..controls import ControlsPanel
from ..preferences import memory_limit
from ..widgets import ProgressBar
from .job_view import JobView
from .plot_notes import PlotNote
from .plotstyle import SERIES_COLORS, add_legend_row, fit_log_range, make_plot, positive
from .training_settings import TrainingSettings

DEFAULT_PICKS = ("kaiming_normal", "xavier_normal", "normal", "zeros")
DEFAULT_SEEDS = 3
# Training every scheme for every seed is the long part: a shorter run than the Training tab's.
COMPARE_STEPS = 200
NO_SCHEME = ""  # the first item of each pick: no scheme in this slot
BAND_ALPHA = 45  # of 255: the min..max band under a scheme's median line
# Two legend entries a row: with its seed count and notes, an entry can take half the width of a
# 1280-pixel window, and a wider legend would widen the plots past the view.
LEGEND_COLUMNS = 2


def scheme_config(network: SimConfig, pick: str) -> SimConfig:
    """``network`` with the init scheme ``pick`` names: its parameters if it is the network's own
    scheme, else the scheme's defaults (parameters belong to their scheme); a pick "NAME (plain)"
    on plain layers with no norm (the same depth, width and the rest). Validated."""
    scheme, plain = picked_scheme(pick)
    params = network.init_params if scheme == network.init else {}
    if plain:
        network = network.replace(residual="none", norm="none")
    return network.replace(init=scheme, init_params=params).validated()


class BandItems:
    """One scheme's median line and min..max band in one plot, created once, updated with setData."""

    def __init__(self, plot: pg.PlotItem, color: str) -> None:
        edge = pg.mkPen(color + "60", width=1)
        self.median = plot.plot([], [], pen=pg.mkPen(color, width=2.2), connect="finite", antialias=True)
        self.low = plot.plot([], [], pen=edge, connect="finite")
        self.high = plot.plot([], [], pen=edge, connect="finite")
        fill = pg.mkColor(color)
        fill.setAlpha(BAND_ALPHA)
        plot.addItem(pg.FillBetweenItem(self.low, self.high, brush=fill))

    def show(self, band: Band | None, spread: bool = True) -> None:
        """Draw ``band`` (per point 1, 2, ...) on a log axis, its min..max only with ``spread`` (a
        band over one run is its line); None clears."""
        if band is None:
            for curve in (self.median, self.low, self.high):
                curve.setData([], [])
            return
        x = np.arange(1, len(band.median) + 1)
        self.median.setData(x, positive(band.median), connect="finite")
        for curve, values in ((self.low, band.low), (self.high, band.high)):
            if spread:
                curve.setData(x, positive(values), connect="finite")
            else:
                curve.setData([], [])


class CompareView(JobView):
    def __init__(self, controls: ControlsPanel) -> None:
        super().__init__("compare", "comparison", controls, "Compare",
                         "Run every picked scheme on the controls' network for each seed (and train "
                         "it, with Include training)")
        self.result: CompareResult | None = None
        self.last_progress: CompareProgress | None = None
        # Per picked scheme of the comparison shown, its bands over its seeds so far (None: none
        # in yet), how many seeds each will have, and the schemes whose bands are not drawn yet.
        self.partial: list[CompareRun | None] = []
        self.planned_seeds = 0
        self._unpainted: set[int] = set()
        self.picks: list[QComboBox] = []
        self.plain_toggles: list[QToolButton] = []
        self.labels: list[str] = []  # the picks of the comparison shown, in slot order
        for slot in range(MAX_CONFIGS):
            combo = QComboBox()
            combo.setObjectName(f"compare.scheme{slot + 1}")
            combo.setToolTip(f"Scheme {slot + 1} to compare (none: leave the slot empty). The "
                             "controls' own scheme keeps its parameters; another starts from its "
                             "defaults")
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            # Narrow at least, as wide as the row allows; the popup list shows long names whole.
            combo.setMinimumContentsLength(7)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            combo.addItem("(none)", NO_SCHEME)
            for scheme in SCHEMES.values():
                combo.addItem(scheme.name, scheme.name)
            combo.setCurrentIndex(combo.findData(DEFAULT_PICKS[slot]))
            self.picks.append(combo)
            plain = QToolButton()
            plain.setText("plain")
            plain.setCheckable(True)
            plain.setObjectName(f"compare.plain{slot + 1}")
            plain.setToolTip(f"Run scheme {slot + 1} on plain layers with no norm, of the controls' depth "
                             "and width: a plain network beside residual blocks")
            self.plain_toggles.append(plain)
        self.seeds = QSpinBox()
        self.seeds.setObjectName("compare.seeds")
        self.seeds.setToolTip("Seeds per scheme: the controls' seed, seed + 1, ...; the lines are "
                              "the medians over them, the bands min..max")
        self.seeds.setRange(1, MAX_SEEDS)
        self.seeds.setValue(DEFAULT_SEEDS)
        self.include_training = QCheckBox("Include training")
        self.include_training.setObjectName("compare.include_training")
        self.include_training.setToolTip("Also train each scheme for each seed on the same data and "
                                         "batch order, and overlay the loss curves")
        self.settings = TrainingSettings("compare", steps=COMPARE_STEPS)
        self.settings.lr.refused.connect(lambda text: self.set_status("error", text))
        self.settings.setVisible(False)
        self.include_training.toggled.connect(self.settings.setVisible)
        self.include_training.toggled.connect(self._note_missing_loss)
        self.progress = ProgressBar()
        self.progress.setObjectName("compare.progress")
        self.progress.setToolTip("Runs done: one per scheme and seed")
        self.progress.setFixedWidth(110)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)  # a bar that was never set shows no text
        self.progress.setFormat("no runs yet")
        self._build_plots()
        self._lay_out()
        self.set_status("info", "Pick up to four schemes and press Compare: each runs on the "
                                "network of the controls, for every seed.")

    def _lay_out(self) -> None:
        """Three rows over the plots: the schemes; the seeds, training or not, and the buttons; the
        training settings, shown with Include training."""
        picks = QHBoxLayout()
        caption = QLabel("Schemes")
        caption.setToolTip(self.picks[0].toolTip())
        picks.addWidget(caption)
        for combo, plain in zip(self.picks, self.plain_toggles):
            picks.addWidget(combo)
            picks.addWidget(plain)
        run = QHBoxLayout()
        seeds_caption = QLabel("Seeds")
        seeds_caption.setToolTip(self.seeds.toolTip())
        run.addWidget(seeds_caption)
        run.addWidget(self.seeds)
        run.addSpacing(10)
        run.addWidget(self.include_training)
        run.addStretch(1)
        run.addWidget(self.start_button)
        run.addWidget(self.stop_button)
        run.addWidget(self.progress)
        toolbar = QVBoxLayout()
        for row in (picks, run):
            toolbar.addLayout(row)
        toolbar.addWidget(self.settings, 0, Qt.AlignmentFlag.AlignLeft)
        self.lay_out(toolbar, self.plots)

    def _build_plots(self) -> None:
        self.plots = pg.GraphicsLayoutWidget()
        grid = self.plots.ci
        self.activation_plot = make_plot("Activation std by layer (simulation)", "std (log scale)",
                                         bottom="layer", log_y=True)
        self.grad_plot = make_plot("Gradient std by layer, dL/dh (simulation)", "std (log scale)",
                                   bottom="layer", log_y=True)
        self.grad_plot.setXLink(self.activation_plot)
        self.loss_plot = make_plot("Training loss by step (mini-batch)", "loss (log scale)", log_y=True)
        grid.addItem(self.activation_plot, row=0, col=0)
        grid.addItem(self.grad_plot, row=0, col=1)
        self.legend = add_legend_row(grid, 1, 0, 2, LEGEND_COLUMNS)
        grid.addItem(self.loss_plot, row=2, col=0, colspan=2)
        self.loss_note = PlotNote(self.loss_plot)
        grid.layout.setRowStretchFactor(0, 5)
        grid.layout.setRowStretchFactor(1, 0)
        # The CompareRun field each plot shows -> one BandItems per slot, in the slots' colours.
        self.bands: dict[str, list[BandItems]] = {
            field: [BandItems(plot, color) for color in SERIES_COLORS[:MAX_CONFIGS]]
            for field, plot in (("activation_std", self.activation_plot), ("grad_std", self.grad_plot),
                                ("loss", self.loss_plot))}
        self._note_missing_loss()
        # Before the first comparison: the default network's layers, std 0.01..10 (log10 on the axis).
        self.activation_plot.setXRange(0.5, SimConfig.layers + 0.5, padding=0)
        for plot in (self.activation_plot, self.grad_plot):
            plot.setYRange(-2, 1, padding=0)

    def _note_missing_loss(self) -> None:
        """Say over the empty loss plot why it is empty; without training to come, no loss plot:
        the std plots take its room (a projector's 720 pixels, a tour's panel, leave them little)."""
        if any(run is not None and run.loss is not None for run in self.partial):
            return  # the plot has curves
        if not self.include_training.isChecked():
            self._show_loss_plot(False)
        elif self.running:
            self._show_loss_note("Each scheme's loss curve appears here once its first run has trained.")
        else:
            self._show_loss_note("The loss curves appear here once the schemes have trained: press Compare.")

    def _show_loss_plot(self, shown: bool) -> None:
        """The loss plot in its row under the legend, or out of the layout and its row empty."""
        if not shown:
            self.plots.ci.layout.setRowStretchFactor(2, 0)
        if shown == (self.loss_plot.scene() is not None):
            return
        if shown:
            self.plots.ci.addItem(self.loss_plot, row=2, col=0, colspan=2)
        else:
            self.plots.ci.removeItem(self.loss_plot)

    def _show_loss_note(self, text: str) -> None:
        """The loss plot with ``text`` over it while empty, kept small; an empty ``text``: the plot
        has curves."""
        self._show_loss_plot(True)
        self.loss_note.say(text)
        self.plots.ci.layout.setRowStretchFactor(2, 1 if text else 4)
        if text:  # the axes of the runs to come; a log axis: the view's y is log10 of the loss
            self.loss_plot.setRange(xRange=(0, self.settings.steps.value()), yRange=(-2, 0.5), padding=0)

    # --- running --------------------------------------------------------------------------

    def settings_widgets(self) -> list[QWidget]:
        return [*self.picks, *self.plain_toggles, self.seeds, self.include_training, *self.settings.inputs]

    def picked(self) -> list[str]:
        """The schemes picked, in slot order: a name, or "NAME (plain)" where the slot is plain."""
        return [combo.currentData() + (PLAIN if plain.isChecked() else "")
                for combo, plain in zip(self.picks, self.plain_toggles) if combo.currentData() != NO_SCHEME]

    def compare(self, schemes: Sequence[str], seeds: int = DEFAULT_SEEDS, training: bool = False) -> None:
        """Pick ``schemes`` (one to four registry names), ``seeds`` seeds each, and start comparing
        them on the controls' network; with ``training``, train each too, with the training
        settings shown. ConfigError for an unknown scheme or a count out of range."""
        if not 1 <= len(schemes) <= MAX_CONFIGS:
            raise ConfigError("schemes", f"got {len(schemes)}, expected 1 to {MAX_CONFIGS} schemes")
        if not 1 <= seeds <= MAX_SEEDS:
            raise ConfigError("seeds", f"got {seeds}, expected 1 to {MAX_SEEDS}")
        picks = [picked_scheme(name) for name in schemes]
        for combo, plain, (name, on_plain) in zip_longest(self.picks, self.plain_toggles, picks,
                                                         fillvalue=(NO_SCHEME, False)):
            combo.setCurrentIndex(combo.findData(name))
            plain.setChecked(on_plain)
        self.seeds.setValue(seeds)
        self.include_training.setChecked(training)
        self.start()

    def start(self) -> None:
        """Compare the picked schemes with the settings shown; a comparison in progress is cancelled."""
        picks = self.picked()
        if not picks:
            self.set_status("error", "Pick at least one scheme to compare.")
            return
        try:
            network = self.network()
            configs = [scheme_config(network, name) for name in picks]
            training = self.settings.training().validated() if self.include_training.isChecked() else None
            seeds = list(range(network.seed, network.seed + self.seeds.value()))
            limit = memory_limit()
            memory.check(memory.comparison(configs, len(seeds), training), limit,
                         "seeds, layers, width or batch, or raise the limit in Edit > Preferences")
        except ConfigError as exc:
            self.set_status("error", f"Cannot compare these: {exc}")
            return
        self.result, self.last_progress = None, None
        self.partial, self.planned_seeds, self._unpainted = [None] * len(configs), len(seeds), set()
        self.progress.setRange(0, len(configs) * len(seeds))
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m runs")
        for items in self.bands.values():  # the earlier comparison goes; the new one's runs come in
            for item in items:
                item.show(None)
        # One legend entry per scheme from the start: its seed count then grows in place.
        self.legend.clear()
        self.labels = picks
        for name, item in zip(picks, self.bands["activation_std"]):
            self.legend.addItem(item.median, _legend_label(name, None, len(seeds)))
        self.activation_plot.setXRange(0.5, network.layers + 0.5, padding=0)
        self.start_job(network, lambda should_stop: compare_stream(configs, seeds, training, should_stop, limit))
        self.paint()

    # --- JobView ----------------------------------------------------------------------------

    def fold(self, events: list) -> None:
        for event in events:
            if isinstance(event, CompareProgress):
                self.last_progress = event
                self.partial[event.config_index] = event.run
                self._unpainted.add(event.config_index)
            elif isinstance(event, CompareResult):
                self.result = event  # its runs are the last of the partial ones

    def paint(self) -> None:
        progress = self.last_progress
        self.progress.setValue(0 if progress is None else progress.done)
        if self._unpainted:
            self._paint_new_runs()
            self._fit_ranges([run for run in self.partial if run is not None])
        self._note_missing_loss()
        if self.shown_config is None:
            return  # the status says the results are of an earlier network
        if self.running:
            done = "" if progress is None else f"{progress.done} of {progress.total} runs done; "
            self.set_status("info", f"Comparing {', '.join(self.picked())}: {done}each scheme's line "
                                    "appears with its first seed, its band from the second on\u2026")
        elif self.result is not None:
            self.set_status(*_result_status(self.result))
        elif progress is None:
            self.set_status("info", "Stopped before any run had finished: nothing to compare.")
        else:
            self.set_status("info", f"Stopped after {progress.done} of {progress.total} runs: the "
                                    "legend says how many seeds of each scheme are drawn.")

    def _paint_new_runs(self) -> None:
        """Draw the schemes whose bands changed since the last paint, and their legend entries."""
        for slot in sorted(self._unpainted):
            run = self.partial[slot]
            assert run is not None
            for field, items in self.bands.items():
                items[slot].show(getattr(run, field), spread=len(run.seeds) > 1)
            self.legend.getLabel(self.bands["activation_std"][slot].median).setText(
                _legend_label(self.labels[slot], run, self.planned_seeds))
            if run.loss is not None:
                self._show_loss_note("")
                self.loss_plot.setXRange(0, len(run.loss.median), padding=0.02)
        self._unpainted.clear()

    def _fit_ranges(self, runs: Sequence[CompareRun]) -> None:
        """The std axes span every band. The loss axis spans the bands of the schemes that trained
        without diverging (all, if none did): a run that blew up reaches 1e20 before its loss turns
        non-finite, and would flatten the rest."""
        for plot, field in ((self.activation_plot, "activation_std"), (self.grad_plot, "grad_std")):
            bands = [getattr(run, field) for run in runs]
            fit_log_range(plot, *[band.low for band in bands], *[band.high for band in bands])
        if runs[0].loss is not None:
            steady = [run.loss for run in runs if not any(run.diverged_at)] or [run.loss for run in runs]
            fit_log_range(self.loss_plot, *[band.low for band in steady], *[band.high for band in steady])


def _legend_label(scheme: str, run: CompareRun | None, planned_seeds: int) -> str:
    """A scheme's legend entry: its name; how many of its seeds are in, until all are; whether its
    activations have no std a log axis can show; and how many of its seeds' training diverged."""
    seeds = 0 if run is None else len(run.seeds)
    count = "" if seeds == planned_seeds else f": {_of_seeds(seeds, planned_seeds)}"
    notes = []
    if run is not None and np.all(np.isnan(positive(run.activation_std.median))):
        notes.append("activation std 0 or not finite: not drawn")
    diverged = 0 if run is None else sum(step is not None for step in run.diverged_at)
    if diverged:
        notes.append(f"diverged: {_of_seeds(diverged, seeds)}")
    return scheme + count + (f" ({'; '.join(notes)})" if notes else "")


def _of_seeds(part: int, whole: int) -> str:
    """2 of 3 seeds; 1 of 1 seed."""
    return f"{part} of {whole} seed{'s' * (whole > 1)}"


def _result_status(result: CompareResult) -> tuple[str, str]:
    runs = result.runs
    seeds = runs[0].seeds
    text = (f"Done: {len(runs)} scheme{'s' * (len(runs) > 1)} \u00d7 {len(seeds)} seed"
            f"{'s' * (len(seeds) > 1)} ({seeds[0]}..{seeds[-1]}) in {result.seconds:.1f} s. Lines: "
            "the median over the seeds; bands: min..max; a gap: no finite value.")
    diverged = [f"{run.config.init} at step {min(s for s in run.diverged_at if s is not None)}"
                for run in runs if any(s is not None for s in run.diverged_at)]
    if diverged:
        return "warn", text + " Training diverged: " + ", ".join(diverged) + "."
    return "ok", text
