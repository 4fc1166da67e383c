"""Small helpers the views share: named controls, an exact number editor, numbers in words, and
the base of a view whose pictures are computed off the GUI thread."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import TypeVar

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QLabel, QProgressBar, QStyle, QStyleOptionSpinBox, QWidget

from initsim.engine.checks import integer_in, number_in, shown
from initsim.engine.errors import ConfigError
from initsim.engine.params import Param

from .messages import show_message
from .runtime.controller import StreamRunner

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


# What a number box takes as typed: decimal digits in ASCII, no "inf", "nan" or "1_000".
INTEGER_TEXT = re.compile(r"[+-]?\d+", re.ASCII)
REAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
# Characters that may still become a number while being typed ("-", "1e", ".").
TYPING_TEXT = re.compile(r"[\s\d.eE+-]*", re.ASCII)
# The box is as wide as this text whatever its value: a long value scrolls, the layout stays.
HINT_TEXT = "0.000123456"


def shortest_text(value: int | float) -> str:
    """The shortest text that reads back as exactly ``value``: 1e-13, 0.30000000000000004, 2000000."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def decade_step(value: float, steps: int) -> float:
    """``value`` moved by ``steps`` tenths of its decade, computed in decimal (0.1 up is 0.11, 2e6
    is 2.1e6; 1 down is 0.99, as a spin box's adaptive steps), from 0 by 0.1."""
    number = Decimal(repr(value))
    up = steps > 0
    for _ in range(abs(steps)):
        if number == 0:
            step = Decimal("0.1")
        else:
            exponent = number.adjusted()  # floor(log10(|number|))
            toward_zero = (number > 0) != up
            if toward_zero and abs(number) == Decimal(1).scaleb(exponent):
                exponent -= 1  # down from 1 in hundredths, so that 1 - step is not 0.9 but 0.99
            step = Decimal(1).scaleb(exponent - 1)
        number = number + step if up else number - step
    return float(number)


