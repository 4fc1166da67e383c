"""The stream worker: runs an engine generator on its own QThread and sends its events to the GUI
thread in small batches. It never touches a widget.

A job is a function of ``should_stop`` that returns the engine's stream of small events (layer
summaries, training steps, sweep results): every background computation of the app runs this way.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QObject, Signal, Slot
from threadpoolctl import threadpool_limits

from initsim.engine import DEFAULT_MEMORY_LIMIT, ConfigError, SimConfig, simulate_stream

# Events produced faster than this are sent together: a tiny net yields thousands of layers a
# second, and one queued signal per layer would flood the GUI thread's event queue. (An event held
# for a batch waits for the next one: a stream of rare events, one per simulation, is not batched.)
BATCH_SECONDS = 0.015

Job = Callable[[Callable[[], bool]], Iterable[object]]


# OpenBLAS has one thread count for the whole process, and the workers' runs overlap: the first run
# to start sets the limit and the last one to end gives it back. (A `with threadpool_limits` per run
# let a run that ended restore two threads under one still going, whose results then differed from
# the engine's at one thread.)
_limit_lock = threading.Lock()
_limit_users = 0
_limit: threadpool_limits | None = None


@contextmanager
def _blas_limited(threads: int | None) -> Iterator[None]:
    """BLAS limited to ``threads`` (None: as it is) for the time of the block, shared by every
    worker's runs; the first run's count holds while any run goes on."""
    global _limit_users, _limit
    if threads is None:
        yield
        return
    with _limit_lock:
        if _limit_users == 0:
            _limit = threadpool_limits(threads)
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                _limit.restore_original_limits()
                _limit = None


# A message in the window is read by a student, not a developer: the longest one it shows.
MESSAGE_CHARACTERS = 300


def failure_text(exc: BaseException) -> str:
    """What the window says when a job raised: the reason in plain words for what a user can
    change (a config the engine refused, memory), a bug named as one otherwise, its traceback sent
    to stderr for a report; never longer than a line or two."""
    if isinstance(exc, ConfigError):
        text = f"the engine refused the config: {exc}"
    elif isinstance(exc, MemoryError):
        text = "there was not enough memory for it (reduce the layers, the width or the batch)"
    else:
        traceback.print_exception(exc, file=sys.stderr)
        text = (f"an internal error stopped it ({type(exc).__name__}: {exc}); this is a bug in "
                "initsim, please report it with the config (File > Save config)")
    return text if len(text) <= MESSAGE_CHARACTERS else text[:MESSAGE_CHARACTERS - 1] + "\u2026"


def simulation_job(config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Job:
    return lambda should_stop: simulate_stream(config, should_stop, memory_limit)


class _WakingField:
    """A field of the worker that the GUI thread writes and a run reads between events; writing it
    wakes a run held by a pause, to go on or end."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = f"_{name}"

    def __get__(self, worker: StreamWorker | None, owner: type | None = None):
        return self if worker is None else getattr(worker, self._name)

    def __set__(self, worker: StreamWorker, value: object) -> None:
        with worker._changed:
            setattr(worker, self._name, value)
            worker._changed.notify_all()


class StreamWorker(QObject):
    """Lives on a worker QThread; its ``run`` slot is invoked through a queued connection."""

    events_ready = Signal(int, object)  # run id, list of events
    run_done = Signal(int, float)  # run id, seconds
    run_failed = Signal(int, str)  # run id, message
    wanted_run = _WakingField()  # the run the GUI wants (0: none)
    paused = _WakingField()

    def __init__(self, blas_threads: int | None = 1, batch_seconds: float = BATCH_SECONDS) -> None:
        super().__init__()
        # With the GUI thread busy on one core, a second BLAS thread makes each matmul wait for it:
        # one thread unless asked.
        self.blas_threads = blas_threads
        self.batch_seconds = batch_seconds
        # The run the GUI wants and whether it is paused, written by the GUI thread and read here
        # between events (the worker cannot wait for a queued signal while it is busy in a run).
        # Each write wakes a run held by a pause, which then goes on or ends.
        self._changed = threading.Condition()
        self.wanted_run = 0
        self.paused = False
        self.held = threading.Event()  # set while a run waits in a pause

    @Slot(object, int)
    def run(self, job: Job, run_id: int) -> None:
        if run_id != self.wanted_run:  # superseded while queued
            return
        with _blas_limited(self.blas_threads):
            self._run(job, run_id)

    def _run(self, job: Job, run_id: int) -> None:
        def should_stop() -> bool:
            return self.wanted_run != run_id

        started = time.perf_counter()
        batch: list = []
        sent = -math.inf
        try:
            for event in job(should_stop):
                batch.append(event)
                now = time.perf_counter()
                paused = self.paused
                if paused or now - sent >= self.batch_seconds:
                    self.events_ready.emit(run_id, batch)
                    batch, sent = [], now
                if paused:
                    self._hold(run_id)
                if should_stop():
                    return
        except Exception as exc:  # noqa: BLE001 - any failure must reach the window, not die here
            if batch:  # the layers before the failure are shown with it
                self.events_ready.emit(run_id, batch)
            self.run_failed.emit(run_id, failure_text(exc))
            return
        if batch:
            self.events_ready.emit(run_id, batch)
        if not should_stop():
            self.run_done.emit(run_id, time.perf_counter() - started)

    def _hold(self, run_id: int) -> None:
        """Wait while paused, unless run ``run_id`` is no longer wanted."""
        with self._changed:
            self.held.set()
            self._changed.wait_for(lambda: not self.paused or self.wanted_run != run_id)
            self.held.clear()
