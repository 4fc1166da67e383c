"""The Theory view: the order/chaos phase diagram of the chosen activation, the critical line, and
the current network's point on it; a click moves the network to the clicked point."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout

from initsim.engine import SimConfig, get_activation, get_scheme
from initsim.engine.phase_export import (MarkedPoint, axes_from_zero, default_extent, extent_holding,
                                         zero_weights_label)
from initsim.engine.schemes import READ_SCHEMES
from initsim.engine.theory import (MeanField, PhaseDiagram, config_at, config_sigmas, layer_sigmas, mean_field,
                                   phase_diagram, phase_of)

from .phase_plot import CHI1, COLOR_MODES, SIGMA_B2, SIGMA_W2, XI, PhaseFigure
from ..model.runstate import RunState
from ..widgets import ComputedView, named, note_label, number, numbers_label

GRID = 200  # points a side of the phase diagram
# A click is rounded to about a pixel of a 500-pixel-wide diagram: 1.762, not 1.76183209.
CLICK_STEPS = 500


def round_to_span(value: float, span: float) -> float:
    """``value`` rounded to the power of ten just below span / CLICK_STEPS."""
    decimals = max(0, -math.floor(math.log10(span / CLICK_STEPS)))
    return round(value, decimals)


@dataclass(frozen=True)
class PointTheory:
    """Mean-field theory at the network's own (sigma_w^2, sigma_b^2)."""

    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    depth_scale: float


@dataclass(frozen=True)
class DiagramResult:
    diagram: PhaseDiagram
    params: tuple  # the activation's parameters, sorted items: which activation it is of
    default_extent: tuple[float, float]  # the axes' ends the activation has by default


def network_mean_field(config: SimConfig) -> MeanField:
    """Mean-field theory at the config's own (sigma_w^2, sigma_b^2): q*, chi_1, the depth scale.

    A network whose first pre-activations have no variance at all (zero weights, no bias) has no
    correlation to follow: numpy's warning about that 0 / 0 says nothing the view does not."""
    act, params = get_activation(config.activation), dict(config.activation_params)
    with np.errstate(invalid="ignore", divide="ignore"):
        return mean_field(act, params, *config_sigmas(config), depth=1)


def activation_key(config: SimConfig) -> tuple:
    return config.activation, tuple(sorted(config.activation_params.items()))


def theory_job(config: SimConfig, diagram_wanted: bool, extent: tuple[float, float] | None):
    """The point's theory, then, if wanted, the diagram on the axes ``extent`` (None: the
    activation's default axes, widened to hold the point)."""
    act, params = get_activation(config.activation), dict(config.activation_params)
    sigma_w2, sigma_b2 = config_sigmas(config)

    def events(should_stop) -> Iterator[object]:
        field = network_mean_field(config)
        yield PointTheory(sigma_w2, sigma_b2, field.q_star, field.chi1, field.depth_scale)
        if not diagram_wanted or should_stop():
            return
        default = default_extent(act, params)
        axes = axes_from_zero(extent or extent_holding(default, (sigma_w2, sigma_b2)), GRID)
        yield DiagramResult(phase_diagram(act, params, *axes), activation_key(config)[1], default)
    return events


