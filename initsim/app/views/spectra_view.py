"""The Spectra view: the singular values of the network's input-output Jacobian (and Gaussian
against orthogonal weights at the same variance), and one layer's weight spectrum against the
Marchenko-Pastur law."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QSpinBox, QVBoxLayout)

from initsim.engine import ConfigError, SimConfig, get_scheme, initial_blocks, initial_weights
from initsim.engine.schemes import READ_SCHEMES
from initsim.engine.spectra import (JacobianSpectrum, WeightSpectrum, isometry_pair, jacobian_spectrum,
                                    weight_spectrum)
from initsim.engine.theory import config_sigmas

from ..model.runstate import RunState
from ..preferences import memory_limit
from ..widgets import ComputedView, DetailsGiveWay, named, number, numbers_label
from .phase_plot import LABEL_STYLE
from .plot_notes import PlotNote, sentence
from .plotstyle import COLORS, density_steps, step_style, style_plot

# The numbers under the plots show when the view has room for this many lines of its text.
DETAILS_LINES = 30
# Spectra are computed up to a few seconds' work, estimated from their floating-point operations
# at a rate of one core of a recent CPU for float64 products.
FLOPS_PER_SECOND = 35e9
MAX_FLOPS = 1.5e11
MAX_SPECTRUM_WIDTH = 2048
MAX_BINS = 60
MIN_BINS = 8
DENSITY_POINTS = 400
# The law's density has a 1/sqrt(x) pole at 0 for square layers: the y range follows the histogram
# and the density's bulk, not the pole.
DENSITY_PERCENTILE = 90

COMPARE_TIP = ("Compare this network with Gaussian and with orthogonal weights of the same \u03c3w\u00b2 and "
               "bias: orthogonal weights keep deep tanh or linear nets near criticality isometric (all singular "
               "values near 1), Gaussian ones do not")
# The variance the Marchenko-Pastur law is drawn with: (key, menu text, tooltip).
WEIGHT_SCALES = (
    ("formula", "scheme's E[W\u00b2]",
     "E[W\u00b2] from the scheme's formula (with truncation and sparsity counted): the variance "
     "mean-field theory uses. The law then checks both the scale and the shape of the spectrum"),
    ("measured", "layer's mean square",
     "The mean of W\u00b2 over this layer's entries: fits the scale to the sample, so only the "
     "shape is checked"),
)
# The Jacobians drawn: role -> (legend, colour).
ROLES = {"network": ("this network", COLORS["pre"]), "gaussian": ("Gaussian", COLORS["grad"]),
         "orthogonal": ("orthogonal", COLORS["saturated"])}


def bins_for(values: int) -> int:
    """About four values a bin, between MIN_BINS and MAX_BINS bins."""
    return int(np.clip(values // 4, MIN_BINS, MAX_BINS))


@dataclass(frozen=True)
class JacobianResult:
    role: str  # a key of ROLES
    config: SimConfig
    spectrum: JacobianSpectrum | None  # None when it could not be computed
    error: str | None


@dataclass(frozen=True)
class WeightResult:
    config: SimConfig
    layer: int  # 1-based
    scale: str  # a key of WEIGHT_SCALES
    spectrum: WeightSpectrum | None  # None when it was not computed
    error: str | None


def too_large(width: int, flops: float) -> str | None:
    """Why a spectrum is not computed, or None: a job cannot be interrupted inside its matrix
    products, so a change of the controls or closing the window would wait for it."""
    if width > MAX_SPECTRUM_WIDTH or flops > MAX_FLOPS:
        return (f"not computed: about {flops / FLOPS_PER_SECOND:.0f} s of matrix products, the view "
                f"stops at a few seconds (width up to {MAX_SPECTRUM_WIDTH}; fewer layers or a narrower net)")
    return None


def jacobian_result(role: str, config: SimConfig) -> JacobianResult:
    # One product of (input width x width) by (width x width) per layer, then the SVD; a residual
    # block also makes its own Jacobian, W1 D W2 and the norm's, (E + 1) products of width^3.
    per_layer = 2 * config.fan_in_first * config.width**2
    if config.residual != "none":
        per_layer += 2 * (config.expansion + 1) * config.width**3
    flops = config.layers * per_layer + 10 * config.width**3
    error = too_large(config.width, flops)
    spectrum = None
    if error is None:
        try:
            spectrum = jacobian_spectrum(config)
        except ConfigError as exc:
            error = str(exc)
    return JacobianResult(role, config, spectrum, error)


def matrix_fans(config: SimConfig, layer: int) -> tuple[int, int]:
    """(fan_in, fan_out) of the matrix the view shows of 1-based ``layer``: a plain layer's W, a
    residual block's W1 (width, expansion x width)."""
    return config.fans(layer) if config.residual == "none" else (config.width, config.hidden_width)


