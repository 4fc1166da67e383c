"""App benchmark: how fast a change reaches the screen, and how long the GUI ever stalls.

    python tests/bench/bench_app.py [--repeats N] [--platform offscreen|xcb]

Prints, for the default preset (20 x 256, batch 512): the time from a control change (the seed
spin box) to the first layer painted and to the last, as the median and the worst of N changes,
with the histogram view and with the statistics view showing. "Painted" is the first paint event of
the view's plots after the window has put the layer's data into them; with the histograms of the
activations showing, the last layer that changes them is the forward pass's last. Then, during one L=500, W=256, B=512 run (and one of 250 pre-norm residual blocks, as many multiplies), the longest gap between ticks of a
5 ms heartbeat timer on the GUI thread, with the histogram and the heatmap view showing, with one
BLAS thread for the worker (the app's setting) and with BLAS's own default. Then what the user
feels (issue 10): the longest gap from the control changes on (layers 20 -> 500, then width and
batch), the relayout of a change of depth included, until that run's run_finished, on a quiet
machine and with a second process spinning a core. Then how long closing the window takes in the
middle of that run (the worker stops at its next layer). Last, the cold start: whole processes,
alternating, from launch to the window's first paint, against a bare `import PySide6, pyqtgraph`
and an empty QMainWindow shown.
Targets: first layer <= 100 ms, longest stall <= 50 ms (both), closing mid-run well within a
second, cold start <= 1.3x the bare one.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import (QCoreApplication, QElapsedTimer, QEvent, QEventLoop, QObject, QSettings,  # noqa: E402
                            QTimer)
from threadpoolctl import threadpool_info  # noqa: E402

from initsim.app import application, create_window  # noqa: E402
from initsim.app.window import MainWindow  # noqa: E402
from initsim.engine import SimConfig  # noqa: E402

DEEP = SimConfig(layers=500, width=256, batch=512)
# As many multiplies forward as DEEP, in pre-norm residual blocks (issue 13).
DEEP_BLOCKS = DEEP.replace(layers=250, residual="pre", norm="layer", branch_scale="1/sqrt(L)")

# Every window of the benchmark, those of the cold starts included, keeps its settings in a folder
# of its own, empty at first: restored from the user's, the last session's view (the depth heatmap)
# was built at start-up and its options (log density) changed what each paint cost.
SETTINGS_FOLDER = os.environ.setdefault("INITSIM_BENCH_SETTINGS", tempfile.mkdtemp(prefix="initsim-bench-"))


def use_settings_folder() -> None:
    for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(settings_format, QSettings.Scope.UserScope, SETTINGS_FOLDER)
HEARTBEAT_MS = 5


class PaintWatch(QObject):
    """Notes when a widget paints."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.painted_at: float | None = None
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.painted_at = time.perf_counter()
        return False


def wait(app, done, timeout: float = 120.0) -> None:
    """Run the event loop until ``done()``. A busy processEvents() loop would hold the GIL and a
    core, and starve the worker it is meant to measure; a 1 ms poll timer does not."""
    deadline = time.perf_counter() + timeout
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(1)
    poll.timeout.connect(lambda: loop.quit() if done() or time.perf_counter() > deadline else None)
    poll.start()
    if not done():
        loop.exec()
    poll.stop()
    if not done():
        raise TimeoutError("the window did not get there")


def change_to_paint(app, window: MainWindow, seed: int) -> tuple[float, float]:
    """Seconds from setting the seed to the first layer on screen and to the last one the
    current view shows."""
    view = window.tabs.currentWidget()
    viewport = view.plots.viewport()
    watch = PaintWatch(viewport)
    marks: dict[str, float] = {}
    # The histograms of activations change with the forward pass only.
    last = window.config().layers if view is window.histograms else 2 * window.config().layers

    def on_painted(received: int, total: int) -> None:
        marks.setdefault("first_data", time.perf_counter())
        if received >= last:
            marks.setdefault("last_data", time.perf_counter())

    window.painted.connect(on_painted)
    started = time.perf_counter()
    window.controls.seed.setValue(seed)
    try:
        wait(app, lambda: "first_data" in marks and watch.painted_at and watch.painted_at > marks["first_data"])
        first = watch.painted_at - started
        wait(app, lambda: "last_data" in marks and watch.painted_at > marks["last_data"])
        last = watch.painted_at - started
    finally:
        window.painted.disconnect(on_painted)
        viewport.removeEventFilter(watch)
    return first, last


