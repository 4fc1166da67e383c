"""Images over the (sigma_w^2, sigma_b^2) plane, shared by the Theory and Sweep views: chi_1 on a
diverging scale whose white is chi_1 = 1, or the depth scale on a sequential one, the critical line
drawn over either, and the colour bar that reads in chi_1 or in layers, not in logarithms; and the
figure of one activation's order/chaos diagram with a network's point on it, which the Theory view
shows and `initsim phase` writes."""

from __future__ import annotations

import math
from html import escape
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from initsim.engine.phase_export import MarkedPoint
from initsim.engine.theory import PhaseDiagram, depth_scale

from .plotstyle import style_plot

SIGMA_W2 = "\u03c3<sub>w</sub><sup>2</sup>"
SIGMA_B2 = "\u03c3<sub>b</sub><sup>2</sup>"
CHI1 = "\u03c7<sub>1</sub>"
XI = "\u03be"

# ln chi_1 is coloured over [-limit, limit]: the chaotic side's own extent (tanh reaches only
# chi_1 ~ 1.24 at 3x its critical sigma_w^2, ReLU 3), so that both phases show their structure
# near the line, never less than chi_1 in [0.78, 1.28] nor more than [0.14, 7.4].
LOG_CHI_LIMITS = (0.25, 2.0)
CHI_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.0, 1.25, 2.0, 3.0, 5.0)
# Depth scales from 1/3 layer to 1000 layers, on a log scale; the critical line's infinite depth
# scale is drawn at the top.
LOG_DEPTH_LEVELS = (-0.5, 3.0)
DEPTH_TICKS = (0.3, 1, 3, 10, 30, 100, 300, 1000)
# Axis titles a little larger and darker than pyqtgraph's: they carry the symbols.
LABEL_STYLE = {"font-size": "10pt", "color": "#303030"}
PADDING = 0.015  # of the view around a diagram's grid, a fraction of its extent
MARKED_PADDING = 0.04  # around a diagram with a network's marker: room for all of it at a corner
MARKER_SIZE = 14  # pixels across
# A phase whose region is less than this fraction of the diagram is not named on it: its name,
# wider than the region, would lie on the other phase.
MIN_NAMED_FRACTION = 0.03


@dataclass(frozen=True)
class ColorMode:
    key: str
    label: str  # the colour bar's title
    tooltip: str
    colormap: str


COLOR_MODES = (
    ColorMode("chi1", f"{CHI1} (log scale)", "Colour by chi_1, the per-layer factor of the gradient "
              "variance: blue ordered (vanishing), white critical (chi_1 = 1), red chaotic (exploding)",
              "CET-D1"),
    ColorMode("depth", f"depth scale {XI} (layers, log scale)", "Colour by the depth scale "
              "1 / |ln chi_1|: how many layers a signal keeps its size; infinite on the critical line",
              "viridis"),
)
MODES = {mode.key: mode for mode in COLOR_MODES}


def log_chi_limit(chi1: np.ndarray) -> float:
    """Half the symmetric colour range of ln chi_1 for a diagram of ``chi1``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_chi = np.log(chi1)
    finite = log_chi[np.isfinite(log_chi)]
    top = float(finite.max()) if finite.size else LOG_CHI_LIMITS[1]
    return float(np.clip(top, *LOG_CHI_LIMITS))


def levels(mode: str, chi1: np.ndarray) -> tuple[float, float]:
    if mode == "chi1":
        limit = log_chi_limit(chi1)
        return -limit, limit
    return LOG_DEPTH_LEVELS


def image_values(mode: str, chi1: np.ndarray, level_range: tuple[float, float]) -> np.ndarray:
    """What an image shows of ``chi1`` (rows sigma_b^2, columns sigma_w^2): ln chi_1 or log10 of the
    depth scale, transposed to pyqtgraph's (x, y) order and clipped to the colour range, so that
    infinities take the end colours. NaN (no value, or not measured yet) stays NaN: transparent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log(chi1) if mode == "chi1" else np.log10(depth_scale(chi1))
    return np.clip(values, *level_range).T


def _tick_label(value: float) -> str:
    return f"{value:g}"


def color_ticks(mode: str, low: float, high: float) -> list[tuple[float, str]]:
    """Colour-bar ticks at round chi_1 values or depths, placed on the bar's log scale."""
    if mode == "chi1":
        return [(math.log(t), _tick_label(t)) for t in CHI_TICKS if low - 1e-9 <= math.log(t) <= high + 1e-9]
    return [(math.log10(t), _tick_label(t)) for t in DEPTH_TICKS if low <= math.log10(t) <= high]