def layer_variance(config: SimConfig, layer: int) -> float | None:
    """E[W^2] of the shown matrix's entries from the scheme's formula (Fixup's W1: over L); None for
    weights read from a checkpoint, which have no formula: their own mean square is the law's scale."""
    if config.init in READ_SCHEMES:
        return None
    fan_in, fan_out = matrix_fans(config, layer)
    second_moment = get_scheme(config.init).second_moment(fan_in, fan_out, config.init_params)
    return second_moment / config.layers if config.fixup else second_moment


def layer_matrix(config: SimConfig, layer: int) -> np.ndarray:
    """The matrix the view shows of 1-based ``layer``, as the simulation draws it."""
    if config.residual == "none":
        return initial_weights(config, memory_limit())[layer - 1][0]
    return initial_blocks(config, memory_limit()).blocks[layer - 1].w1


def weight_result(config: SimConfig, layer: int, scale: str) -> WeightResult:
    fan_in, fan_out = matrix_fans(config, layer)
    small = min(fan_in, fan_out)
    error = too_large(small, 2 * fan_in * fan_out * small + 10 * small**3)  # the Gram matrix, eigvalsh
    if error is not None:
        return WeightResult(config, layer, scale, None, error)
    variance = layer_variance(config, layer) if scale == "formula" else None
    return WeightResult(config, layer, scale, weight_spectrum(layer_matrix(config, layer), variance), None)


def spectra_job(jacobians: list[tuple[str, SimConfig]], weights: tuple[SimConfig, int, str] | None):
    """The weight spectrum first (milliseconds), then each Jacobian asked for (up to seconds)."""
    def events(should_stop) -> Iterator[object]:
        if weights is not None:
            yield weight_result(*weights)
        for role, config in jacobians:
            if should_stop():
                return
            yield jacobian_result(role, config)
    return events


def shown_histogram(result: JacobianResult, log: bool):
    """All the singular values on a linear axis, the nonzero ones on a log axis; None if none."""
    spectrum = result.spectrum
    size = len(spectrum.nonzero) if log else len(spectrum.singular_values)
    return spectrum.histogram(bins_for(size), log) if size else None


# The columns of the Jacobian's numbers; the last is mean-field theory's mean s^2.
THEORY_COLUMN = "\u220f \u03c7\u2081(q<sup>l</sup>)"
JACOBIAN_COLUMNS = ("max s", "min s", "max/min", "rank", "spread", "mean s\u00b2", THEORY_COLUMN)


def jacobian_numbers(result: JacobianResult) -> dict[str, str]:
    """The engine's max, min, condition and mean s^2; the rank and the spread (std of log10 s, in
    decades) of the nonzero singular values; mean-field theory's mean s^2, the product of the
    layers' chi_1 along the network's own q^l."""
    spectrum = result.spectrum
    spread = f"{spectrum.log_spread:.3g}" if spectrum.rank else "\u2014"
    return dict(zip(JACOBIAN_COLUMNS, (
        number(spectrum.max), number(spectrum.min), number(spectrum.condition),
        f"{spectrum.rank} / {len(spectrum.singular_values)}", spread,
        number(spectrum.mean_square), number(spectrum.mean_square_theory))))


