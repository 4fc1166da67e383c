"""Small helpers the Theory, Spectra and Sweep views share: named controls, numbers in words, and
the base of a view whose pictures are computed off the GUI thread."""

from __future__ import annotations

import math
from typing import TypeVar

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QLabel, QWidget

from .controller import StreamRunner
from .worker import Job

W = TypeVar("W", bound=QWidget)


def named(widget: W, name: str, tooltip: str) -> W:
    """``widget`` with an object name (for scripts and tests) and a tooltip (every control has one)."""
    widget.setObjectName(name)
    widget.setToolTip(tooltip)
    return widget


def note_label(text: str = "", name: str = "", tooltip: str = "") -> QLabel:
    """A grey explanation: wrapped, selectable (the window's style sheet greys role=note)."""
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    if tooltip:
        label.setToolTip(tooltip)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setProperty("role", "note")
    return label


def numbers_label(name: str, tooltip: str) -> QLabel:
    """A label for a view's numbers: rich text, wrapped, top-left, selectable to copy."""
    label = named(QLabel(), name, tooltip)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def number(value: float | None) -> str:
    """Four significant digits; infinity as the sign, no value as a dash."""
    if value is None or math.isnan(value):
        return "\u2014"
    if math.isinf(value):
        return "\u221e"
    return f"{value:.4g}"


class ComputedView(QWidget):
    """A view whose pictures are computed on a StreamRunner of its own: it asks for what the shown
    config needs and has not got yet, and the same request twice in a row starts one job.

    Subclasses implement `fold` (events of the current job arrived) and `show_failure`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._requested: object = None  # the request the runner is working on, or last finished
        self.runner = StreamRunner(name, parent=self)
        self.runner.events.connect(self._on_events)
        self.runner.failed.connect(self._on_failed)

    def request(self, key: object, job: Job) -> None:
        """Start ``job`` unless ``key`` is the request already started."""
        if key != self._requested:
            self._requested = key
            self.runner.start(job)

    def shutdown(self) -> None:
        self.runner.shutdown()

    def fold(self, events: list) -> None:
        raise NotImplementedError

    def show_failure(self, message: str) -> None:
        raise NotImplementedError

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        self.fold(events)

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        self._requested = None  # asking again may work (the next config, or the same once more)
        self.show_failure(message)