def cell_rect(sigma_w2: Sequence[float], sigma_b2: Sequence[float]) -> QRectF:
    """The rectangle an image of one pixel per grid point covers: each pixel centred on its point."""
    w2, b2 = np.asarray(sigma_w2, float), np.asarray(sigma_b2, float)
    dx = (w2[-1] - w2[0]) / max(len(w2) - 1, 1) if len(w2) > 1 else 1.0
    dy = (b2[-1] - b2[0]) / max(len(b2) - 1, 1) if len(b2) > 1 else 1.0
    return QRectF(w2[0] - dx / 2, b2[0] - dy / 2, w2[-1] - w2[0] + dx, b2[-1] - b2[0] + dy)


class PhasePlot:
    """A plot of the (sigma_w^2, sigma_b^2) plane: one image and the critical line, created once."""

    def __init__(self, plot: pg.PlotItem, title: str) -> None:
        self.plot = plot
        style_plot(plot)
        plot.setTitle(title, size="10pt")
        plot.setLabel("bottom", SIGMA_W2, **LABEL_STYLE)
        plot.setLabel("left", SIGMA_B2, **LABEL_STYLE)
        plot.setMouseEnabled(False, False)
        self.image = pg.ImageItem()
        plot.addItem(self.image)
        self.critical = plot.plot([], [], pen=pg.mkPen("#111111", width=2, style=Qt.PenStyle.DashLine),
                                  connect="finite", antialias=True)
        self.critical.setZValue(5)
        self.rect = QRectF()

    def set_grid(self, sigma_w2: Sequence[float], sigma_b2: Sequence[float], padding: float = PADDING) -> None:
        """Frame the grid's cells; the next `show` lays the image over them."""
        rect = cell_rect(sigma_w2, sigma_b2)
        if rect != self.rect:
            self.rect = rect
            self.plot.setRange(rect=rect, padding=padding)

    def show(self, mode: str, chi1: np.ndarray, level_range: tuple[float, float]) -> None:
        # The rect goes with the image: an ImageItem scales itself by its image's shape.
        self.image.setImage(image_values(mode, chi1, level_range), autoLevels=False, levels=level_range,
                            rect=self.rect)

    def set_critical_line(self, critical_sigma_w2: np.ndarray, sigma_b2: np.ndarray) -> None:
        self.critical.setData(np.asarray(critical_sigma_w2, float), np.asarray(sigma_b2, float),
                              connect="finite")


def color_bar(images: list[pg.ImageItem]) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("CET-D1"), interactive=False,
                          width=14, colorMapMenu=False)
    bar.setImageItem(images)
    style_plot(bar)
    bar.getAxis("right").enableAutoSIPrefix(False)  # its ticks are labelled by hand
    return bar


def set_color_mode(bar: pg.ColorBarItem, mode: str, level_range: tuple[float, float]) -> None:
    """The bar's colours, range, ticks and title for ``mode``."""
    bar.setColorMap(pg.colormap.get(MODES[mode].colormap))
    bar.setLevels(level_range)
    axis = bar.getAxis("right")
    axis.setTicks([color_ticks(mode, *level_range)])
    axis.setLabel(MODES[mode].label, **LABEL_STYLE)


def anchor_inside(x: float, y: float, rect: QRectF) -> tuple[float, float]:
    """A label's anchor at (x, y) in ``rect`` that keeps it inside: centred on the point in the
    middle, leaning in as the point nears an edge (the label's left edge on the point at the left
    edge, its bottom at the bottom, and so on)."""
    return (x - rect.left()) / rect.width(), 1 - (y - rect.top()) / rect.height()


def label_anchor(right_half: bool, upper_half: bool, size: tuple[float, float], gap: float
                 ) -> tuple[float, float]:
    """A TextItem's anchor (fractions of its ``size`` in pixels) that puts it beside its point, on
    the side of the plot's middle (left of a point in the right half, below one in the upper half),
    ``gap`` pixels clear of it in x and y: wherever the point is, the label stays inside the plot."""
    width, height = size
    return (1 + gap / width if right_half else -gap / width,
            -gap / height if upper_half else 1 + gap / height)


