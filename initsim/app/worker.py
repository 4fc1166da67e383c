"""The stream worker: runs an engine generator on its own QThread and sends its events to the GUI
thread in small batches. It never touches a widget.

A job is a function of ``should_stop`` that returns the engine's stream of small events (layer
summaries, training steps, sweep results): every background computation of the app runs this way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, Signal, Slot
from threadpoolctl import threadpool_limits

from initsim.engine import SimConfig, simulate_stream

# Events produced faster than this are sent together: a tiny net yields thousands of layers a
# second, and one queued signal per layer would flood the GUI thread's event queue.
BATCH_SECONDS = 0.015

Job = Callable[[Callable[[], bool]], Iterable[object]]


def simulation_job(config: SimConfig) -> Job:
    return lambda should_stop: simulate_stream(config, should_stop)


class StreamWorker(QObject):
    """Lives on a worker QThread; its ``run`` slot is invoked through a queued connection."""

    events_ready = Signal(int, object)  # run id, list of events
    run_done = Signal(int, float)  # run id, seconds
    run_failed = Signal(int, str)  # run id, message

    def __init__(self, blas_threads: int | None = 1) -> None:
        super().__init__()
        # With the GUI thread busy on one core, a second BLAS thread makes each matmul wait for
        # it (a 100-layer pass measured 2.2 s with 2 OpenBLAS threads, 0.07 s with 1).
        self.blas_threads = blas_threads
        # The run the GUI wants, written by the GUI thread and read here between events. A plain
        # int attribute: reading and rebinding it are atomic under the GIL, and the worker cannot
        # wait for a queued signal while it is busy in a run.
        self.wanted_run = 0

    @Slot(object, int)
    def run(self, job: Job, run_id: int) -> None:
        if run_id != self.wanted_run:  # superseded while queued
            return
        with threadpool_limits(self.blas_threads):
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
                if now - sent >= BATCH_SECONDS:
                    self.events_ready.emit(run_id, batch)
                    batch, sent = [], now
                if should_stop():
                    return
        except Exception as exc:  # noqa: BLE001 - any failure must reach the window, not die here
            self.run_failed.emit(run_id, f"{type(exc).__name__}: {exc}")
            return
        if batch:
            self.events_ready.emit(run_id, batch)
        if not should_stop():
            self.run_done.emit(run_id, time.perf_counter() - started)
