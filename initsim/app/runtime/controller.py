"""The run controller: owns the worker thread, numbers the runs, drops stale events, and folds the
current run's events into its RunState. Plus the throttle that paces runs and repaints."""

from __future__ import annotations

import atexit
import math
import threading
import time
import weakref
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from initsim.engine import DEFAULT_MEMORY_LIMIT, SimConfig

from ..model.runstate import RunState
from .pools import LazyPool
from .worker import BATCH_SECONDS, Job, StreamWorker, simulation_job


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


# Runners whose thread may still run: a script that exits without closing its window must not
# leave Qt to destroy a running QThread (it aborts the process).
_live: weakref.WeakSet[StreamRunner] = weakref.WeakSet()


@atexit.register
def _shut_down_all() -> None:
    for runner in list(_live):
        runner.shutdown()


class StreamRunner(QObject):
    """The lifecycle of a view's background work: one job at a time on its own worker thread.
    Starting a job cancels the previous one, whose events are dropped: ``events``, ``done`` and
    ``failed`` only ever speak of the current run. `request` starts a job unless it is the one
    already asked for. Events computed less than ``batch_seconds`` after the last ones sent wait to
    go with the next (0: each is sent as it comes). ``pool``: the processes the jobs fan out to,
    started on first use; `shutdown` ends them with the thread."""

    events = Signal(int, object)  # run id, list of events
    done = Signal(int, float)  # run id, seconds
    failed = Signal(int, str)  # run id, message
    _start_requested = Signal(object, int)

    def __init__(self, name: str, blas_threads: int | None = 1, parent: QObject | None = None,
                 batch_seconds: float = BATCH_SECONDS, pool: LazyPool | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.current_run = 0  # 0: none
        self._requested: object = None  # the key of the request under way or last finished
        self._ended = 0  # the last run that was done or failed
        self._next_id = 1
        self._shut = False
        self._thread = QThread()
        self._thread.setObjectName(f"initsim {name}")
        self._worker = StreamWorker(blas_threads, batch_seconds)
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._start_requested.connect(self._worker.run)
        self._worker.events_ready.connect(self._on_events)
        self._worker.run_done.connect(self._on_done)
        self._worker.run_failed.connect(self._on_failed)
        self._thread.start()
        _live.add(self)

    @property
    def thread(self) -> QThread:
        return self._thread

    @property
    def busy(self) -> bool:
        """A run is going: started, neither cancelled nor yet done or failed."""
        return self.current_run != 0 and self._ended != self.current_run

    def request(self, key: object, job: Job) -> None:
        """Start ``job`` unless ``key`` is that of the request under way or last finished: the same
        request twice in a row starts one job (a failed one may be asked for again)."""
        if key != self._requested:
            self.start(job)
            self._requested = key

    def start(self, job: Job) -> int:
        """Cancel the current run and start ``job``; returns its run id."""
        if self._shut:
            raise RuntimeError("this runner has been shut down")
        self._requested = None
        run_id = self._next_id
        self._next_id += 1
        self.current_run = run_id
        self._worker.wanted_run = run_id  # also cancels the previous run at its next event
        self._start_requested.emit(job, run_id)
        return run_id

    def cancel(self) -> None:
        """Cancel the current run; nothing more of it is reported."""
        self._requested = None
        self.current_run = 0
        self._worker.wanted_run = 0

    def pause(self) -> None:
        """Hold the runs between events: the run going, and each one started while paused, sends
        the events it has computed (a run started while paused: its first) and waits, before the
        next one or its end, until `resume`. A held run that is cancelled, superseded by another
        or shut down ends at once. What a paused run has sent is all it has computed, so a
        script (or a test) can act on a run in progress whatever the machine's speed."""
        self._worker.paused = True

    def resume(self) -> None:
        """Let a paused run go on."""
        self._worker.paused = False

    @property
    def held(self) -> threading.Event:
        """Set while a paused run waits, everything it computed sent; any thread can wait on it."""
        return self._worker.held

    def shutdown(self) -> None:
        """Cancel any run and end the worker thread and the pool; returns once they have ended (at
        most one event's time, and the pool's tasks under way). Safe to call more than once."""
        self._shut = True
        self.cancel()
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()
        if self.pool is not None:
            self.pool.shutdown()

    def _is_current(self, run_id: int) -> bool:
        return not self._shut and run_id == self.current_run

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        if self._is_current(run_id):  # a cancelled run's events are never shown
            self.events.emit(run_id, events)

    @Slot(int, float)
    def _on_done(self, run_id: int, seconds: float) -> None:
        if self._is_current(run_id):
            self._ended = run_id
            self.done.emit(run_id, seconds)

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        if self._is_current(run_id):
            self._requested = None  # asking again may work
            self._ended = run_id
            self.failed.emit(run_id, message)


class RunController(QObject):
    """Runs simulations on a StreamRunner and keeps the state of the current one.

    ``changed`` is emitted whenever the current state changes (events folded in, run done, failed
    or stopped); it comes at most once per batch of events, the views pace their own repaints.
    """

    changed = Signal()

    def __init__(self, blas_threads: int | None = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state: RunState | None = None
        self.runner = StreamRunner("simulation", blas_threads, self)
        self.runner.events.connect(self._on_events)
        self.runner.done.connect(lambda run_id, seconds: self._set_state_field("seconds", seconds))
        self.runner.failed.connect(lambda run_id, message: self._set_state_field("error", message))

    @property
    def running(self) -> bool:
        return self.state is not None and not (self.state.complete or self.state.stopped or self.state.error)

    @property
    def thread(self) -> QThread:
        return self.runner.thread

    def start(self, config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> RunState:
        """Cancel the current run and start one of ``config`` (validated), refused (the state's
        error) if it needs more than ``memory_limit`` bytes."""
        self.state = RunState(config, self.runner.start(simulation_job(config, memory_limit)))
        self.changed.emit()
        return self.state

    def stop(self) -> None:
        """Cancel the current run; what arrived stays."""
        if self.running:
            self.runner.cancel()
            self.state.stopped = True
            self.changed.emit()

    def shutdown(self) -> None:
        self.runner.shutdown()

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        for event in events:
            self.state.add(event)
        self.changed.emit()

    def _set_state_field(self, field: str, value: object) -> None:
        """Set a field of the current run's state (its time when done, its error when failed)."""
        setattr(self.state, field, value)
        self.changed.emit()
