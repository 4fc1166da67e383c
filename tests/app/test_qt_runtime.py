"""The Qt stack under the app: known binding bugs and the test suite's own leak check."""

from __future__ import annotations

import gc
import sys
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QThread, QTimer

from appcheck import TIMEOUT_MS, leftovers


def test_repainting_a_plot_does_not_drop_references_to_none(qtbot):
    """PySide6 6.12.0 on Python 3.11 loses a reference to None on every void QPainter call;
    pyqtgraph paints so much that the process soon dies (none_dealloc)."""
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    curve = widget.plot(np.arange(100), np.zeros(100), pen="b", symbol="o")
    widget.grab()
    # Collecting garbage frees objects that hold None: with the collector off, only the painting
    # can change the count.
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        before = sys.getrefcount(None)
        for i in range(200):
            curve.setData(np.arange(100), np.sin(np.arange(100) / 10 + i))
            widget.grab()
        after = sys.getrefcount(None)
    finally:
        if collecting:
            gc.enable()
    assert after >= before


def test_the_leak_check_sees_a_running_timer_and_thread(qtbot):
    timer = QTimer()
    timer.start(1000)
    thread = QThread()
    thread.setObjectName("probe")
    thread.start()
    found = leftovers()
    timer.stop()
    thread.quit()
    thread.wait()
    assert any("QTimer" in item for item in found)
    assert any("'probe' still running" in item for item in found)
    assert leftovers() == []


class _Cycle:
    """Garbage that only the cycle collector frees; says on which thread it was freed."""

    def __init__(self, freed_on: list[str]):
        self.itself = self
        self.freed_on = freed_on

    def __del__(self):
        self.freed_on.append(threading.current_thread().name)


def test_cycles_are_collected_on_the_gui_thread_while_other_threads_allocate(qtbot, make_window):
    """A collection on a worker thread destroys widgets there, which deadlocks or crashes Qt."""
    make_window()
    freed_on: list[str] = []
    _Cycle(freed_on)
    allocator = threading.Thread(target=lambda: [[] for _ in range(100_000)], name="allocator")
    allocator.start()
    allocator.join()
    qtbot.waitUntil(lambda: bool(freed_on), timeout=TIMEOUT_MS)
    assert freed_on == [threading.main_thread().name]


def test_an_open_window_is_out_of_the_collectors_sight_and_back_in_it_once_closed(qtbot, make_window):
    """A full collection over every object of the imported modules and the window took the GUI
    thread 110 ms in the middle of a run: while the window is open, the collector looks only at
    what came after it, and a closed window can be collected again."""
    window = make_window()

    def seen(obj) -> bool:
        return any(tracked is obj for tracked in gc.get_objects())

    assert not seen(window) and not seen(window.controls)
    assert not seen(window.heatmap.maps[0])  # a view built later, as it is
    assert gc.get_freeze_count() > 10_000  # the modules' objects too
    made_later: list[object] = []
    assert seen(made_later)  # what comes later is collected as before
    window.close()
    assert gc.get_freeze_count() == 0
    assert seen(window)
