"""What the app tests share: small configs, waiting for a window to settle, and the check that
what a window paints is the engine's result for its config."""

from __future__ import annotations

import weakref

import numpy as np
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QThread, QTimer
from threadpoolctl import threadpool_limits

from initsim.app.model.histograms import (LOG_DECADES, common_grid, depth_image, panel_curve, panel_layers,
                                    panel_stride)
from initsim.app.views.heatmap_view import VALUE_BINS
from initsim.app.views.histogram_view import SHARED_BINS
from initsim.app.model.runstate import QUANTITIES
from initsim.app.window import MainWindow
from initsim.engine import SimConfig, SimResult, simulate

# Every QThread and QTimer started from Python, to check that none outlives its test.
_started: list[weakref.ref] = []


def _tracking(start):
    def tracked_start(self, *args, **kwargs):
        _started.append(weakref.ref(self))
        return start(self, *args, **kwargs)
    return tracked_start


QThread.start = _tracking(QThread.start)
QTimer.start = _tracking(QTimer.start)


def leftovers() -> list[str]:
    """The QThreads still running and QTimers still active among those started since the last
    call (deleted ones excepted), described."""
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    found = []
    for ref in _started:
        obj = ref()
        if obj is None or not shiboken6.isValid(obj):
            continue
        if obj.parent() is not None and obj.parent() is QCoreApplication.instance():
            continue  # lives as long as the application, by design
        if isinstance(obj, QThread) and obj.isRunning():
            found.append(f"QThread {obj.objectName()!r} still running")
        elif isinstance(obj, QTimer) and obj.isActive():
            found.append(f"QTimer (interval {obj.interval()} ms, parent {type(obj.parent()).__name__}) still active")
    _started.clear()
    return found


# Small and fast: the window tests care about what is painted, not about the engine's speed. A
# test that acts on a run in progress pauses its runner (StreamRunner.pause) rather than picking
# a run long enough to be still going.
SMALL = SimConfig(layers=5, width=16, batch=32, activation="tanh", init="xavier_normal", seed=3)

# How long a test waits for something to happen (a run to end, a worker to hold) before it fails:
# a bound for a loaded machine, not a speed requirement; waits end as soon as the thing happens.
TIMEOUT_MS = 60_000
TIMEOUT_S = TIMEOUT_MS / 1000


def settled(window: MainWindow) -> bool:
    """The window shows, completely, the config its controls say, and nothing is pending."""
    state = window.displayed_state()
    return (state is not None and state.complete and state is window.controller.state
            and window.painted_whole() and window.displayed_config() == window.config())


def settle(qtbot, window: MainWindow, timeout: int = TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: settled(window), timeout=timeout)


def train_to_the_end(qtbot, window: MainWindow, steps: int):
    """Train the window's network for ``steps`` steps from the Training tab, shown, and wait for the
    end; the view."""
    view = window.training
    window.tabs.setCurrentWidget(view)
    view.settings.steps.setValue(steps)
    view.start()
    qtbot.waitUntil(lambda: not view.running and view.seconds is not None, timeout=TIMEOUT_MS)
    return view


def start_held(qtbot, window: MainWindow, config: SimConfig) -> None:
    """From a settled window: run ``config`` on the paused runner and wait until its first layer is
    painted. The run is then in progress, held, until the runner resumes or the run is cancelled."""
    runner = window.controller.runner
    runner.pause()
    window.set_config(config)
    state = window.controller.state
    assert runner.held.wait(TIMEOUT_S), "the run did not reach its first layer"
    qtbot.waitUntil(lambda: window.displayed_state() is state, timeout=TIMEOUT_MS)


def reference(config: SimConfig) -> SimResult:
    """The engine's result for ``config``, computed as the worker does (one BLAS thread)."""
    with threadpool_limits(1):
        return simulate(config)


def nan_equal(actual, expected) -> None:
    np.testing.assert_array_equal(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float))


