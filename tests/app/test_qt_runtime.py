"""The Qt stack under the app: known binding bugs and the test suite's own leak check."""

from __future__ import annotations

import sys

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QThread, QTimer

from appcheck import leftovers


def test_repainting_a_plot_does_not_drop_references_to_none(qtbot):
    """PySide6 6.12.0 on Python 3.11 loses a reference to None on every void QPainter call;
    pyqtgraph paints so much that the process soon dies (none_dealloc)."""
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    curve = widget.plot(np.arange(100), np.zeros(100), pen="b", symbol="o")
    widget.grab()
    before = sys.getrefcount(None)
    for i in range(200):
        curve.setData(np.arange(100), np.sin(np.arange(100) / 10 + i))
        widget.grab()
    assert sys.getrefcount(None) >= before


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
