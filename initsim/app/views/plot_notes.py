"""Plain words inside a plot's area where it cannot draw: why it is empty ("all weights are zero:
every unit computes the same value; std 0 cannot be drawn on a log axis"), or why a curve is
missing from it. A plot that draws nothing without a word reads as a bug, or worse, as a result."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QTextOption
from PySide6.QtWidgets import QGraphicsTextItem

NOTE_COLOR = "#3a3a3a"
# A little above the ticks' size: the note of an empty plot is what the reader must see first; a
# note about a part of a plot is smaller, beside the data.
POINT_SIZES = {"center": 10.5, "aside": 9.0}
SMALLEST_POINT_SIZE = 7.0  # a note shrinks to this to fit a small plot (the window's least size)
WIDTHS = {"center": 0.82, "aside": 0.45}  # of the plot area's width, for the lines of a long note
MARGIN = 6  # pixels between a note aside and the plot area's edges
# The note's box: white enough to read over grid lines and curves, light enough to see them.
BOX_FILL = "rgba(255, 255, 255, 235)"
PLACES = tuple(POINT_SIZES)


def sentence(text: str) -> str:
    """``text`` with its first letter a capital (the rest as it is: names keep their case)."""
    return text[:1].upper() + text[1:]


class PlotNote:
    """A note in ``plot``'s data area, in the view box's pixels rather than its data coordinates:
    it keeps its place and size whatever the axes' ranges, log or linear. In presenter mode it
    grows with the plot."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.view_box = plot.getViewBox()
        self.place = "center"
        self.item = QGraphicsTextItem(self.view_box)  # a child of the view box, not of its data
        self.item.setZValue(1e6)  # over every curve and image
        self.item.document().setDefaultTextOption(QTextOption(Qt.AlignmentFlag.AlignHCenter))
        self.item.setVisible(False)
        self._text = ""
        self.view_box.sigResized.connect(self._place)

    @property
    def text(self) -> str:
        """The note shown, or "" when none is (plain text, as given to `say`)."""
        return self._text

    def say(self, text: str, place: str = "center") -> None:
        """Show ``text`` (plain words; "" hides the note) at ``place``: "center" when the plot
        draws nothing; "aside" when it is about a part of the plot, in the corner of the plot
        area that hides the fewest of its data points. Call again when the data change: an
        aside note then moves to the corner that is now the emptiest."""
        if place not in PLACES:
            raise ValueError(f"place is one of {PLACES}, not {place!r}")
        if (text, place) != (self._text, self.place):
            self._text, self.place = text, place
            self.item.setHtml(f'<div style="color:{NOTE_COLOR}; background-color:{BOX_FILL}">'
                              f'{html.escape(text)}</div>' if text else "")
            self.item.setVisible(bool(text))
        self._place()

    def _place(self, *_) -> None:
        if not self._text:
            return
        area = self.view_box.boundingRect()
        self.item.setTextWidth(max(area.width() * WIDTHS[self.place], 1.0))
        font = QFont()
        for point_size in np.arange(POINT_SIZES[self.place], SMALLEST_POINT_SIZE - 0.25, -0.5):
            font.setPointSizeF(point_size)
            self.item.setFont(font)
            if self.item.boundingRect().height() <= area.height():
                break
        size = self.item.boundingRect().size()
        if self.place == "center":
            self.item.setPos(area.left() + (area.width() - size.width()) / 2,
                             area.top() + max((area.height() - size.height()) / 2, 0.0))
            return
        left, right = area.left() + MARGIN, area.right() - MARGIN - size.width()
        top, bottom = area.top() + MARGIN, area.bottom() - MARGIN - size.height()
        # In order of preference, where a reader looks for a note: top right first.
        corners = [QPointF(x, y) for x, y in ((right, top), (left, top), (right, bottom), (left, bottom))]
        points = self._data_points()
        hidden = [self._points_under(QRectF(corner, size), points) for corner in corners]
        self.item.setPos(corners[int(np.argmin(hidden))])

    def _data_points(self) -> np.ndarray:
        """The plot's data as drawn, in its view coordinates (log10 on a log axis): (n, 2)."""
        chunks = []
        for item in self.plot.listDataItems():
            x, y = item.getData() if item.isVisible() else (None, None)
            if x is not None and len(y):
                if len(x) == len(y) + 1:  # a step curve's edges: its bins' middles
                    x = (x[:-1] + x[1:]) / 2
                chunks.append(np.column_stack([x, y]))
        return np.concatenate(chunks) if chunks else np.empty((0, 2))

    def _points_under(self, rect: QRectF, points: np.ndarray) -> int:
        """How many of ``points`` (view coordinates) fall under ``rect`` (the view box's pixels)."""
        box = self.view_box.mapToView(rect).boundingRect()
        x, y = points[:, 0], points[:, 1]
        with np.errstate(invalid="ignore"):
            return int(np.count_nonzero((x >= box.left()) & (x <= box.right())
                                        & (y >= box.top()) & (y <= box.bottom())))
