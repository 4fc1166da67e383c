"""An executor whose tasks run when the test says, not when the machine gets to them: for tests of
work that must still be going (or not yet started) when the test acts."""

from __future__ import annotations

import concurrent.futures as cf
import threading


class GatedExecutor(cf.ThreadPoolExecutor):
    """One worker thread; each task waits for a permit (`allow`) before it runs. Shutting down
    cancels what it is asked to, then lets the tasks left run, so that it returns."""

    def __init__(self, permits: int = 0) -> None:
        super().__init__(1)
        self._permits = threading.Semaphore(permits)
        self.futures: list[cf.Future] = []

    def allow(self, tasks: int = 1) -> None:
        """Let ``tasks`` more tasks run, in the order they were submitted."""
        self._permits.release(tasks)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        def task():
            self._permits.acquire()
            return fn(*args, **kwargs)

        future = super().submit(task)
        self.futures.append(future)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=False, cancel_futures=cancel_futures)
        self.allow(len(self.futures))
        super().shutdown(wait=wait)
