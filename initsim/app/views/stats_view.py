"""Per-layer statistics: std against layer on a log axis with the theory dashed; below it, the
fractions of dead and saturated units, and the samples' correlation against mean-field's c^l."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from initsim.engine import SimConfig
from initsim.engine.stats import GEOMETRY_SAMPLES

from ..model.runstate import RunState
from ..widgets import DetailsGiveWay
from .plot_notes import PlotNote
from .plotstyle import COLORS, DecadeAxis, LayerAxis, fit_log_range, style_plot
from .width_band import WidthBand

# The view shows its lower plots when it has room for this many lines of its text (DetailsGiveWay).
DETAILS_LINES = 28
# Symbols mark the layers when there are few enough of them to tell apart.
MAX_SYMBOL_LAYERS = 40

# (series, legend, colour, dashed): the curves of the std plot.
STD_CURVES = (
    ("pre_std", "pre-activation std", "pre", False),
    ("theory_pre_std", "pre-activation theory", "pre", True),
    ("post_std", "activation std", "post", False),
    ("theory_post_std", "stream theory", "post", True),  # residual networks only
    ("grad_std", "gradient std", "grad", False),
    ("theory_grad_std", "gradient theory", "grad", True),
)
# What the curves are of a residual network's blocks (README's "Residual networks"); the stream's
# theory has no curve for a plain network.
BLOCK_LABELS = {
    "pre_std": "branch pre-activation std", "theory_pre_std": "branch pre-activation theory",
    "post_std": "stream std", "grad_std": "stream gradient std", "dead_fraction": "dead branch units",
    "saturated_fraction": "saturated branch units", "sample_correlation": "measured (branch)",
}
PLAIN_ONLY_HIDDEN = ("theory_post_std",)
FRACTION_CURVES = (
    ("dead_fraction", "dead units", "dead", False),
    ("saturated_fraction", "saturated units", "saturated", False),
)
CORRELATION_CURVES = (
    ("sample_correlation", "measured", "pre", False),
    ("theory_sample_correlation", "mean-field theory", "pre", True),
)
CORRELATION_TIP = (
    "The mean cosine similarity between different samples' pre-activation vectors (the mean-field "
    f"c\u02e1 = q_ab / q_aa), over the batch's first {GEOMETRY_SAMPLES} samples, with the theory's "
    "correlation map dashed. At 1 the samples have become the same vector: the network no longer "
    "tells its inputs apart, and ReLU units are on or off for all of them alike.")


def _arrived(state: RunState) -> tuple[np.ndarray, np.ndarray]:
    """Which layers' forward and backward events are in."""
    return (np.array([event is not None for event in state.forward]),
            np.array([event is not None for event in state.backward]))


def _zero_weights(state: RunState) -> bool:
    """Every layer in so far has all its weights 0 (and some layer is in)."""
    weights = [event.weight_std for event in state.forward if event is not None]
    return bool(weights) and all(std == 0 for std in weights)


def _layers_text(missing: np.ndarray, arrived: np.ndarray) -> str:
    """Where the ``missing`` layers of those ``arrived`` (masks over the layers) are, in few words:
    "at every layer", "at layer 7", "from layer 31" (to the last arrived), "at 3 layers from layer 9"."""
    layers, present = np.flatnonzero(missing) + 1, np.flatnonzero(arrived) + 1
    if len(layers) == len(present):
        return "at every layer"
    if len(layers) == 1:
        return f"at layer {layers[0]}"
    if np.array_equal(layers, present[present >= layers[0]]):
        return f"from layer {layers[0]}"
    return f"at {len(layers)} layers from layer {layers[0]}"


def no_theory(config: SimConfig, theory: str) -> str:
    """Why ``theory`` ("its correlation map") draws no line for ``config`` at all."""
    if config.residual != "none":
        return f"{theory} has no prediction for these blocks"
    return f"{theory} does not model {config.norm} norm"


