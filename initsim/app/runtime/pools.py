"""Executors for the views' sweeps: created on first use, reused, shut down with the window."""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Callable


def core_count() -> int:
    """The cores this process may run on: a local pool's default number of workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LazyPool:
    """An executor made by ``factory`` when first needed: a process pool costs about a second to
    start (each worker imports numpy and the engine), so one is started once and reused.

    Tests replace ``factory`` with a thread pool's before the first use."""

    def __init__(self, factory: Callable[[], cf.Executor]) -> None:
        self.factory = factory
        self._executor: cf.Executor | None = None

    def get(self) -> cf.Executor:
        if self._executor is None:
            self._executor = self.factory()
        return self._executor

    @property
    def started(self) -> bool:
        return self._executor is not None

    def shutdown(self) -> None:
        """Cancel the tasks not started and wait for the running ones (each is one simulation of
        the network on screen). Safe to call more than once."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