def longest_stall(app, window: MainWindow, view, config: SimConfig = DEEP) -> tuple[float, float]:
    """(longest heartbeat gap, run seconds) of one run of ``config`` with ``view`` showing."""
    window.tabs.setCurrentWidget(view)
    settle_until = time.perf_counter() + 0.3  # the previous run's last paint is not this run's stall
    wait(app, lambda: time.perf_counter() > settle_until)
    gaps: list[float] = []
    clock = QElapsedTimer()
    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)

    def beat() -> None:
        gaps.append(clock.restart())

    heartbeat.timeout.connect(beat)
    finished: list[object] = []
    window.run_finished.connect(finished.append)
    clock.start()
    heartbeat.start()
    started = time.perf_counter()
    window.set_config(config)
    wait(app, lambda: bool(finished))
    seconds = time.perf_counter() - started
    heartbeat.stop()
    window.run_finished.disconnect(finished.append)
    return max(gaps) / 1000, seconds


def stall_from_change(app, window: MainWindow, view) -> tuple[float, float, float]:
    """(longest heartbeat gap, most GUI-thread CPU time between two heartbeats, seconds) from
    setting layers 20 -> 500, then width and batch, as a user would in the controls, to the
    run_finished of the DEEP run, with ``view`` showing. The CPU time is the window's own work,
    whatever else the machine runs; the gap adds waiting for the GIL and for a core."""
    window.tabs.setCurrentWidget(view)
    settle_until = time.perf_counter() + 0.3
    wait(app, lambda: time.perf_counter() > settle_until)
    beats: list[tuple[float, float]] = []
    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(lambda: beats.append((time.perf_counter(), time.thread_time())))
    finished: list[SimConfig] = []
    window.run_finished.connect(finished.append)
    beats.append((time.perf_counter(), time.thread_time()))
    heartbeat.start()
    window.controls.layers.setValue(DEEP.layers)
    window.controls.width.setValue(DEEP.width)
    window.controls.batch.setValue(DEEP.batch)
    wait(app, lambda: any(c.layers == DEEP.layers for c in finished))
    beats.append((time.perf_counter(), time.thread_time()))
    heartbeat.stop()
    window.run_finished.disconnect(finished.append)
    gaps = [(later[0] - earlier[0], later[1] - earlier[1]) for earlier, later in zip(beats, beats[1:])]
    return max(wall for wall, _ in gaps), max(cpu for _, cpu in gaps), beats[-1][0] - beats[0][0]


@contextmanager
def spinning_core():
    """A second process keeping one core busy, as a student's laptop doing something else."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


# Each prints nothing: the parent times the whole process, from launch to its exit at the first
# paint. Both leave with os._exit, so that neither's teardown is measured: for the window, that
# would be waiting for its first run's worker to stop at its next layer (0.8 s on a slow machine).
BARE_START = """
import os
import PySide6, pyqtgraph
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            os._exit(0)
        return False
window = QMainWindow()
watch = FirstPaint()
window.installEventFilter(watch)
window.resize(1360, 860)
window.show()
app.exec()
"""
APP_START = """
import os
from PySide6.QtCore import QEvent, QObject, QSettings
from initsim.app import application, create_window
for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
    QSettings.setPath(settings_format, QSettings.Scope.UserScope, os.environ["INITSIM_BENCH_SETTINGS"])
app = application([])
class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            os._exit(0)
        return False