def std_note(state: RunState) -> tuple[str, str]:
    """(text, place) of the std plot's note: why it draws nothing ("center"), or which curves it
    lacks: measured std 0 or not finite, which a log axis cannot draw, and theory that has no
    line ("aside"); ("", "center") when it draws everything that has arrived."""
    forward, backward = _arrived(state)
    gaps: dict[str, list[str]] = {}  # where -> the curves missing there
    drawn = False
    for name, label, _, dashed in STD_CURVES:
        if dashed:
            continue
        values = state.series(name)
        arrived = backward if name == "grad_std" else forward
        missing = arrived & ~((values > 0) & np.isfinite(values))
        drawn |= bool(np.any(arrived & ~missing))
        if missing.any():
            shown = BLOCK_LABELS.get(name, label) if state.config.residual != "none" else label
            gaps.setdefault(_layers_text(missing, arrived), []).append(shown.removesuffix(" std"))
    if gaps and not drawn:
        if _zero_weights(state):
            return ("All weights are zero: every unit computes the same value; std 0 cannot be drawn on a "
                    "log axis.", "center")
        return ("Nothing to draw: the std is 0 or not finite at every layer so far, which a log axis "
                "cannot show.", "center")
    notes = ["Std 0 or not finite, which a log axis cannot draw: "
             + "; ".join(f"{' and '.join(labels)} std {where}" for where, labels in gaps.items()) + "."
             ] if gaps else []
    if backward.any() and not np.isfinite(state.series("theory_grad_std"))[backward].any():
        notes.append(f"No gradient theory line: {no_theory(state.config, 'mean-field theory here')}.")
    return " ".join(notes), "aside"


def correlation_note(state: RunState) -> tuple[str, str]:
    """(text, place) of the correlation plot's note: why the measurement ("center" when there is
    none at all) or the theory's line is missing where layers have arrived; ("", "center") when
    both are drawn there."""
    forward, _ = _arrived(state)
    measured_missing = forward & ~np.isfinite(state.series("sample_correlation"))
    theory_missing = forward & ~np.isfinite(state.series("theory_sample_correlation"))
    if forward.any() and measured_missing[forward].all():
        if _zero_weights(state):
            return ("All weights are zero, so every pre-activation vector is 0: there is no angle between "
                    "samples to measure.", "center")
        return "No correlation to draw: the pre-activations are 0 or not finite, and have no angle.", "center"
    notes = []
    if measured_missing.any():
        notes.append(f"No measurement {_layers_text(measured_missing, forward)}: the pre-activations there "
                     "are 0 (or not finite), with no angle between them.")
    if theory_missing.any():
        notes.append(f"No mean-field line: {no_theory(state.config, 'its correlation map')}."
                     if theory_missing[forward].all()
                     and (state.config.norm != "none" or state.config.residual != "none")
                     else f"No mean-field line {_layers_text(theory_missing, forward)}: the predicted variance "
                     "there is 0 or beyond float64's range.")
    return " ".join(notes), "aside"