def engine_stats(result: SimResult, quantity: str, layer: int):
    if quantity == "grad":
        return result.backward[layer - 1].grad
    return getattr(result.forward[layer - 1], quantity)


def engine_series(result: SimResult, name: str) -> np.ndarray:
    """A StatsView curve's y values, computed from the engine's result."""
    per_layer = {
        "pre_std": [f.pre.std for f in result.forward],
        "post_std": [f.post.std for f in result.forward],
        "grad_std": [b.grad.std for b in result.backward],
        "theory_pre_std": [f.theory_pre_std for f in result.forward],
        "theory_post_std": [np.nan if f.theory_post_std is None else f.theory_post_std for f in result.forward],
        "theory_grad_std": [np.nan if b.theory_grad_std is None else b.theory_grad_std
                            for b in result.backward],
        "dead_fraction": [100 * f.dead_fraction for f in result.forward],
        "saturated_fraction": [100 * f.saturated_fraction for f in result.forward],
        "sample_correlation": [f.geometry.correlation for f in result.forward],
        "theory_sample_correlation": [np.nan if f.theory_sample_correlation is None else f.theory_sample_correlation
                                      for f in result.forward],
    }[name]
    values = np.array(per_layer, dtype=float)
    if name.endswith("std"):  # drawn on a log axis: zeros and non-finite values are gaps
        values[~(values > 0) | ~np.isfinite(values)] = np.nan
    return values


def assert_histograms_paint(window: MainWindow, result: SimResult) -> None:
    """The histogram panels show ``result`` in the view's current quantity and x-range mode."""
    histograms = window.histograms
    quantity = histograms.quantity
    shown = {panel.layer: engine_stats(result, quantity, panel.layer) for panel in histograms.panels}
    assert list(shown) == panel_layers(result.config.layers, panel_stride(result.config.layers))
    grid = (common_grid((s.histogram for s in shown.values()), SHARED_BINS)
            if histograms.shared_x.isChecked() else None)
    for panel in histograms.panels:
        x, y = panel_curve(shown[panel.layer].histogram, grid)
        nan_equal(panel.curve.xData, x)
        nan_equal(panel.curve.yData, y)
        assert panel.stats.std == shown[panel.layer].std or np.isnan(shown[panel.layer].std)
        assert panel.plot.titleLabel.text.startswith(f"{result.config.part} {panel.layer} ")


def assert_paints(window: MainWindow, result: SimResult) -> None:
    """Every view of ``window``, in every display mode, shows exactly ``result``."""
    assert window.displayed_config() == result.config
    layers = result.config.layers

    window.tabs.setCurrentWidget(window.histograms)
    for quantity, _ in QUANTITIES:
        window.histograms.set_quantity(quantity)
        for shared in (False, True):
            window.histograms.shared_x.setChecked(shared)
            assert_histograms_paint(window, result)

    heatmaps = window.heatmap
    window.tabs.setCurrentWidget(heatmaps)
    for log in (False, True):
        heatmaps.log_density.setChecked(log)
        for depth_map in heatmaps.maps:
            shown = [engine_stats(result, depth_map.quantity, layer).histogram for layer in range(1, layers + 1)]
            expected = depth_image(shown, common_grid(shown, VALUE_BINS), log)
            nan_equal(depth_map.image.image, expected)
            assert np.nanmin(expected, initial=0) >= (-LOG_DECADES if log else 0)

    window.tabs.setCurrentWidget(window.stats)
    stats = window.stats
    for plot in (stats.std_plot, stats.fraction_plot, stats.correlation_plot):  # every layer, in each
        np.testing.assert_allclose(plot.viewRange()[0], [0.5, layers + 0.5])
    for name, curve in window.stats.curves.items():
        expected = engine_series(result, name)
        if np.all(np.isnan(expected)):  # nothing to draw
            assert curve.yData is None or len(curve.yData) == 0
            continue
        nan_equal(curve.xData, np.arange(1, layers + 1))
        nan_equal(curve.yData, expected)