def table_row(name: str, cells) -> str:
    """A rich-text table row: the name, then the cells right-aligned. Spaces are made unbreakable,
    as a QLabel's tables wrap cells whatever nowrap says."""
    def unbroken(text: str) -> str:
        return text.replace(" ", "\u00a0")
    return (f"<tr><td>{unbroken(name)}</td>"
            + "".join(f"<td align=right>{unbroken(cell)}</td>" for cell in cells) + "</tr>")


COMPUTING = "computing\u2026"


class SpectraView(ComputedView):
    def __init__(self) -> None:
        super().__init__("spectra")
        self.config: SimConfig | None = None
        self.jacobians: dict[str, JacobianResult] = {}  # of the current config and comparison mode
        self.weights: WeightResult | None = None

        self.log_scale = named(QCheckBox("log\u2081\u2080 s"), "jacobian_log", "Histogram log10 of the "
                               "nonzero singular values: spreads over decades show as widths")
        self.log_scale.setChecked(True)
        self.log_scale.toggled.connect(self._show_jacobians)
        self.compare = named(QPushButton("Gaussian vs orthogonal"), "isometry_compare", COMPARE_TIP)
        self.compare.setCheckable(True)
        self.compare.toggled.connect(self._request_missing)
        self.layer = named(QSpinBox(), "spectrum_layer", "The layer whose weights are shown (layer 1's "
                           "fan-in is the input's)")
        self.layer.setRange(1, 1)
        self.layer.valueChanged.connect(self._request_missing)
        self.scale = named(QComboBox(), "spectrum_scale", "The variance the Marchenko-Pastur law is drawn "
                           "with: the scheme's E[W\u00b2] checks scale and shape, the layer's own mean "
                           "square the shape only")
        for key, text, tip in WEIGHT_SCALES:
            self.scale.addItem(text, key)
            self.scale.setItemData(self.scale.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.scale.currentIndexChanged.connect(self._request_missing)

        self.plots = pg.GraphicsLayoutWidget()
        self.jacobian_plot = self.plots.addPlot(row=0, col=0)
        self.weight_plot = self.plots.addPlot(row=0, col=1)
        for plot in (self.jacobian_plot, self.weight_plot):
            style_plot(plot)
            plot.setMouseEnabled(False, False)
            plot.showGrid(x=True, y=True, alpha=0.12)
            plot.setLabel("left", "density", **LABEL_STYLE)
        # Legends show a line of each colour (a filled step curve's own sample is a stray
        # triangle): the proxies are in the legends only, never in a plot.
        self.jacobian_legend = self.jacobian_plot.addLegend(offset=(-8, 8), labelTextSize="9pt")
        self.jacobian_curves, self.jacobian_proxies = {}, {}
        for role, (_, color) in ROLES.items():
            self.jacobian_curves[role] = self.jacobian_plot.plot([], [], **step_style(color))
            self.jacobian_proxies[role] = pg.PlotDataItem(pen=pg.mkPen(color, width=4))
        self.weight_histogram = self.weight_plot.plot([], [], **step_style(COLORS["post"]))
        law_pen = pg.mkPen("#222222", width=2, style=Qt.PenStyle.DashLine)
        self.law = self.weight_plot.plot([], [], pen=law_pen, antialias=True)
        weight_legend = self.weight_plot.addLegend(offset=(-8, 8), labelTextSize="9pt")
        weight_legend.addItem(pg.PlotDataItem(pen=pg.mkPen(COLORS["post"], width=4)), "eigenvalues")
        weight_legend.addItem(pg.PlotDataItem(pen=law_pen), "Marchenko-Pastur")
        self.weight_plot.setLabel("bottom", "eigenvalue of W\u1d40W / fan-in", **LABEL_STYLE)
        self.jacobian_note = PlotNote(self.jacobian_plot)
        self.weight_note = PlotNote(self.weight_plot)

        self.jacobian_numbers = numbers_label("jacobian_numbers", "The singular values s of "
                                              "d(output)/d(input) at one input: max, min, condition "
                                              "max/min, rank (how many are not zero up to rounding), "
                                              "spread (std of log10 s over those, in decades), and mean "
                                              "s\u00b2 against mean-field theory's: the product over the "
                                              "layers of chi_1 = sigma_w^2 E[phi'(u)^2] at the network's "
                                              "own pre-activation variance q^l, which starts from the "
                                              "input's (times fan-out / fan-in for a narrower input)")
        self.weight_numbers = numbers_label("weight_numbers", "The layer's shape, the law's variance "
                                            "and support, the eigenvalues' range, and the Kolmogorov-"
                                            "Smirnov distance between them and the law")
        jacobian_bar = QHBoxLayout()
        jacobian_bar.addWidget(self.compare)
        jacobian_bar.addWidget(self.log_scale)
        jacobian_bar.addStretch(1)
        weight_bar = QHBoxLayout()
        self.layer_label = QLabel("Layer")
        weight_bar.addWidget(self.layer_label)
        weight_bar.addWidget(self.layer)
        weight_bar.addStretch(1)
        weight_bar.addWidget(self.scale)
        grid = QGridLayout()
        grid.setContentsMargins(8, 4, 8, 0)
        grid.setHorizontalSpacing(24)
        grid.addLayout(jacobian_bar, 0, 0)
        grid.addLayout(weight_bar, 0, 1)
        numbers = QGridLayout()
        numbers.setContentsMargins(8, 0, 8, 4)
        numbers.setHorizontalSpacing(24)
        # A window too narrow for the table cuts the table, never the plots above it.
        self.jacobian_numbers.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        numbers.addWidget(self.jacobian_numbers, 0, 0)
        numbers.addWidget(self.weight_numbers, 0, 1)
        for column in (0, 1):
            grid.setColumnStretch(column, 1)
        # The table needs a little more room than the lines beside it.
        numbers.setColumnStretch(0, 11)
        numbers.setColumnStretch(1, 9)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)
        layout.addWidget(self.plots, 1)
        layout.addLayout(numbers)
        # On a projector's small screen the plots, the lesson, keep the room; the numbers give way.
        self.numbers_give_way = DetailsGiveWay(self, [self.jacobian_numbers, self.weight_numbers], DETAILS_LINES)

    # --- the window's calls -------------------------------------------------------------------

    def show_state(self, state: RunState) -> None:
        if state.config == self.config:
            return
        first = self.config is None
        self.config = state.config
        self.layer_label.setText("Layer" if self.config.residual == "none" else "Block (W1)")
        # A checkpoint's layers differ in width and in sigma_w^2: Gaussian or orthogonal weights of one
        # sigma_w^2 at one width would be another network.
        read = self.config.init in READ_SCHEMES
        if read:
            self.compare.setChecked(False)
        self.compare.setEnabled(not read)
        self.compare.setToolTip(COMPARE_TIP if not read else "Off for a checkpoint's own weights: its layers "
                                "differ in width and in \u03c3w\u00b2, so no Gaussian or orthogonal network of "
                                "one \u03c3w\u00b2 is its twin")
        self.layer.blockSignals(True)
        self.layer.setRange(1, self.config.layers)
        if first:
            self.layer.setValue(min(2, self.config.layers))  # a hidden layer: fan-in = width
        self.layer.blockSignals(False)
        self._request_missing()

    def show_isometry(self, shown: bool) -> None:
        """Gaussian against orthogonal weights (``shown``), or this network's Jacobian alone, as the
        Gaussian vs orthogonal button does (a tour's step sets it)."""
        self.compare.setChecked(shown)

    # --- the background work --------------------------------------------------------------

    def up_to_date(self) -> bool:
        """What is shown is what the config and the settings ask for (for scripts and tests)."""
        return self.weights_current() and all(role in self.jacobians for role, _ in self.wanted_jacobians())

    def weights_current(self) -> bool:
        """The weight spectrum held is the one the config and the settings ask for."""
        weights = self.weights
        return (self.config is not None and weights is not None
                and (weights.config, weights.layer, weights.scale) == self.wanted_weights())

    def wanted_jacobians(self) -> list[tuple[str, SimConfig]]:
        if not self.compare.isChecked():
            return [("network", self.config)]
        gaussian, orthogonal = isometry_pair(self.config)
        return [("gaussian", gaussian), ("orthogonal", orthogonal)]

    def wanted_weights(self) -> tuple[SimConfig, int, str]:
        return self.config, self.layer.value(), self.scale.currentData()

    def _request_missing(self) -> None:
        """Start computing what the current config and settings need and is not shown yet."""
        if self.config is None:
            return
        jacobians = self.wanted_jacobians()
        self.jacobians = {role: result for role, result in self.jacobians.items()
                          if (role, result.config) in jacobians}
        missing = [(role, config) for role, config in jacobians if role not in self.jacobians]
        have_weights = self.weights_current()
        request = (missing, None if have_weights else self.wanted_weights())
        self._show_jacobians()
        self._show_weights()
        if missing or not have_weights:
            self.runner.request(request, spectra_job(*request))

    def fold(self, events: list) -> None:
        for event in events:
            if isinstance(event, WeightResult):
                self.weights = event
            else:
                self.jacobians[event.role] = event
        self._show_jacobians()
        self._show_weights()

    def show_failure(self, message: str) -> None:
        self.jacobian_numbers.setText(f"The spectra failed: {message}")

    # --- painting -------------------------------------------------------------------------

    def _show_jacobians(self) -> None:
        log = self.log_scale.isChecked()
        roles = [role for role, _ in self.wanted_jacobians()] if self.config is not None else []
        rows = []
        undrawn = []  # (legend, why) of each Jacobian wanted and not drawn
        for role, curve in self.jacobian_curves.items():
            result = self.jacobians.get(role) if role in roles else None
            legend, _ = ROLES[role]
            proxy = self.jacobian_proxies[role]
            if self.jacobian_legend.getLabel(proxy) is not None:
                self.jacobian_legend.removeItem(proxy)
            if result is None or result.spectrum is None:
                curve.setData([], [])
                if role in roles:
                    why = COMPUTING if result is None else result.error
                    rows.append(f"<tr><td><b>{legend}</b></td><td colspan=7>{why}</td></tr>")
                    undrawn.append((legend, why))
                continue
            histogram = shown_histogram(result, log)
            if histogram is None:
                curve.setData([], [])
                undrawn.append((legend, f"all {len(result.spectrum.singular_values)} singular values are 0 "
                                        "(no signal passes), and log\u2081\u2080 0 has no place on the axis."))
            else:
                curve.setData(histogram.edges, density_steps(histogram.counts, histogram.edges))
            if len(roles) > 1:
                self.jacobian_legend.addItem(proxy, legend)
            rows.append(table_row(f"<b>{legend}</b>", jacobian_numbers(result).values()))
        self.jacobian_plot.setLabel("bottom", "log\u2081\u2080 of the singular value s" if log
                                    else "singular value s", **LABEL_STYLE)
        # Titles stay short: a plot's title sets its least width, and two side by side must fit
        # the narrowest window.
        compare = self.compare.isChecked()
        self.jacobian_plot.setTitle("Gaussian vs orthogonal weights" if compare else
                                    "Input-output Jacobian", size="10pt")
        if len(undrawn) == len(roles) and roles:  # nothing drawn: say why in the plot
            self.jacobian_note.say(" ".join(f"{legend}: {why}" if len(roles) > 1 else sentence(why)
                                            for legend, why in undrawn))
        else:
            self.jacobian_note.say(" ".join(f"{legend}: {why}" if why == COMPUTING else f"Not drawn, {legend}: {why}."
                                            for legend, why in undrawn), "aside")
        self.jacobian_numbers.setText(self._jacobian_heading(compare) + "<table cellspacing=0 cellpadding=2>"
                                      + table_row("", (f"<b>{name}</b>" for name in JACOBIAN_COLUMNS))
                                      + "".join(rows) + "</table>")

    def _jacobian_heading(self, compare: bool) -> str:
        if self.config is None:
            return ""
        if not compare:
            return (f"Singular values s of d x<sub>{self.config.layers}</sub> / d x<sub>0</sub> at one "
                    "input:")
        sigma_w2, sigma_b2 = config_sigmas(self.config)
        return (f"Both at this network's \u03c3<sub>w</sub><sup>2</sup> = {number(sigma_w2)} and "
                f"\u03c3<sub>b</sub><sup>2</sup> = {number(sigma_b2)}:")

    def _show_weights(self) -> None:
        """The last weight spectrum computed; its numbers only while it is the one wanted."""
        result = self.weights
        current = self.weights_current()
        if not current:
            self.weight_numbers.setText(COMPUTING if self.config is not None else "")
        if result is None:
            self.weight_note.say(COMPUTING if self.config is not None else "")
            return
        spectrum = result.spectrum
        if spectrum is None:
            self.weight_histogram.setData([], [])
            self.law.setData([], [])
            if current:
                self.weight_numbers.setText(result.error)
            self.weight_note.say(sentence(result.error))
            return
        self.weight_note.say("Every weight is 0, so is every eigenvalue: no Marchenko-Pastur law of variance 0 "
                             "to draw." if spectrum.variance == 0 else "", "aside")
        histogram = spectrum.histogram(bins_for(spectrum.fan_out))
        density = density_steps(histogram.counts, histogram.edges)
        self.weight_histogram.setData(histogram.edges, density)
        x = np.linspace(histogram.edges[0], histogram.edges[-1], DENSITY_POINTS)
        law = spectrum.density(x) if spectrum.variance > 0 else np.zeros_like(x)  # zero weights: no law
        self.law.setData(x, law)
        bulk = float(np.percentile(law[law > 0], DENSITY_PERCENTILE)) if (law > 0).any() else 0.0
        self.weight_plot.setYRange(0, max(float(density.max()), bulk) * 1.08, padding=0)
        self.weight_plot.setXRange(histogram.edges[0], histogram.edges[-1], padding=0.02)
        self.weight_plot.setTitle(f"Weights of layer {result.layer}" if result.config.residual == "none"
                                  else f"W1 of block {result.layer}", size="10pt")
        if current:
            self.weight_numbers.setText("<br>".join(weight_lines(result)))