class StatsView(QWidget):
    """The std plot over the view's width; under it, when the view has room (DetailsGiveWay), the
    unit fractions and the correlation side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.plots = pg.GraphicsLayoutWidget()
        self.details = pg.GraphicsLayoutWidget()
        self.std_plot = pg.PlotItem(axisItems={"left": DecadeAxis("left"), "bottom": LayerAxis("bottom")})
        self.std_plot.setLogMode(False, True)
        self.std_plot.setLabel("left", "std (log scale)")
        self.fraction_plot = pg.PlotItem(axisItems={"bottom": LayerAxis("bottom")})
        self.fraction_plot.setTitle("Dead and saturated units", size="9.5pt")
        self.fraction_plot.setLabel("left", "% of units")
        self.correlation_plot = pg.PlotItem(axisItems={"bottom": LayerAxis("bottom")})
        self.correlation_plot.setTitle("Correlation between samples", size="9.5pt")
        self.correlation_plot.setLabel("left", "mean correlation")
        self.correlation_plot.setToolTip(CORRELATION_TIP)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.legends: list[tuple[pg.LegendItem, tuple]] = []  # each legend and its plot's curves
        for plot, curves, widget, col in ((self.std_plot, STD_CURVES, self.plots, 0),
                                          (self.fraction_plot, FRACTION_CURVES, self.details, 0),
                                          (self.correlation_plot, CORRELATION_CURVES, self.details, 1)):
            style_plot(plot)
            plot.showGrid(x=True, y=True, alpha=0.15)
            widget.addItem(plot, row=0, col=col)
            # The legend: one line under its plot, never over the data.
            legend = pg.LegendItem(labelTextSize="8.5pt", colCount=len(curves))
            legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            widget.addItem(legend, row=1, col=col)
            for name, label, color, dashed in curves:
                pen = pg.mkPen(COLORS[color], width=2,
                               style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
                self.curves[name] = plot.plot([], [], pen=pen, connect="finite", antialias=True)
            self.legends.append((legend, curves))
        self.fraction_plot.setYRange(0, 100, padding=0.06)  # room for the label at 0
        self.fraction_plot.enableAutoRange(y=False)
        self.correlation_plot.enableAutoRange(y=False)  # fitted in `_fit_correlation_range`
        self.std_note = PlotNote(self.std_plot)
        self.correlation_note = PlotNote(self.correlation_plot)
        self.band = WidthBand(self.std_plot, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.band.toolbar)
        layout.addWidget(self.plots, 3)
        layout.addWidget(self.details, 2)
        self.details_give_way = DetailsGiveWay(self, [self.details], DETAILS_LINES)
        self._layers = 0
        self._blocks: bool | None = None  # whether the legends and axes name blocks (residual) or layers
        self._name_parts(blocks=False)

    def _name_parts(self, blocks: bool) -> None:
        """The legends and the layer axes of a residual network's blocks, or of a plain network's
        layers (whose stream theory has no curve)."""
        if blocks == self._blocks:
            return
        self._blocks = blocks
        for legend, curves in self.legends:
            legend.clear()
            # A block's six longer names in two rows: in one they would widen the plot past the view.
            legend.setColumnCount(3 if blocks and len(curves) > 4 else len(curves))
            for name, label, _, _ in curves:
                if blocks or name not in PLAIN_ONLY_HIDDEN:
                    legend.addItem(self.curves[name], BLOCK_LABELS.get(name, label) if blocks else label)
        for plot in (self.fraction_plot, self.correlation_plot):
            plot.setLabel("bottom", "block" if blocks else "layer")
        self.std_plot.setTitle("Standard deviation by block" if blocks else "Standard deviation by layer",
                               size="9.5pt")

    def show_state(self, state: RunState) -> None:
        self.band.show_state(state.config)
        self._name_parts(blocks=state.config.residual != "none")
        layers = np.arange(1, state.layers + 1)
        symbols = state.layers <= MAX_SYMBOL_LAYERS
        for name, _, color, dashed in STD_CURVES + FRACTION_CURVES + CORRELATION_CURVES:
            values = state.series(name)
            if name.endswith("fraction"):
                values = values * 100
            elif name.endswith("std"):  # a log axis: zeros and non-finite values are gaps
                values[~(values > 0) | ~np.isfinite(values)] = np.nan
            shown = not np.all(np.isnan(values))  # nothing yet, or nothing to draw on a log axis
            self.curves[name].setData(
                layers if shown else [], values if shown else [], connect="finite",
                symbol="o" if symbols and not dashed else None, symbolSize=5,
                symbolPen=None, symbolBrush=COLORS[color])
        if state.layers != self._layers:
            # Not linked: pyqtgraph aligns linked views by their screen position, and the two lower
            # plots sit side by side.
            for plot in (self.std_plot, self.fraction_plot, self.correlation_plot):
                plot.setXRange(0.5, state.layers + 0.5, padding=0)
            self._layers = state.layers
        self._fit_std_range(state)
        self._fit_correlation_range(state)
        self.std_note.say(*std_note(state))
        self.correlation_note.say(*correlation_note(state))

    def shutdown(self) -> None:
        self.band.shutdown()

    def _fit_correlation_range(self, state: RunState) -> None:
        """Up to 1, the largest a cosine can be; down to -0.1, or lower where a batch norm's centring
        takes the samples (to -1/(batch - 1): their vectors sum to zero)."""
        measured = state.series("sample_correlation")
        low = min(-0.1, float(np.nanmin(measured, initial=0.0)))
        self.correlation_plot.setYRange(low, 1.0, padding=0.04)

    def _fit_std_range(self, state: RunState) -> None:
        """At least MIN_DECADES on the log axis (`fit_log_range`): a healthy net then looks flat, as
        it is, and sampling noise does not read as a trend."""
        fit_log_range(self.std_plot, *(state.series(name) for name, *_ in STD_CURVES))
