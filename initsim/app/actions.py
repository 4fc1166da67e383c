"""Menu actions as the window's own: a tip in the status bar and as a tooltip, any number of keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence


def make_action(parent: QObject, text: str, keys: Sequence, slot: Callable | None, tip: str,
                checkable: bool = False) -> QAction:
    """An action calling ``slot`` (with the new state, when ``checkable``; None: connected by the
    caller) on ``keys`` (key sequences, strings or Qt.Key values; the first is the one menus show)."""
    action = QAction(text, parent)
    action.setShortcuts([QKeySequence(key) for key in keys])
    action.setStatusTip(tip)
    action.setToolTip(tip)
    action.setCheckable(checkable)
    if slot is not None:
        (action.toggled if checkable else action.triggered).connect(slot)
    return action
