"""Finding the window's views by the names tours and the CLI use (histograms, heatmap, stats, ...).

Views are looked up at run time by a word of their tab's object name or title, so a tab added
later (Theory, Spectra, Training, Compare) is found as soon as it exists, and a name whose view
does not exist yet falls back to the Layer statistics view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from ..window import MainWindow

# A view's name (tours' VIEWS, the CLI's --view) and a word its tab's object name or title holds.
VIEW_WORDS = {"histograms": "histogram", "heatmap": "heatmap", "stats": "statistic", "theory": "theory",
              "spectra": "spectr", "training": "train", "compare": "compar"}
FALLBACK_VIEW = "stats"


class PendingView(QWidget):
    """A tab's place until its view is built (`MainWindow.view_at`): ``build()`` makes the view
    ``name`` (the window's attribute for it)."""

    def __init__(self, name: str, build: Callable[[], QWidget]) -> None:
        super().__init__()
        self.name = name
        self.build = build
        self.setObjectName(name)


def find_view(window: MainWindow, name: str) -> QWidget | None:
    """The tab showing view ``name`` (a key of VIEW_WORDS, or a word of any tab's title, as
    view_name gives it), or None if the window has no such view."""
    word = VIEW_WORDS.get(name, name)
    tabs = window.tabs
    for index in range(tabs.count()):
        label = f"{tabs.widget(index).objectName()} {tabs.tabText(index).replace('&', '')}".lower()
        if word in label:
            return window.view_at(index)
    return None


def view_or_fallback(window: MainWindow, name: str) -> tuple[QWidget, str]:
    """The view ``name`` and its name, or the Layer statistics view (and "stats") when the window
    has no such view."""
    view = find_view(window, name)
    if view is not None:
        return view, name
    return find_view(window, FALLBACK_VIEW), FALLBACK_VIEW


def view_name(window: MainWindow, widget: QWidget) -> str:
    """The name of the view ``widget`` shows, or its tab's title in lower case if it has none."""
    for name in VIEW_WORDS:
        if find_view(window, name) is widget:
            return name
    return window.tabs.tabText(window.tabs.indexOf(widget)).replace("&", "").lower()


def plot_views(widget: QWidget) -> list[pg.GraphicsView]:
    """The pyqtgraph views inside ``widget`` (itself included), outermost first."""
    found = [widget] if isinstance(widget, pg.GraphicsView) else []
    return found + widget.findChildren(pg.GraphicsView)
