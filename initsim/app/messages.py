"""Messages in the window: status lines coloured by level, and problem boxes that do not block
the event loop. Their text is plain: what they quote from a user's file is never read as HTML (an
<img> in it would make Qt load a local file)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


def show_problem(parent: QWidget, title: str, text: str) -> QMessageBox:
    """A warning box over ``parent`` saying ``text``, opened window-modal and returned at once:
    the runs, the timers and scripted callers carry on while it is up."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("problem")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_message(label: QLabel, level: str, text: str) -> None:
    """Set a status line's text and its look (the window's style sheet colours the levels ok,
    warn, error and info). The same message again changes nothing: a restyle would relayout the
    label, and the window sets its message at every paint."""
    if label.property("level") == level and label.text() == text:
        return
    label.setProperty("level", level)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.style().unpolish(label)
    label.style().polish(label)
