"""What every plot shares: a light theme, one colour per quantity, readable axis fonts; and the
plots of curves by step (the Training and Compare views): log axes that label their decades, gaps
where a value cannot be drawn, legends in a row of their own."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QSizePolicy

COLORS = {
    "pre": "#4C72B0",  # pre-activations
    "post": "#55A868",  # activations
    "grad": "#DD8452",  # gradients
    "dead": "#C44E52",
    "saturated": "#8172B3",
    "muted": "#8a8a8a",
}
HEATMAP = "viridis"
# Things of one kind told apart by colour (a task's classes, the schemes compared), in order.
SERIES_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52")
MIN_DECADES = 2.0  # the least a fitted log axis spans
# Tick labels, in pixels (not points: the same on every screen's DPI setting): 12 reads from a
# desk; presenter mode draws the plots 1.6 times larger (theme.ZOOM), 19 px, for a lecture hall.
TICK_PIXELS = 12
# The least height of a plot's data area, in the layout's pixels: where a view lacks room (presenter
# mode on a small screen) its plots keep this and presenter mode draws them less enlarged
# (theme.PresenterMode._zoom), rather than squash the data to a strip under full-size labels.
MIN_DATA_HEIGHT = 56


def configure() -> None:
    # Antialiasing only where a curve asks for it: on every filled histogram it costs paint time.
    pg.setConfigOptions(background="w", foreground="#3a3a3a", antialias=False)


def tick_font() -> QFont:
    """The font of every plot's tick labels (and of what reads like one, a bin's height)."""
    font = QFont()
    font.setPixelSize(TICK_PIXELS)
    return font


def style_plot(plot: pg.PlotItem) -> None:
    """Fixed, static axes: no context menu, no auto-range button, tick labels of one size."""
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.getViewBox().setMinimumHeight(MIN_DATA_HEIGHT)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setTickFont(tick_font())
        axis.setTextPen("#3a3a3a")
        axis.setPen("#9a9a9a")
        axis.enableAutoSIPrefix(False)  # "value (x0.001)" over ticks of 500 reads worse than 0.5


def density_steps(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts as a density, to lay a pdf over: the histogram's area is 1."""
    total = counts.sum()
    return counts / (total * np.diff(edges)) if total else np.zeros(len(counts))


def step_style(color: str) -> dict:
    """A histogram drawn as a filled step curve."""
    fill = pg.mkColor(color)
    fill.setAlpha(100)
    return dict(stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(color, width=1.5))


def title_never_sizes(plot: pg.PlotItem) -> None:
    """Keeps ``plot``'s title from sizing the plot. A LabelItem asks for its text's width again at
    each resize and each text, and a grid gives its columns widths in proportion to what they
    ask: a title that grew (a histogram's std 0.0123 for 0.01, "at step 300" for "at step 30")
    relaid out the grid and repainted every plot, where the title alone repaints at a fraction of
    the cost; and a long title made a row of plots wider than a 1280-pixel window."""
    label = plot.titleLabel
    ask_for_text_size = label.updateMin

    def ask_for_height_only() -> None:
        ask_for_text_size()
        label.setMinimumWidth(0)
        label.setPreferredWidth(0)

    label.updateMin = ask_for_height_only
    ask_for_height_only()


def positive(values: np.ndarray) -> np.ndarray:
    """What a log axis draws: a copy with zeros, negatives and non-finite values as gaps (NaN)."""
    values = np.array(values, dtype=float)
    values[~(values > 0) | ~np.isfinite(values)] = np.nan
    return values


def finite(values: np.ndarray) -> np.ndarray:
    """What a linear axis draws: a copy with non-finite values as gaps (NaN)."""
    values = np.array(values, dtype=float)
    values[~np.isfinite(values)] = np.nan
    return values


def fit_log_range(plot: pg.PlotItem, *series: np.ndarray) -> None:
    """Set ``plot``'s log y axis to span the positive finite values of ``series``, and at least
    MIN_DECADES: a flat curve then looks flat, and the noise of a near-constant one does not fill
    the plot (auto-range zooms into it, without a single tick label)."""
    values = np.concatenate([positive(np.ravel(s)) for s in series])
    values = values[~np.isnan(values)]
    if not values.size:
        return
    low, high = np.log10(values.min()), np.log10(values.max())
    middle, half = (low + high) / 2, max(high - low, MIN_DECADES) / 2
    plot.setYRange(middle - half, middle + half, padding=0.05)


# Room for the left axis's ticks and label. A fixed width: as the ranges move, tick labels of a new
# width would otherwise relayout, and so repaint in full, every plot of the view several times a frame.
LEFT_AXIS_WIDTH = 62


class DecadeAxis(pg.AxisItem):
    """A log axis that labels the decades first, then the 2 and 5 multiples, then the rest, each
    level only where its labels fit. (pyqtgraph's own, over a range of under about three decades,
    puts every multiple 1..9 in its first level, which is always labelled: in a short plot the
    labels pile up.)"""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        if len(ticks) != 1 or ticks[0][0] is not None:  # decades at the first level already
            return ticks
        levels: list[list[float]] = [[], [], []]
        for value in ticks[0][1]:
            multiple = round(10 ** (value - np.floor(value + 1e-9)))
            levels[0 if multiple == 1 else 1 if multiple in (2, 5) else 2].append(value)
        return [(1.0, levels[0]), (None, levels[1]), (None, levels[2])]


class LayerAxis(pg.AxisItem):
    """An axis of layers: ticks at whole layers only (pyqtgraph's own put them at 1.5, 2.5 for
    a few layers)."""

    def tickSpacing(self, minVal, maxVal, size):
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size)
                  if spacing >= 1]
        return levels or [(1.0, 0.0)]


def make_plot(title: str, left: str, bottom: str = "step", log_y: bool = False) -> pg.PlotItem:
    """A plot of a view: ``bottom`` "layer" gets whole-layer ticks, ``log_y`` a decade-first log
    axis."""
    axes = {"left": DecadeAxis("left")} if log_y else {}
    if bottom == "layer":
        axes["bottom"] = LayerAxis("bottom")
    plot = pg.PlotItem(axisItems=axes or None)
    style_plot(plot)
    title_never_sizes(plot)
    plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
    plot.setTitle(title, size="9.5pt")
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setLogMode(False, log_y)
    plot.setMouseEnabled(False, False)
    # A long run draws about one point per pixel column, its peaks kept: drawn in full, tens of
    # thousands of steps on dozens of curves make every frame slow.
    plot.setDownsampling(auto=True, mode="peak")
    return plot


def add_legend_row(layout: pg.GraphicsLayout, row: int, col: int, colspan: int, columns: int
                   ) -> pg.LegendItem:
    """A legend in a row of its own under a plot: it never covers the data."""
    legend = pg.LegendItem(labelTextSize="8.5pt", colCount=columns)
    legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    layout.addItem(legend, row=row, col=col, colspan=colspan)
    return legend
