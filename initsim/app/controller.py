"""The run controller: owns the worker thread, numbers the runs, drops stale events, and folds the
current run's events into its RunState. Plus the throttle that paces runs and repaints."""

from __future__ import annotations

import atexit
import math
import time
import weakref
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from initsim.engine import SimConfig

from .runstate import RunState
from .worker import SimulationWorker


class Throttle(QObject):
    """Calls ``callback`` at most once per ``interval_ms``: at the next turn of the event loop when
    it has been quiet that long, else once at the end of the interval, however many requests came.

    The leading call keeps a single change snappy (the first layer paints within one frame); the
    trailing one folds a burst of changes, or of events, into one call that sees the latest state.
    """

    def __init__(self, interval_ms: int, callback: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._callback = callback
        self._last = -math.inf
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fire)

    def request(self) -> None:
        if self._timer.isActive():
            return
        since = (time.perf_counter() - self._last) * 1000
        self._timer.start(math.ceil(max(0.0, self.interval_ms - since)))

    def cancel(self) -> None:
        self._timer.stop()

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def _fire(self) -> None:
        self._last = time.perf_counter()
        self._callback()


# Controllers whose thread may still run: a script that exits without closing its window must not
# leave Qt to destroy a running QThread (it aborts the process).
_live: weakref.WeakSet[RunController] = weakref.WeakSet()


@atexit.register
def _shut_down_all() -> None:
    for controller in list(_live):
        controller.shutdown()


class RunController(QObject):
    """Starts runs on the worker thread and keeps the state of the current one.

    ``changed`` is emitted whenever the current state changes (events folded in, run done, failed
    or stopped); it comes at most once per batch of events, the views pace their own repaints.
    """

    changed = Signal()
    _start_requested = Signal(object, int)

    def __init__(self, blas_threads: int | None = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state: RunState | None = None
        self._next_id = 1
        self._shut = False
        self._thread = QThread()
        self._thread.setObjectName("initsim simulation")
        self._worker = SimulationWorker(blas_threads)
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._start_requested.connect(self._worker.run)
        self._worker.events_ready.connect(self._on_events)
        self._worker.run_done.connect(self._on_done)
        self._worker.run_failed.connect(self._on_failed)
        self._thread.start()
        _live.add(self)

    @property
    def running(self) -> bool:
        return self.state is not None and not (self.state.complete or self.state.stopped or self.state.error)

    @property
    def thread(self) -> QThread:
        return self._thread

    def start(self, config: SimConfig) -> RunState:
        """Cancel the current run and start one of ``config`` (validated)."""
        if self._shut:
            raise RuntimeError("the run controller has been shut down")
        run_id = self._next_id
        self._next_id += 1
        self.state = RunState(config, run_id)
        self._worker.wanted_run = run_id  # also cancels the previous run at its next layer
        self._start_requested.emit(config, run_id)
        self.changed.emit()
        return self.state

    def stop(self) -> None:
        """Cancel the current run; what arrived stays."""
        if self.running:
            self._worker.wanted_run = 0
            self.state.stopped = True
            self.changed.emit()

    def shutdown(self) -> None:
        """Cancel any run and end the worker thread; returns once it has ended (at most one layer's
        time). Safe to call more than once."""
        self._shut = True
        self._worker.wanted_run = 0
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()

    def _current(self, run_id: int) -> RunState | None:
        state = self.state
        if self._shut or state is None or state.run_id != run_id or state.stopped:
            return None
        return state

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        state = self._current(run_id)
        if state is None:  # a cancelled run's events are never painted
            return
        for event in events:
            state.add(event)
        self.changed.emit()

    @Slot(int, float)
    def _on_done(self, run_id: int, seconds: float) -> None:
        self._note(run_id, "seconds", seconds)

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        self._note(run_id, "error", message)

    def _note(self, run_id: int, field: str, value: object) -> None:
        """Set a field of the current run's state, if ``run_id`` is still the current run."""
        state = self._current(run_id)
        if state is not None:
            setattr(state, field, value)
            self.changed.emit()