def weight_lines(result: WeightResult) -> list[str]:
    """The weight spectrum's numbers, and why the law may not hold."""
    spectrum = result.spectrum
    if spectrum.variance == 0:
        return [f"{result.config.init}, {spectrum.fan_in} \u2192 {spectrum.fan_out}: every weight is 0, so is "
                "every eigenvalue; there is no Marchenko-Pastur law of variance 0 to compare with."]
    low, high = spectrum.support
    # A checkpoint's weights have no formula: their law's scale is their own mean square.
    scale = "measured" if result.config.init in READ_SCHEMES else result.scale
    scale_text = {key: text for key, text, _ in WEIGHT_SCALES}[scale]
    lines = [f"{result.config.init}, {spectrum.fan_in} \u2192 {spectrum.fan_out}: Marchenko-Pastur of ratio "
             f"{spectrum.ratio:.3g} and variance {spectrum.variance:.4g} ({scale_text}), support "
             f"[{low:.4g}, {high:.4g}]",
             f"eigenvalues in [{spectrum.eigenvalues[0]:.4g}, {spectrum.eigenvalues[-1]:.4g}], "
             f"Kolmogorov-Smirnov distance to the law {spectrum.ks_distance():.3f}"]
    scheme = get_scheme(result.config.init)
    if not scheme.iid or scheme.data_dependent:
        lines.append("<i>This scheme's entries are not i.i.d.: the law need not hold.</i>")
    if spectrum.ratio > 1:
        lines.append(f"<i>fan-out > fan-in: {spectrum.fan_out - spectrum.fan_in} eigenvalues are 0 "
                     "(the law's atom, not drawn).</i>")
    return lines
