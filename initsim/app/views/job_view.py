"""The base of the views that run engine work of their own (training, comparison) on the network
the controls describe.

Each such view owns one StreamRunner, created with it, and paces its repaints with a Throttle. Its
results belong to the network they were computed for: when the controls come to describe another
one, a run in progress is cancelled and what is shown is marked as of the earlier network. Nothing
starts by itself on a control change (a training run is long): the user presses the view's button.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QLayout, QPushButton, QVBoxLayout, QWidget

from initsim.engine import ConfigError, SimConfig
from initsim.engine.params import params_text
from initsim.engine.schemes import READ_SCHEMES

from ..controls import ControlsPanel
from ..messages import show_message
from ..runtime.controller import StreamRunner, Throttle
from ..runtime.worker import Job
from ..widgets import note_label

# Repaints at most 10 times a second, however fast the steps stream in: a frame of the Training tab
# holds the GIL for much of its time, so that more frames slow the training down on a busy machine.
PAINT_INTERVAL_MS = 100


def status_label(object_name: str, tooltip: str) -> QLabel:
    label = QLabel()
    label.setObjectName(object_name)
    label.setProperty("role", "status")
    label.setWordWrap(True)
    label.setToolTip(tooltip)
    # Two lines' room from the start, so that a longer message does not relayout the plots.
    label.setMinimumHeight(2 * label.fontMetrics().lineSpacing() + 12)
    return label


def network_text(config: SimConfig) -> str:
    """A network in a few words: 20 \u00d7 256 relu, kaiming_normal (mode=fan_in), no normalization;
    "30 pre-norm blocks \u00d7 256 relu (alpha 0, learned; expansion 1), ..." for residual blocks."""
    params = params_text(config.init_params)
    init = f"{config.init} ({params})" if params else config.init
    norm = "no normalization" if config.norm == "none" else f"{config.norm} norm"
    if config.init in READ_SCHEMES:  # a checkpoint's own layers: their widths, the file's name
        widths = " \u2192 ".join(map(str, config.widths))
        shape = f"{config.layers} layers {widths} {config.activation}"
        init = f"the weights of {Path(config.init_params['file']).name}"
    elif config.residual == "none":
        shape = f"{config.layers} \u00d7 {config.width} {config.activation}"
    else:
        alpha = "0, learned" if config.branch_scale == "0" else config.branch_scale
        extra = "; Fixup" if config.fixup else ""
        shape = (f"{config.layers} {config.residual}-norm blocks \u00d7 {config.width} {config.activation} "
                 f"(alpha {alpha}; expansion {config.expansion}{extra})")
    return f"{shape}, {init}, {norm}, seed {config.seed}"


class JobView(QWidget):
    """A view with a start and a stop button, a status line, and background runs of its own.

    Subclasses build their widgets and implement `start` (which calls `start_job`), `fold` (events
    of the current run arrived) and `paint` (show them).
    """

    def __init__(self, name: str, what: str, controls: ControlsPanel, start_text: str, start_tip: str
                 ) -> None:
        super().__init__()
        self.setObjectName(name)  # the word the tours find the view by
        self.controls = controls
        self._what = what  # the run, in words: "training", "comparison"
        self.runner = StreamRunner(name, parent=self)
        self.runner.events.connect(self._on_events)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self._paint_throttle = Throttle(PAINT_INTERVAL_MS, self._paint_when_visible, self)
        self._paint_pending = False
        self._closed = False
        self.shown_config: SimConfig | None = None  # the network of the results shown (validated)
        self.running = False
        self.seconds: float | None = None  # the current run's time, once it has ended by itself
        self.start_button = QPushButton(start_text)
        self.start_button.setObjectName(f"{name}_start")
        self.start_button.setToolTip(start_tip)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName(f"{name}_stop")
        self.stop_button.setToolTip("Stop; what is shown so far stays")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.status = status_label(f"{name}_status", "How the run stands, in plain words")
        self.network_note = note_label(name=f"{name}_network",
                                       tooltip="Change the network in the controls on the left")
        controls.changed.connect(self._on_controls_changed)

    # --- to implement ---------------------------------------------------------------------

    def start(self) -> None:
        """Start a run of the current settings on the controls' network."""
        raise NotImplementedError

    def fold(self, events: list) -> None:
        """Take in events of the current run (no painting here)."""
        raise NotImplementedError

    def paint(self) -> None:
        """Show what has been folded in, updating the existing plot items, and the status of a run
        going, done or stopped (not once the results are stale)."""
        raise NotImplementedError

    def settings_widgets(self) -> list[QWidget]:
        """The widgets that describe a run: disabled while one is going."""
        return []

    # --- for subclasses -------------------------------------------------------------------

    def network(self) -> SimConfig:
        """The controls' network, validated; ConfigError if it is invalid."""
        return self.controls.config().validated()

    def start_job(self, config: SimConfig, job: Job) -> None:
        """Run ``job`` (a function of should_stop returning an engine stream) for ``config``."""
        self.shown_config = config
        self.seconds = None
        self.runner.start(job)
        self._set_running(True)

    def lay_out(self, toolbar: QLayout, plots: QWidget) -> None:
        """The view from top to bottom: ``toolbar``, the network note, ``plots``, the status line."""
        toolbar.setContentsMargins(6, 4, 6, 0)
        self.network_note.setContentsMargins(6, 0, 6, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.network_note)
        layout.addWidget(plots, 1)
        layout.addWidget(self.status)

    def request_paint(self) -> None:
        self._paint_throttle.request()

    def set_status(self, level: str, text: str) -> None:
        show_message(self.status, level, text)

    # --- the window's interface -----------------------------------------------------------

    def show_state(self, state) -> None:
        """The window painted a simulation of ``state.config``: the controls' network."""
        self._follow(state.config)

    def stop(self) -> None:
        """Cancel the run in progress; what arrived stays."""
        if self.running:
            self._halt()

    def shutdown(self) -> None:
        """End the worker thread and the timer. Idempotent."""
        self._closed = True
        self._paint_throttle.cancel()
        self.runner.shutdown()
        self.running = False

    # --- internals ------------------------------------------------------------------------

    def _halt(self) -> None:
        """Cancel the run in progress and paint what arrived, with a stopped run's status."""
        self.runner.cancel()
        self._set_running(False)
        self._paint_throttle.cancel()
        self.paint()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for widget in self.settings_widgets():
            widget.setEnabled(not running)

    def _on_controls_changed(self, said: SimConfig | ConfigError) -> None:
        self._follow(said)

    def _follow(self, said: SimConfig | ConfigError) -> None:
        """The controls say ``said``: a validated config, or the ConfigError that says why none."""
        if isinstance(said, ConfigError):
            self.network_note.setText(f"The controls' network is invalid: {said}")
        else:
            self.network_note.setText(f"Network (from the controls): {network_text(said)}")
        earlier = self.shown_config
        if self._closed or earlier is None or said == earlier:
            return
        was_running = self.running
        if was_running:
            self._halt()
        self.shown_config = None  # said once; the results stay on screen
        when = "Stopped: the controls changed." if was_running else "The controls changed."
        self.set_status("info", f"{when} What is shown is of the earlier network ({network_text(earlier)}); "
                                f"press {self.start_button.text()} to run the current one.")

    def _paint_when_visible(self) -> None:
        if self.isVisible():
            self.paint()
        else:
            self._paint_pending = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._paint_pending:
            self._paint_pending = False
            self.paint()

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        self.fold(events)
        self.request_paint()

    @Slot(int, float)
    def _on_done(self, run_id: int, seconds: float) -> None:
        self.seconds = seconds
        self._set_running(False)
        self._paint_throttle.cancel()
        self.paint()

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        self._set_running(False)
        self._paint_throttle.cancel()
        self.paint()
        self.set_status("error", f"The {self._what} failed: {message}")