class TheoryView(ComputedView):
    """``config_requested`` carries the config a click on the diagram asks for."""

    config_requested = Signal(object)

    def __init__(self) -> None:
        super().__init__("theory")
        self.config: SimConfig | None = None
        self.sigmas = (math.nan, math.nan)  # the config's (sigma_w^2, sigma_b^2)
        self.result: DiagramResult | None = None
        self.point: PointTheory | None = None

        self.mode = named(QComboBox(), "theory_mode", "What the colours show: chi_1 on a diverging "
                          "scale centred on chi_1 = 1, or the depth scale 1 / |ln chi_1| in layers")
        for mode in COLOR_MODES:
            self.mode.addItem("\u03c7\u2081 (order \u2194 chaos)" if mode.key == "chi1" else "depth scale \u03be",
                              mode.key)
            self.mode.setItemData(self.mode.count() - 1, mode.tooltip, Qt.ItemDataRole.ToolTipRole)
        self.mode.currentIndexChanged.connect(self._show_diagram)
        caption = note_label("Mean-field theory of an infinitely wide network: weights of variance "
                             "\u03c3w\u00b2 / fan-in, biases of variance \u03c3b\u00b2. Click anywhere "
                             "to give the network Gaussian weights and a normal bias at that point.")
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(6, 4, 6, 0)
        toolbar.addWidget(QLabel("Colour by"))
        toolbar.addWidget(self.mode)
        toolbar.addSpacing(12)
        toolbar.addWidget(caption, 1)

        self.plots = named(pg.GraphicsLayoutWidget(), "phase_diagram", "Click to set the init to "
                           "variance_scaling (Gaussian) with this \u03c3w\u00b2 and a normal bias with "
                           "this \u03c3b\u00b2")
        self.plots.setCursor(Qt.CursorShape.CrossCursor)
        self.figure = PhaseFigure(self.plots.ci)
        self.plots.scene().sigMouseClicked.connect(self._on_click)

        self.numbers = numbers_label("theory_numbers", "Mean-field theory at this network's own \u03c3w\u00b2 = "
                                     "fan_in E[W\u00b2] and \u03c3b\u00b2 = E[b\u00b2]: the fixed point q* of "
                                     "the pre-activation variance, chi_1 there, and the depth scale "
                                     "1 / |ln chi_1|")
        self.numbers.setContentsMargins(8, 2, 8, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.numbers)

    # --- the window's calls -------------------------------------------------------------------

    def show_state(self, state: RunState) -> None:
        if state.config == self.config:
            return
        self.config = state.config
        self.sigmas = sigma_w2, sigma_b2 = config_sigmas(self.config)
        self._place_marker()
        request = self._request(sigma_w2, sigma_b2)
        self.runner.request(request, theory_job(self.config, *request[1:]))
        self._show_numbers()

    def up_to_date(self) -> bool:
        """The numbers and the diagram shown are those of the config shown (for scripts and tests)."""
        return (self.config is not None and self.point is not None
                and (self.point.sigma_w2, self.point.sigma_b2) == self.sigmas
                and not self._request(*self.sigmas)[1])

    # --- the background work --------------------------------------------------------------

    def _request(self, sigma_w2: float, sigma_b2: float) -> tuple:
        """(point, diagram wanted, extent): the point's theory always, the diagram when the one
        shown is of another activation or on axes that this point would change."""
        point = (activation_key(self.config), sigma_w2, sigma_b2)
        shown = self.result
        if shown is None or (shown.diagram.activation, shown.params) != activation_key(self.config):
            return point, True, None
        extent = extent_holding(shown.default_extent, (sigma_w2, sigma_b2))
        current = (float(shown.diagram.sigma_w2[-1]), float(shown.diagram.sigma_b2[-1]))
        return (point, True, extent) if extent != current else (point, False, None)

    def fold(self, events: list) -> None:
        for event in events:
            if isinstance(event, PointTheory):
                self.point = event
            else:
                self.result = event
                self._show_diagram()
                self._place_marker()
        self._show_numbers()

    def show_failure(self, message: str) -> None:
        self.numbers.setText(f"The theory failed: {message}")

    # --- painting -------------------------------------------------------------------------

    def _show_diagram(self) -> None:
        if self.result is not None:
            self.figure.show(self.result.diagram, self.mode.currentData())

    def _place_marker(self) -> None:
        """At the config's point, once a diagram whose axes hold it is shown."""
        sigma_w2, sigma_b2 = self.sigmas
        self.figure.point.place(MarkedPoint(sigma_w2, sigma_b2, zero_weights_label("this network", sigma_w2)))

    def _show_numbers(self) -> None:
        config, point = self.config, self.point
        if config is None:
            return
        sigma_w2, sigma_b2 = self.sigmas
        head = (f"<b>This network</b> ({config.activation}, {config.init}, bias {config.bias_init}): "
                f"{SIGMA_W2} = {number(sigma_w2)}, {SIGMA_B2} = {number(sigma_b2)}")
        if point is None or (point.sigma_w2, point.sigma_b2) != (sigma_w2, sigma_b2):
            self.numbers.setText(head + " · computing…")
            return
        phase = phase_of(point.chi1)
        total = point.chi1 ** config.layers
        verdict = {
            "ordered": f"<b>ordered</b>: the gradient variance shrinks by a factor e every {number(point.depth_scale)} "
                       f"layers, ×{total:.3g} over its {config.layers}",
            "chaotic": f"<b>chaotic</b>: the gradient variance grows by a factor e every {number(point.depth_scale)} "
                       f"layers, ×{total:.3g} over its {config.layers}",
            "critical": "<b>critical</b>: signals keep their size through any depth",
        }.get(phase, "no fixed point")
        if point.chi1 == 0:  # sigma_w^2 = 0: a depth scale of 0 layers says nothing
            verdict = (f"<b>no signal</b>: with {SIGMA_W2} = 0 the input never reaches the next layer "
                       "and no gradient reaches the one before; every unit of a layer computes the same "
                       "value, a symmetry that training cannot break")
        notes = []
        if math.isinf(point.q_star):
            notes.append(f"No fixed point: the pre-activation variance grows without bound, and {CHI1} "
                         "is its limit there.")
        if not all(map(math.isfinite, self.sigmas)):
            notes.append("Its point, at an infinite variance, has no place on the diagram.")
        if config.residual != "none":
            notes.append("Residual blocks: the point is their W1's, on the diagram of plain layers; the blocks' "
                         "stream has no fixed point and follows its own recursion (Layer statistics draws it).")
        elif config.norm != "none":
            notes.append(f"With {config.norm} normalization the pre-activations are rescaled in every layer: "
                         "the diagram is of the plain network.")
        if get_scheme(config.init).data_dependent:
            notes.append("LSUV rescales each layer from the data: the point is its orthogonal start.")
        if config.init in READ_SCHEMES:
            spread = [layer_sigmas(config, layer)[0] for layer in range(1, config.layers + 1)]
            notes.append(f"A checkpoint's layers each have their own {SIGMA_W2}, here from {number(min(spread))} "
                         f"to {number(max(spread))}: the point is layer {min(2, config.layers)}'s, and Layer "
                         "statistics draws each layer's own theory.")
        self.numbers.setText(
            f"{head} · q* = {number(point.q_star)} · {CHI1} = {number(point.chi1)} · "
            f"{XI} = {number(point.depth_scale)} layers<br>{verdict}."
            + ("<br><i>" + " ".join(notes) + "</i>" if notes else ""))

    # --- the click ------------------------------------------------------------------------

    @Slot(object)
    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.config is None or self.result is None:
            return
        point = self.figure.phase.plot.vb.mapSceneToView(event.scenePos())
        if self.figure.phase.rect.contains(point):
            self.click_at(point.x(), point.y())

    def click_at(self, sigma_w2: float, sigma_b2: float) -> None:
        """Ask for the config at this point of the diagram, rounded to about a pixel."""
        diagram = self.result.diagram
        sigma_w2 = max(round_to_span(sigma_w2, float(diagram.sigma_w2[-1])), float(diagram.sigma_w2[0]))
        sigma_b2 = max(round_to_span(sigma_b2, float(diagram.sigma_b2[-1])), 0.0)
        self.config_requested.emit(config_at(self.config, sigma_w2, sigma_b2))

    def point_in_widget(self, sigma_w2: float, sigma_b2: float) -> QPoint:
        """The pixel of the diagram widget's viewport where (sigma_w^2, sigma_b^2) is drawn."""
        scene = self.figure.phase.plot.vb.mapViewToScene(QPointF(sigma_w2, sigma_b2))
        return self.plots.mapFromScene(scene)
