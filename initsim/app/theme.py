"""Presenter mode: full screen, larger type and a high-contrast look readable on a projector, for
the Qt widgets and the pyqtgraph plots alike.

The widgets get a style sheet (a font size set on the window does not reach widgets that a style
sheet styles). The plots are drawn through a zoomed view: every pyqtgraph view lays its plots out
in 1/ZOOM of its pixels and draws them ZOOM times larger, so tick labels, titles, legends and
markers all grow together, as a browser's zoom would; their axes turn black.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QApplication, QGraphicsItem

from .actions import make_action
from .views.registry import plot_views

if TYPE_CHECKING:
    from .window import MainWindow

ZOOM = 1.6
PRESENTER_SHEET = """
* {{ font-size: {points}pt; }}
QLabel[role="note"] {{ color: #000000; }}
QLabel#warnings {{ font-weight: bold; padding: 8px 12px; }}
QLabel#warnings[level="ok"] {{ background: #c9ead3; color: #002a0c; }}
QLabel#warnings[level="warn"] {{ background: #ffd596; color: #331a00; }}
QLabel#warnings[level="error"] {{ background: #ffc2bd; color: #420000; }}
QLabel#warnings[level="info"] {{ background: #d9e0e8; color: #000000; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: {box}px; height: {box}px; }}
QLabel#tour_title {{ font-size: {title}pt; }}
QLabel#tour_look_at {{ color: #000000; }}
"""
AXIS_COLOR = "#000000"
IGNORES_TRANSFORMATIONS = QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations


class PresenterMode(QObject):
    """Turns the window's presenter look on and off; ``action`` is its View menu entry (F5)."""

    toggled = Signal(bool)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.enabled = False
        self._before: tuple | None = None  # style sheet, window state, controls shown
        self._zoomed: weakref.WeakSet[pg.GraphicsView] = weakref.WeakSet()
        # What the look changed, to undo: an axis's (text pen, line pen), a legend's ().
        self._saved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.action = make_action(window, "&Presenter mode", [Qt.Key.Key_F5], self.set_enabled,
                                  "Full screen, larger type and high contrast for a projector; the "
                                  "controls hide (Ctrl+D shows them) (F5)", checkable=True)
        # Plots that appear later (a view built, a new tab, more histogram panels) get the look
        # when built, shown or painted.
        window.view_built.connect(self._style_plots)
        window.tabs.currentChanged.connect(self._style_plots)
        window.painted.connect(self._style_plots)

    def set_enabled(self, enabled: bool, full_screen: bool = True) -> None:
        """Presenter mode on or off; ``full_screen`` False keeps the window's size (slides)."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        window = self.window
        if enabled:
            self._before = (window.styleSheet(), window.windowState(), window.dock.isVisible())
            points = round(QApplication.font().pointSizeF() * ZOOM)
            window.setStyleSheet(self._before[0] + PRESENTER_SHEET.format(
                points=points, title=round(points * 1.5), box=round(13 * ZOOM)))
            window.dock.hide()
            if full_screen:
                window.setWindowState(window.windowState() | Qt.WindowState.WindowFullScreen)
        else:
            sheet, state, dock_shown = self._before
            window.setStyleSheet(sheet)
            window.setWindowState(state)
            window.dock.setVisible(dock_shown)
        self._style_plots()
        self.action.setChecked(enabled)
        self.toggled.emit(enabled)

    def _style_plots(self) -> None:
        if not (self.enabled or self._zoomed or self._saved):
            return  # the normal look, and nothing left to undo: the usual case, on every paint
        for view in plot_views(self.window):
            if self.enabled and view not in self._zoomed:
                self._zoomed.add(view)
                view.sigDeviceRangeChanged.connect(self._zoom)
            elif not self.enabled and view in self._zoomed:
                self._zoomed.discard(view)
                view.sigDeviceRangeChanged.disconnect(self._zoom)
                view.resizeEvent(None)  # back to one scene unit per pixel
            if self.enabled:
                self._zoom(view)
            self._style_items(view)

    def _zoom(self, view: pg.GraphicsView, *_) -> None:
        """Lay ``view``'s plots out in 1/ZOOM of its size and draw them ZOOM times larger (less
        when the plots would not fit in less room). Runs after each of pyqtgraph's own resizes,
        which reset the view to one unit per pixel."""
        zoom = ZOOM
        if view.centralWidget is not None:
            least = view.centralWidget.effectiveSizeHint(Qt.SizeHint.MinimumSize)
            zoom = max(1.0, min(ZOOM, view.width() / max(least.width(), 1.0),
                                view.height() / max(least.height(), 1.0)))
        scene_rect = QRectF(0, 0, view.width() / zoom, view.height() / zoom)
        if view.range == scene_rect and view.transform().m11() == zoom:
            return
        view.range = scene_rect
        if view.centralWidget is not None:
            view.centralWidget.setGeometry(scene_rect)
        view.setSceneRect(scene_rect)
        view.setTransform(QTransform.fromScale(zoom, zoom))

    def _style_items(self, view: pg.GraphicsView) -> None:
        """Black axes; legends that grow with the zoom (pyqtgraph's ignore the view's transform)."""
        for item in view.scene().items():
            if not isinstance(item, (pg.AxisItem, pg.LegendItem)):
                continue
            if self.enabled and item not in self._saved:
                if isinstance(item, pg.AxisItem):
                    self._saved[item] = (item.textPen(), item.pen())
                    item.setPen(pg.mkPen(AXIS_COLOR))
                    item.setTextPen(AXIS_COLOR)
                else:
                    self._saved[item] = ()
                    item.setFlag(IGNORES_TRANSFORMATIONS, False)
            elif not self.enabled and item in self._saved:
                saved = self._saved.pop(item)
                if isinstance(item, pg.AxisItem):
                    item.setTextPen(saved[0])
                    item.setPen(saved[1])  # last, as style_plot does: it also colours the axis label
                else:
                    item.setFlag(IGNORES_TRANSFORMATIONS, True)