class PointMarker:
    """A network's point on a PhasePlot: a marker, and its label beside it towards the plot's middle.
    Hidden while the point lies off the plot's grid (its diagram is still being computed, or the
    point has no finite place)."""

    def __init__(self, phase: PhasePlot) -> None:
        self.phase = phase
        self.marker = pg.ScatterPlotItem(size=MARKER_SIZE, symbol="o", pen=pg.mkPen("#111111", width=2.5),
                                         brush=pg.mkBrush("#ffd400"))
        self.label = pg.TextItem(fill=pg.mkBrush(255, 255, 255, 200))
        for item in (self.marker, self.label):
            item.setZValue(8)
            item.hide()
            phase.plot.addItem(item)

    def place(self, point: MarkedPoint) -> None:
        x, y, rect = point.sigma_w2, point.sigma_b2, self.phase.rect
        on_grid = rect.left() <= x <= rect.right() and rect.top() <= y <= rect.bottom()
        self.marker.setVisible(on_grid)
        self.label.setVisible(on_grid)
        if not on_grid:
            return
        self.marker.setData([x], [y])
        self.label.setHtml(f'<span style="font-size:9pt; color:#111">{escape(point.label)}</span>')
        text = self.label.textItem.boundingRect()
        middle = rect.center()
        self.label.setAnchor(label_anchor(x > middle.x(), y > middle.y(), (text.width(), text.height()),
                                          MARKER_SIZE / 2))
        self.label.setPos(x, y)

    def position(self) -> tuple[float, float] | None:
        """Where the marker is drawn, in (sigma_w^2, sigma_b^2); None while it is hidden."""
        if not self.marker.isVisible():
            return None
        x, y = self.marker.getData()
        return float(x[0]), float(y[0])


class PhaseFigure:
    """One activation's order/chaos diagram in ``layout``: chi_1 or the depth scale as colours, the
    critical line, each phase's name on its region, the colour bar, and a network's point."""

    def __init__(self, layout: pg.GraphicsLayout) -> None:
        self.phase = PhasePlot(layout.addPlot(row=0, col=0), "Order and chaos")
        self.bar = color_bar([self.phase.image])
        layout.addItem(self.bar, row=0, col=1)
        self.region_labels = {}
        for phase, color in (("ordered", "#1d3f8f"), ("chaotic", "#8f1d1d")):
            label = pg.TextItem(html=f'<span style="font-size:11pt; font-weight:600; color:{color}">'
                                     f'{phase}</span>', anchor=(0.5, 0.5), fill=pg.mkBrush(255, 255, 255, 190))
            label.setZValue(6)
            label.hide()
            self.phase.plot.addItem(label)
            self.region_labels[phase] = label
        self.point = PointMarker(self.phase)

    def show(self, diagram: PhaseDiagram, mode: str) -> None:
        """``diagram`` coloured as ``mode`` (a COLOR_MODES key) says."""
        level_range = levels(mode, diagram.chi1)
        self.phase.set_grid(diagram.sigma_w2, diagram.sigma_b2, MARKED_PADDING)
        self.phase.show(mode, diagram.chi1, level_range)
        self.phase.set_critical_line(diagram.critical_sigma_w2, diagram.sigma_b2)
        set_color_mode(self.bar, mode, level_range)
        self.phase.plot.setTitle(f"Order and chaos: {diagram.activation}", size="10pt")
        self._place_region_labels(diagram)

    def _place_region_labels(self, diagram: PhaseDiagram) -> None:
        """Each phase's name at the centre of its region, hidden when the region is a sliver."""
        w2, b2 = np.meshgrid(diagram.sigma_w2, diagram.sigma_b2)
        for phase, inside in (("ordered", diagram.chi1 < 1), ("chaotic", diagram.chi1 > 1)):
            label = self.region_labels[phase]
            named = bool(inside.mean() >= MIN_NAMED_FRACTION)
            label.setVisible(named)
            if named:
                x, y = float(w2[inside].mean()), float(b2[inside].mean())
                label.setAnchor(anchor_inside(x, y, self.phase.rect))
                label.setPos(x, y)


def figure_widget(diagram: PhaseDiagram, point: MarkedPoint | None, size: QSize) -> QWidget:
    """A widget of ``size``, never shown on screen, laid out with ``diagram`` coloured by chi_1 and
    ``point`` on it: the Theory view's diagram alone, for rendering into a file. (The plots sit in
    a plain widget: a GraphicsLayoutWidget's own render() draws its scene onto a painter.)"""
    widget = QWidget()
    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    plots = pg.GraphicsLayoutWidget()
    QVBoxLayout(widget).setContentsMargins(0, 0, 0, 0)
    widget.layout().addWidget(plots)
    figure = PhaseFigure(plots.ci)
    figure.show(diagram, "chi1")
    if point is not None:
        figure.point.place(point)
    widget.resize(size)
    widget.show()
    QApplication.processEvents()  # the layout, and the axes' ticks for its size
    return widget