class NumberBox(QAbstractSpinBox):
    """An editor of one number (``param``'s range; an int if ``integer``) that keeps exactly the
    value it is given or typed, shown in its shortest form. Nothing is rounded or clamped: typed
    text that is not a number in range is refused, ``refused`` says why, and the value stays. The
    arrows step integers by one and real numbers by a tenth of their decade."""

    valueChanged = Signal(object)  # the new value, an int or a float
    refused = Signal(str)  # one line naming the field: why the typed text was not taken

    def __init__(self, param: Param, owner: str = "", integer: bool = False) -> None:
        super().__init__()
        self._param = param
        self._owner = owner
        self._integer = integer
        self._field = f"{owner}.{param.name}" if owner else param.name
        # A start until setValue: the low end for integers, else 1 where the range allows.
        self._value: int | float = int(param.low) if integer else min(max(1.0, param.low), param.high)
        self._committed = self._value  # before keystrokes taken one by one: what a refusal restores
        self.lineEdit().setText(shortest_text(self._value))
        # Integers are taken keystroke by keystroke (as QSpinBox does); a real number on Enter,
        # so that "0.05" typed digit by digit is not three runs.
        self.setKeyboardTracking(integer)
        self.lineEdit().textEdited.connect(self._on_typing)
        self.editingFinished.connect(self._commit)

    def value(self) -> int | float:
        return self._value

    def setValue(self, value: int | float) -> None:
        """Hold ``value``; a ConfigError naming the field if it is out of range."""
        self._show(self._checked(value))

    def allowed(self) -> str:
        """The values the box takes, in words."""
        if self._integer:
            return f"an integer in [{self._param.low}, {self._param.high}]"
        return self._param.allowed()

    # --- typing ------------------------------------------------------------------------------

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        try:
            self._parsed(text)
        except ValueError:
            typing = TYPING_TEXT.fullmatch(text) and (not self._integer or not re.search("[.eE]", text))
            state = QValidator.State.Intermediate if typing else QValidator.State.Invalid
            return state, text, pos
        return QValidator.State.Acceptable, text, pos

    def _on_typing(self, text: str) -> None:
        """With keyboard tracking, each keystroke that makes a number in range takes it."""
        if self.keyboardTracking():
            try:
                value = self._parsed(text)
            except ValueError:
                return
            self._take(value)

    def _commit(self) -> None:
        """Enter or leaving the box: take the text, or refuse it and show the value it had
        before this typing again."""
        try:
            self._show(self._parsed(self.lineEdit().text()))
        except ValueError as exc:
            self._show(self._committed)
            self.refused.emit(f"{exc}; kept {shortest_text(self._committed)}")

    def _parsed(self, text: str) -> int | float:
        """The number ``text`` says, if it is one in range; else a ConfigError quoting it."""
        text = text.strip()
        try:
            if not (INTEGER_TEXT if self._integer else REAL_TEXT).fullmatch(text):
                raise ValueError(text)
            return self._checked(int(text) if self._integer else float(text))
        except ValueError:  # also a ConfigError, or an int of more digits than Python reads
            raise ConfigError(self._field, f"got {shown(text)}, expected {self.allowed()}") from None

    def _checked(self, value: int | float) -> int | float:
        """``value`` as the box's type if it is in range, else a ConfigError naming the field."""
        low, high = self._param.low, self._param.high
        if self._integer:
            return integer_in(self._field, value, int(low), int(high))
        return number_in(self._field, value, low, high, self._param.low_inclusive)

    # --- holding and stepping ----------------------------------------------------------------

    def _show(self, value: int | float) -> None:
        """Show ``value`` in its shortest form and take it."""
        self.lineEdit().setText(shortest_text(value))
        self._committed = value
        self._take(value)

    def _take(self, value: int | float) -> None:
        # -0.0 == 0.0, yet it is another value: a change is a change of the shortest text.
        if shortest_text(value) != shortest_text(self._value):
            self._value = value
            self.valueChanged.emit(value)

    def stepBy(self, steps: int) -> None:
        self._commit()  # text typed and not yet taken counts first
        moved = self._value + steps if self._integer else decade_step(self._value, steps)
        try:  # the arrows stop at the ends of the range
            self._show(self._checked(min(max(moved, self._param.low), self._param.high)))
        except ConfigError:
            pass  # at an open end (scale > 0): the arrows come near it, never to it

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if self._value < self._param.high:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        if self._value > self._param.low:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        return flags

    # --- size ----------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        """Wide enough for HINT_TEXT, whatever the value (QAbstractSpinBox alone does not know)."""
        option = QStyleOptionSpinBox()
        self.initStyleOption(option)
        text = QSize(self.fontMetrics().horizontalAdvance(HINT_TEXT) + 4,
                     self.lineEdit().sizeHint().height())
        return self.style().sizeFromContents(QStyle.ContentsType.CT_SpinBox, option, text, self)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class RefusalNote(QLabel):
    """Under number boxes: why the last one refused what was typed (in the window's error
    colours), gone once a box takes a value."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)  # it quotes what the user typed
        self.setProperty("role", "status")
        self.hide()

    def watch(self, box: NumberBox) -> None:
        box.refused.connect(self.say)
        box.valueChanged.connect(self.hide)

    def say(self, text: str) -> None:
        show_message(self, "error", text)
        self.show()


class SteadyLabel(QLabel):
    """A word-wrapped label that keeps, at one width, the height of the most lines it has shown:
    a message that grows a line and shrinks back from run to run (the warnings under the plots)
    would resize, relayout and repaint every plot above it each time. A new width starts again."""

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self._tallest: tuple[int, int] = (-1, 0)  # (width, height)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt's name
        height = super().heightForWidth(width)
        if self._tallest[0] == width:
            height = max(height, self._tallest[1])
        self._tallest = (width, height)
        return height


class ProgressBar(QProgressBar):
    """A progress bar painted with the window's next paint. QProgressBar.setValue repaints the bar
    at once when it moves a pixel, and painting at once paints whatever else in the window waits
    to be painted: the plots whose data the same turn of the GUI thread just changed. A change of
    depth then relaid out and repainted every histogram panel in one turn (60 ms of CPU), where
    the event loop would have run in between."""

    def setValue(self, value: int) -> None:
        self.setUpdatesEnabled(False)
        try:
            super().setValue(value)
        finally:
            self.setUpdatesEnabled(True)  # which schedules the bar's paint


class DetailsGiveWay(QObject):
    """Shows ``details`` (a view's secondary plots or tables) only while ``view`` has room for
    ``lines`` lines of its own text. On a small screen in presenter mode (text and plots 1.6 times
    larger, a tour's panel above) they would squash the view's main plot, the one a lecture is
    about, to a strip; on a desk they are there. Follows the view's resizes and font changes."""

    def __init__(self, view: QWidget, details: list[QWidget], lines: int) -> None:
        super().__init__(view)
        self.view, self.details, self.lines = view, details, lines
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Resize, QEvent.Type.FontChange):
            shown = self.view.height() >= self.lines * self.view.fontMetrics().height()
            for widget in self.details:
                widget.setVisible(shown)
        return False


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
    config needs and has not got yet (`self.runner.request`).

    Subclasses implement `fold` (events of the current job arrived) and `show_failure`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.runner = StreamRunner(name, parent=self)
        self.runner.events.connect(self._on_events)
        self.runner.failed.connect(self._on_failed)

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
        self.show_failure(message)