watch = FirstPaint()
window = create_window(first_run_at_first_paint=True)  # as initsim opens it
window.installEventFilter(watch)
window.show()
app.exec()
"""


def dispose(window: MainWindow) -> None:
    """Close ``window`` and free it now, outside any measurement: a user has one window, and a
    bench that left each old one to the cycle collector timed the collector tearing it down in the
    next window's run (a 250 ms turn of the GUI thread). Shut down first, it saves no settings: each
    window of the bench starts from the defaults."""
    window.shutdown()
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def cold_start(script: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--starts", type=int, default=7, help="cold starts of each kind")
    args = parser.parse_args()
    use_settings_folder()
    app = application([])
    blas = ", ".join(f"{i['internal_api']} ({i['num_threads']} threads)" for i in threadpool_info()) or "none loaded"
    print(f"platform {app.platformName()}, {os.cpu_count()} cores, BLAS: {blas}")

    window = create_window()
    window.resize(1360, 860)
    window.show()
    wait(app, lambda: window.displayed_state() is not None and window.displayed_state().complete)
    window.histograms.set_quantity("post")
    seed = 0
    for view in (window.histograms, window.stats):
        window.tabs.setCurrentWidget(view)
        firsts, lasts = [], []
        for _ in range(args.repeats):
            seed += 1
            first, last = change_to_paint(app, window, seed)
            firsts.append(first)
            lasts.append(last)
            wait(app, lambda: not window.controller.running)
        name = window.tabs.tabText(window.tabs.indexOf(view))
        print(f"default preset, {name} showing: change -> first layer painted median "
              f"{statistics.median(firsts) * 1000:.0f} ms, worst {max(firsts) * 1000:.0f} ms "
              f"(target <= 100 ms); -> last layer painted median {statistics.median(lasts) * 1000:.0f} ms, "
              f"worst {max(lasts) * 1000:.0f} ms")
    dispose(window)

    for label, blas_threads in (("1 BLAS thread (the app)", 1), ("BLAS default threads", None)):
        window = create_window(blas_threads=blas_threads)  # from the default preset, as a user would
        window.resize(1360, 860)
        window.show()
        wait(app, lambda: window.displayed_state() is not None and window.displayed_state().complete)
        for config, network in ((DEEP, "L=500 W=256 B=512"), (DEEP_BLOCKS, "250 pre-norm blocks W=256 B=512")):
            for view in (window.histograms, window.heatmap):
                stall, seconds = longest_stall(app, window, view, config)
                name = window.tabs.tabText(window.tabs.indexOf(view))
                print(f"{network}, {label}, {name} showing: longest GUI stall {stall * 1000:.0f} ms "
                      f"(target <= 50 ms), run {seconds:.2f} s")
        dispose(window)

    for label, load in (("quiet", nullcontext), ("a second process spinning a core", spinning_core)):
        for view_of in (lambda w: w.histograms, lambda w: w.heatmap):
            window = create_window()  # the default preset: 20 layers
            window.resize(1360, 860)
            window.show()
            wait(app, lambda: window.displayed_state() is not None and window.displayed_state().complete)
            with load():
                stall, cpu, seconds = stall_from_change(app, window, view_of(window))
            name = window.tabs.tabText(window.tabs.currentIndex())
            print(f"layers 20 -> 500, width, batch set in the controls, {name} showing, {label}: longest "
                  f"GUI stall from the change on {stall * 1000:.0f} ms (target <= 50 ms; GUI thread's own "
                  f"work in a turn at most {cpu * 1000:.0f} ms), to run_finished {seconds:.2f} s")
            dispose(window)

    window = create_window(DEEP)
    window.show()
    wait(app, lambda: window.displayed_state() is not None and window.displayed_state().received >= 100)
    started = time.perf_counter()
    window.close()
    closed = time.perf_counter() - started
    state = window.controller.state
    print(f"closing in the middle of the L=500 run (layer {state.received} of {state.total} done): "
          f"closed, worker ended, in {closed * 1000:.0f} ms; thread running: {window.controller.thread.isRunning()}")
    window.deleteLater()
    app.processEvents()

    bare, started = [], []
    for _ in range(args.starts):
        bare.append(cold_start(BARE_START))
        started.append(cold_start(APP_START))
    print(f"cold start to the first painted window, whole processes, {args.starts} alternating: initsim "
          f"median {statistics.median(started) * 1000:.0f} ms, bare PySide6 + pyqtgraph + QMainWindow "
          f"{statistics.median(bare) * 1000:.0f} ms, ratio "
          f"{statistics.median(started) / statistics.median(bare):.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
