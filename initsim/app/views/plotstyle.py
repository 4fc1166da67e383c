"""The look shared by every plot: a light theme, one colour per quantity, readable axis fonts."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFont

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


def configure() -> None:
    # Antialiasing only where a curve asks for it: on every filled histogram it costs paint time.
    pg.setConfigOptions(background="w", foreground="#3a3a3a", antialias=False)


def axis_font(point_size: float = 8.5) -> QFont:
    font = QFont()
    font.setPointSizeF(point_size)
    return font


def style_plot(plot: pg.PlotItem, point_size: float = 8.5) -> None:
    """Fixed, static axes: no context menu, no auto-range button, smaller tick labels."""
    plot.setMenuEnabled(False)
    plot.hideButtons()
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setTickFont(axis_font(point_size))
        axis.setTextPen("#3a3a3a")
        axis.setPen("#9a9a9a")
        axis.enableAutoSIPrefix(False)  # "value (x0.001)" over ticks of 500 reads worse than 0.5
