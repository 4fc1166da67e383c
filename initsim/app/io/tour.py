"""Guided tours in the window: a panel above the views says what each step shows and what to look
at; each step applies its config and brings its view to front. Next / Previous (Right / Left,
PgDown / PgUp while a tour runs), auto-advance on a timer, started from the Presets menu or from a
user's file (File > Open tour). A tour's words are shown as plain text: a user's tour comes from
anywhere, and as HTML an <img> in it would make Qt load a local file."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from initsim.engine import ConfigError
from initsim.engine.presets import presets
from initsim.engine.tours import Tour, TourStep, tours

from ..actions import make_action
from ..messages import show_problem
from .persistence import StoredSettings, integer_setting

if TYPE_CHECKING:
    from ..window import MainWindow

DEFAULT_INTERVAL_S = 15
INTERVAL_RANGE_S = (3, 300)
PANEL_SHEET = """
QFrame#tour_panel { background: #f3f6fa; border: 1px solid #c9d3df; border-left: 5px solid #4C72B0;
                    border-radius: 3px; }
QFrame#tour_panel QLabel { background: transparent; border: none; }
QLabel#tour_look_at { color: #1f3b63; }
QLabel#tour_progress { color: #505050; }
"""


class TourPanel(QFrame):
    """The step on show: its title, the tour and the step number, its sentences, what to look at,
    and the buttons. Hidden while no tour runs."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("tour_panel")
        self.setStyleSheet(PANEL_SHEET)
        self.title = self._label("tour_title", "The step's title")
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.45)
        self.title.setFont(font)
        self.progress = self._label("tour_progress", "The tour, and which of its steps this is")
        self.progress.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.text = self._label("tour_text", "What this step shows")
        self.text.setWordWrap(True)
        self.look_at = self._label("tour_look_at", "Where to look in the view")
        self.look_at.setTextFormat(Qt.TextFormat.RichText)  # for its bold "Look at:"; the step's words escaped
        self.look_at.setWordWrap(True)
        self.previous_button = self._button("tour_previous", "\u25c0  Previous", "The previous step (Left or PgUp)")
        self.next_button = self._button("tour_next", "Next  \u25b6", "The next step (Right or PgDown)")
        self.auto_button = self._button("tour_auto", "Auto-advance",
                                        "Go to the next step every few seconds, until the last (F6)")
        self.auto_button.setCheckable(True)
        self.interval = QSpinBox()
        self.interval.setObjectName("tour_interval")
        self.interval.setRange(*INTERVAL_RANGE_S)
        self.interval.setSuffix(" s")
        self.interval.setToolTip("Seconds per step when auto-advancing")
        self.end_button = self._button("tour_end", "End tour", "Close the tour; the last step's "
                                       "config stays")

        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.progress)
        buttons = QHBoxLayout()
        buttons.addWidget(self.look_at, 1)
        for widget in self._navigation():
            buttons.addWidget(widget, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 8, 10, 8)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.text)
        layout.addLayout(buttons)
        self.setVisible(False)

    def show_step(self, tour: Tour, index: int, step: TourStep) -> None:
        self.title.setText(step.title)
        self.progress.setText(f"{tour.title} \u00b7 step {index + 1} of {len(tour.steps)}")
        self.text.setText(step.text)
        where = step.look_at or f"the {step.view} view"
        self.look_at.setText(f"<b>Look at:</b> {html.escape(where)}")
        self.previous_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(tour.steps) - 1)

    def set_buttons_visible(self, visible: bool) -> None:
        for widget in self._navigation():
            widget.setVisible(visible)

    def _navigation(self) -> tuple[QWidget, ...]:
        return (self.previous_button, self.next_button, self.auto_button, self.interval, self.end_button)

    def _label(self, name: str, tip: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setToolTip(tip)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _button(self, name: str, text: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the arrow keys stay the tour's
        return button


class TourPlayer(QObject):
    """Runs a tour in ``window``: ``start(tour)``, ``go(index)``, ``next()``, ``previous()``,
    ``set_auto(on)``, ``end()``. ``step_shown(index)`` follows each step."""

    step_shown = Signal(int)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.tour: Tour | None = None
        self.index = 0
        self.panel = TourPanel()
        self.panel.interval.setValue(DEFAULT_INTERVAL_S)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)
        self.panel.previous_button.clicked.connect(self.previous)
        self.panel.next_button.clicked.connect(self.next)
        self.panel.auto_button.toggled.connect(self.set_auto)
        self.panel.interval.valueChanged.connect(self._on_interval)
        self.panel.end_button.clicked.connect(self.end)

        self.next_action = self._action("&Next step", [Qt.Key.Key_Right, Qt.Key.Key_PageDown], self.next,
                                        "The tour's next step (Right or PgDown)")
        self.previous_action = self._action("&Previous step", [Qt.Key.Key_Left, Qt.Key.Key_PageUp],
                                            self.previous, "The tour's previous step (Left or PgUp)")
        self.auto_action = self._action("&Auto-advance", [Qt.Key.Key_F6], self.set_auto,
                                        "Go to the next step every few seconds (F6)", checkable=True)
        self.end_action = self._action("&End the tour", [], self.end, "Close the tour panel")
        self._enable_actions()

    # --- the scriptable API ---------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.tour is not None

    def start(self, tour: Tour) -> None:
        """Show the tour panel and go to the first step."""
        self.tour = tour
        self.panel.setVisible(True)
        self._enable_actions()
        self.go(0)

    def go(self, index: int) -> None:
        """Apply step ``index``: its config (a run starts), its view, its comparison."""
        step = self.tour.steps[index]
        self.index = index
        try:
            self.window.set_config(step.config)
        except ConfigError as exc:  # a user's tour may hold a config the window refuses
            show_problem(self.window, "Tour", f"Step {index + 1} ({step.title}): {exc}")
        view = self.window.view(step.view)
        self.window.tabs.setCurrentWidget(view)
        if step.compare and step.view == "compare":
            view.compare(list(step.compare))
        if step.view == "spectra":
            view.show_isometry(step.isometry)
        self.panel.show_step(self.tour, index, step)
        if self.timer.isActive():  # a full interval for the step, however it was reached
            self.timer.start()
        self.step_shown.emit(index)

    def next(self) -> None:
        if self.tour is not None and self.index < len(self.tour.steps) - 1:
            self.go(self.index + 1)

    def previous(self) -> None:
        if self.tour is not None and self.index > 0:
            self.go(self.index - 1)

    def set_auto(self, on: bool) -> None:
        """Auto-advance on or off (it turns itself off after the last step)."""
        on = on and self.tour is not None
        if on:
            self.timer.start(self.panel.interval.value() * 1000)
        else:
            self.timer.stop()
        for control in (self.panel.auto_button, self.auto_action):
            control.blockSignals(True)
            control.setChecked(on)
            control.blockSignals(False)

    def end(self) -> None:
        """Close the tour; the window keeps the last step's config."""
        self.set_auto(False)
        self.tour = None
        self.panel.setVisible(False)
        self._enable_actions()

    def restore(self, stored: StoredSettings) -> None:
        """The auto-advance interval saved at the last shutdown."""
        seconds = integer_setting(*INTERVAL_RANGE_S)
        stored.use("tour/interval", lambda value: self.panel.interval.setValue(seconds(value)))

    def shutdown(self) -> None:
        self.timer.stop()
        QSettings().setValue("tour/interval", self.panel.interval.value())

    # --- the menu -------------------------------------------------------------------------

    def build_presets_menu(self, menu: QMenu, open_tour: QAction) -> None:
        """Every preset (applies its config), every shipped tour, Open tour, and the tour's keys."""
        for preset in presets().values():
            action = menu.addAction(preset.title)
            action.setStatusTip(preset.explanation)
            action.setToolTip(preset.explanation)
            action.triggered.connect(lambda _=False, preset=preset: self.window.set_config(preset.config))
        menu.addSeparator()
        for number, tour in enumerate(tours().values()):
            action = menu.addAction(f"Tour: {tour.title}")
            tip = f"{tour.description} ({len(tour.steps)} steps)"
            action.setStatusTip(tip)
            action.setToolTip(tip)
            if number == 0:
                action.setShortcut(QKeySequence("Ctrl+T"))
            action.triggered.connect(lambda _=False, tour=tour: self.start(tour))
        menu.addAction(open_tour)
        menu.addSeparator()
        for action in (self.next_action, self.previous_action, self.auto_action, self.end_action):
            menu.addAction(action)
        menu.setToolTipsVisible(True)

    # --- internals ------------------------------------------------------------------------

    def _action(self, text: str, keys: list, slot, tip: str, checkable: bool = False) -> QAction:
        action = make_action(self.window, text, keys, slot, tip, checkable)
        self.window.addAction(action)  # its keys work with the menu closed
        return action

    def _enable_actions(self) -> None:
        # Off without a tour: the arrow keys then belong to the focused control.
        for action in (self.next_action, self.previous_action, self.auto_action, self.end_action):
            action.setEnabled(self.tour is not None)

    def _advance(self) -> None:
        if self.tour is None or self.index >= len(self.tour.steps) - 1:
            self.set_auto(False)
        else:
            self.next()

    def _on_interval(self, seconds: int) -> None:
        if self.timer.isActive():
            self.timer.start(seconds * 1000)
