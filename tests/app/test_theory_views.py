"""The Theory, Spectra and Sweep views and the finite-width band against the engine: what they show
is the engine's result for the window's config, and none of them leaves work running."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox
from threadpoolctl import threadpool_limits

from initsim.app.views.phase_plot import LOG_DEPTH_LEVELS, MARKER_SIZE
from initsim.app.views.spectra_view import (THEORY_COLUMN, jacobian_numbers, jacobian_result, layer_variance,
                                            shown_histogram)
from initsim.app.views.sweep_view import sweep_configs
from initsim.app.views.theory_view import GRID, round_to_span
from initsim.app.views.plotstyle import density_steps, positive
from initsim.engine import get_activation, initial_weights
from initsim.engine.spectra import isometry_pair, jacobian_spectrum, weight_spectrum
from initsim.engine.sweep import finite_width_band, sweep
from initsim.engine.phase_export import axes_from_zero, default_extent
from initsim.engine.theory import config_at, config_sigmas, phase_axes, phase_diagram, phase_of

from appcheck import SMALL, TIMEOUT_MS, TIMEOUT_S, nan_equal, settle
from gated import GatedExecutor


def thread_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(2)


def show_view(qtbot, window, view):
    """Switch to ``view`` and wait until it shows the displayed run's config, computed."""
    window.tabs.setCurrentWidget(view)
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.config == window.displayed_config() and view.up_to_date(), timeout=TIMEOUT_MS)
    return view


def show_theory(qtbot, window):
    return show_view(qtbot, window, window.theory)


def engine_diagram(config):
    act, params = get_activation(config.activation), dict(config.activation_params)
    return phase_diagram(act, params, *axes_from_zero(default_extent(act, params), GRID))


def is_empty(curve) -> bool:
    return curve.xData is None or len(curve.xData) == 0


def marker_position(view) -> tuple[float, float]:
    return view.figure.point.position()


# --- Theory ------------------------------------------------------------------------------------

def test_the_marker_sits_at_the_config_sigmas_and_follows_the_controls(qtbot, make_window):
    window = make_window()
    view = show_theory(qtbot, window)
    assert marker_position(view) == config_sigmas(SMALL.validated())
    moved = SMALL.replace(init="normal", init_params={"std": 0.3}, bias_init="normal",
                          bias_params={"std": 0.2}).validated()
    window.set_config(moved)
    view = show_theory(qtbot, window)
    assert marker_position(view) == pytest.approx(config_sigmas(moved))  # (16 * 0.09, 0.04)
    assert f"<b>{phase_of(view.point.chi1)}</b>" in view.numbers.text()


def test_the_image_is_the_engine_phase_diagram_in_both_colourings(qtbot, make_window):
    window = make_window()
    view = show_theory(qtbot, window)
    expected = engine_diagram(SMALL)
    shown = view.result.diagram
    nan_equal(shown.chi1, expected.chi1)
    nan_equal(view.figure.phase.critical.yData, expected.sigma_b2)
    nan_equal(view.figure.phase.critical.xData, expected.critical_sigma_w2)
    low, high = view.figure.phase.image.levels
    assert high == -low > 0
    nan_equal(view.figure.phase.image.image, np.clip(expected.log_chi1, low, high).T)
    view.mode.setCurrentIndex(view.mode.findData("depth"))
    nan_equal(view.figure.phase.image.image, np.clip(np.log10(expected.depth_scale), *LOG_DEPTH_LEVELS).T)
    assert view.figure.region_labels["ordered"].isVisible() and view.figure.region_labels["chaotic"].isVisible()

    relu = SMALL.replace(activation="relu", init="kaiming_normal", init_params={})
    window.set_config(relu)
    view = show_theory(qtbot, window)
    nan_equal(view.result.diagram.chi1, engine_diagram(relu.validated()).chi1)
    np.testing.assert_allclose(view.figure.phase.critical.xData, 2.0)  # He's critical point, whatever the bias


def test_a_point_outside_the_diagram_widens_its_axes(qtbot, make_window):
    far = SMALL.replace(bias_init="normal", bias_params={"std": 0.5})  # sigma_b^2 0.25, default top 0.1
    view = show_theory(qtbot, make_window(far))
    qtbot.waitUntil(lambda: view.result.diagram.sigma_b2[-1] > 0.25, timeout=TIMEOUT_MS)
    assert view.figure.phase.rect.contains(*marker_position(view))
    assert "outside" not in view.numbers.text()


def marker_and_label_in_scene(view) -> tuple[QRectF, QRectF]:
    """The marker's circle and its label's box, in scene coordinates, as last painted."""
    view.plots.grab()  # a paint: a label follows the view's transform when told a paint is coming
    x, y = marker_position(view)
    centre = view.figure.phase.plot.vb.mapViewToScene(QPointF(x, y))
    radius = MARKER_SIZE / 2 + 1.5  # its pen's half width
    return (QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius),
            view.figure.point.label.sceneBoundingRect())


# tanh's default axes end at (3, 0.1); (2.6, 0.0869) is as near their corner as a point gets without
# widening them.
@pytest.mark.parametrize("sigmas", [(0.0, 0.0), (1e-6, 0.0), (2.6, 0.0869), (256.0, 0.0), (1e4, 3.0), (0.5, 40.0)],
                         ids=["zero", "tiny", "near_the_corner", "256", "1e4", "high_bias"])
def test_the_axes_hold_the_point_with_its_marker_and_label_inside_the_plot(qtbot, make_window, sigmas):
    config = config_at(SMALL, *sigmas) if sigmas[0] else SMALL.replace(init="zeros", init_params={})
    view = show_theory(qtbot, make_window(config, size=(1000, 640)))  # a small plot: less room for the label
    assert marker_position(view) == pytest.approx(config_sigmas(config.validated()), rel=1e-12)
    plot_area = view.figure.phase.plot.vb.sceneBoundingRect()
    marker, label = marker_and_label_in_scene(view)
    assert plot_area.contains(marker) and plot_area.contains(label), (plot_area, marker, label)
    nearest = QPointF(min(max(marker.center().x(), label.left()), label.right()),
                      min(max(marker.center().y(), label.top()), label.bottom()))
    assert math.dist(nearest.toTuple(), marker.center().toTuple()) >= marker.width() / 2  # the label covers no marker
    assert "outside" not in view.numbers.text()


def test_zero_weights_sit_in_the_corner_and_say_no_signal(qtbot, make_window):
    view = show_theory(qtbot, make_window(SMALL.replace(init="zeros", init_params={})))
    assert view.result.diagram.sigma_w2[0] == view.result.diagram.sigma_b2[0] == 0  # a grid point
    assert marker_position(view) == (0, 0)
    assert "zero weights, no signal" in view.figure.point.label.toPlainText()


def test_a_network_whose_variance_grows_without_bound_has_no_fixed_point(qtbot, make_window):
    softplus = config_at(SMALL.replace(activation="softplus"), 2.0, 0.0)  # the map stays above q
    view = show_theory(qtbot, make_window(softplus))
    assert "q* = \u221e" in view.numbers.text() and "No fixed point" in view.numbers.text()


def test_zero_weights_are_said_to_pass_no_signal_not_to_shrink_it_every_0_layers(qtbot, make_window):
    view = show_theory(qtbot, make_window(SMALL.replace(init="zeros", init_params={})))
    assert view.point.chi1 == 0
    assert "no signal" in view.numbers.text() and "every 0 layers" not in view.numbers.text()
    assert "symmetry" in view.numbers.text()


def test_a_click_sets_the_config_at_the_clicked_point(qtbot, make_window):
    window = make_window()
    view = show_theory(qtbot, window)
    pos = view.point_in_widget(1.5, 0.05)
    qtbot.mouseClick(view.plots.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    clicked = view.figure.phase.plot.vb.mapSceneToView(view.plots.mapToScene(pos))
    diagram = view.result.diagram
    expected = (round_to_span(clicked.x(), diagram.sigma_w2[-1]), round_to_span(clicked.y(), diagram.sigma_b2[-1]))
    assert expected == pytest.approx((1.5, 0.05), abs=0.01)  # within a pixel or two of the aim
    config = window.config()
    assert (config.init, config.bias_init) == ("variance_scaling", "normal")
    assert config_sigmas(config) == pytest.approx(expected, rel=1e-12)
    view = show_theory(qtbot, window)
    assert marker_position(view) == pytest.approx(expected, rel=1e-12)


# --- Spectra -----------------------------------------------------------------------------------

def show_spectra(qtbot, window):
    return show_view(qtbot, window, window.spectra)


def assert_jacobian_shown(view, role, config):
    with threadpool_limits(1):  # as the worker computes it
        expected = jacobian_spectrum(config)
    result = view.jacobians[role]
    assert result.config == config
    nan_equal(result.spectrum.singular_values, expected.singular_values)
    numbers = jacobian_numbers(result)
    assert (numbers["max s"], numbers["max/min"]) == (f"{expected.max:.4g}", f"{expected.condition:.4g}")
    assert numbers["mean s\u00b2"] == f"{expected.mean_square:.4g}"
    assert numbers[THEORY_COLUMN] == f"{expected.mean_square_theory:.4g}"
    assert all(value.replace(" ", "\u00a0") in view.jacobian_numbers.text() for value in numbers.values())
    histogram = shown_histogram(result, view.log_scale.isChecked())
    nan_equal(view.jacobian_curves[role].xData, histogram.edges)
    nan_equal(view.jacobian_curves[role].yData, density_steps(histogram.counts, histogram.edges))


def test_spectra_are_the_engine_spectra_of_the_config(qtbot, make_window):
    window = make_window()
    view = show_spectra(qtbot, window)
    config = SMALL.validated()
    assert_jacobian_shown(view, "network", config)
    assert view.layer.value() == 2
    w = initial_weights(config)[1][0]
    expected = weight_spectrum(w, layer_variance(config, 2))
    nan_equal(view.weights.spectrum.eigenvalues, expected.eigenvalues)
    assert expected.variance == pytest.approx(config_sigmas(config)[0] / config.width)
    nan_equal(view.law.yData, expected.density(view.law.xData))
    assert f"{expected.ks_distance():.3f}" in view.weight_numbers.text()

    view.scale.setCurrentIndex(view.scale.findData("measured"))
    view.layer.setValue(4)
    view = show_spectra(qtbot, window)
    assert view.weights.spectrum.variance == weight_spectrum(initial_weights(config)[3][0]).variance

    qtbot.mouseClick(view.compare, Qt.MouseButton.LeftButton)
    view = show_spectra(qtbot, window)
    gaussian, orthogonal = isometry_pair(config)
    assert_jacobian_shown(view, "gaussian", gaussian)
    assert_jacobian_shown(view, "orthogonal", orthogonal)
    assert is_empty(view.jacobian_curves["network"])


def test_a_normalized_network_has_no_jacobian_and_says_why(qtbot, make_window):
    view = show_spectra(qtbot, make_window(SMALL.replace(norm="layer")))
    assert view.jacobians["network"].spectrum is None
    assert "normalization" in view.jacobian_numbers.text()


def test_a_jacobian_too_large_for_the_view_is_refused_with_the_reason():
    big = SMALL.replace(layers=100, width=1024, batch=1).validated()
    result = jacobian_result("network", big)  # returns at once: nothing is multiplied
    assert result.spectrum is None and "about 6 s" in result.error
    assert jacobian_result("network", SMALL.validated()).spectrum is not None


def test_zero_weights_have_rank_zero_and_no_law(qtbot, make_window):
    window = make_window(SMALL.replace(init="zeros"))
    view = show_spectra(qtbot, window)
    assert jacobian_numbers(view.jacobians["network"])["rank"] == "0 / 16"
    assert is_empty(view.jacobian_curves["network"])  # no nonzero singular value to put on a log axis
    assert "every weight is 0" in view.weight_numbers.text()
    theory = show_theory(qtbot, window)
    assert marker_position(theory) == (0, 0)


# --- Sweep -------------------------------------------------------------------------------------

def start_sweep(qtbot, window, size: int, pool=thread_pool):
    view = window.sweep
    view.runner.pool.factory = pool
    window.tabs.setCurrentWidget(view)
    settle(qtbot, window)
    view.grid_choice.setCurrentIndex(view.grid_choice.findData(size))
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.running and view.stop_button.isEnabled()
    return view


def test_a_tiny_sweep_fills_in_to_the_engine_results(qtbot, make_window):
    window = make_window()
    view = start_sweep(qtbot, window, 4)
    qtbot.waitUntil(lambda: not view.running, timeout=TIMEOUT_MS)
    config = SMALL.validated()
    act, params = get_activation(config.activation), dict(config.activation_params)
    diagram = phase_diagram(act, params, *phase_axes(act, params, 4))
    nan_equal(view.plan.diagram.chi1, diagram.chi1)
    with threadpool_limits(1), thread_pool() as executor:
        results = list(sweep(sweep_configs(config, diagram), executor))
    expected = np.full((4, 4), np.nan)
    for result in results:
        expected.flat[result.index] = result.measured_chi1
    assert view.finished.all() and view.progress.value() == view.progress.maximum() == 16
    nan_equal(view.measured_chi1, expected)
    assert not np.isnan(view.measured.image.image).any()  # every cell drawn
    assert "Done: 16 points" in view.status.text()


def test_stop_and_close_mid_sweep_leave_nothing_running(qtbot, make_window):
    window = make_window()
    executor = GatedExecutor()
    view = start_sweep(qtbot, window, 4, lambda: executor)
    executor.allow(1)  # one point is simulated, the other 15 wait
    qtbot.waitUntil(lambda: view.finished.any(), timeout=TIMEOUT_MS)
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    assert not view.running and view.run_button.isEnabled() and not view.stop_button.isEnabled()
    assert view.status.text() == "Stopped: 1 of 16 points."
    # The tasks not started are cancelled (within the sweep's poll of its stop), before any runs.
    qtbot.waitUntil(lambda: all(f.done() or f.running() for f in executor.futures), timeout=TIMEOUT_MS)
    assert sum(f.cancelled() for f in executor.futures) >= 14
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    executor.allow(2)  # the stopped sweep's task already waiting, if any, and the new sweep's first
    qtbot.waitUntil(lambda: view.finished.any(), timeout=TIMEOUT_MS)
    assert view.running and not view.finished.all()
    window.close()  # mid-sweep: returns once the runner's thread and the pool's workers have ended
    assert not view.runner.thread.isRunning() and not view.runner.pool.started


# --- the finite-width band ---------------------------------------------------------------------

def test_the_band_is_the_engine_finite_width_band(qtbot, make_window):
    window = make_window()
    band = window.stats.band
    band.runner.pool.factory = thread_pool
    window.tabs.setCurrentWidget(window.stats)
    settle(qtbot, window)
    assert not band.enabled.isChecked() and not band.runner.pool.started  # off by default: it costs 8 runs
    band.enabled.setChecked(True)
    qtbot.waitUntil(lambda: band.complete, timeout=TIMEOUT_MS)
    with threadpool_limits(1), thread_pool() as executor:
        expected = finite_width_band(SMALL.validated(), seeds=8, executor=executor)
    for name in ("pre_std", "grad_std"):
        shown, wanted = getattr(band.band, name), getattr(expected, name)
        for part in ("median", "low", "high"):
            nan_equal(getattr(shown, part), getattr(wanted, part))
        low, high, median = band.items[name]
        nan_equal(low.yData, positive(wanted.low))
        nan_equal(high.yData, positive(wanted.high))
        nan_equal(median.yData, positive(wanted.median))
    assert "8 seeds" in band.note.text()
    band.enabled.setChecked(False)
    assert all(is_empty(item) for items in band.items.values() for item in items)


def test_closing_while_the_band_is_computed_leaves_nothing_running(qtbot, make_window):
    window = make_window()
    band = window.stats.band
    executor = GatedExecutor()  # no seed is simulated before the window closes
    band.runner.pool.factory = lambda: executor
    window.tabs.setCurrentWidget(window.stats)
    settle(qtbot, window)
    band.enabled.setChecked(True)
    assert band.runner.pool.started and band.runner.busy
    window.close()  # returns once the runner's thread and the pool's workers have ended
    assert not band.runner.thread.isRunning() and not band.runner.pool.started and not band.complete
    assert all(future.done() for future in executor.futures)



# --- all of them -------------------------------------------------------------------------------

def test_every_control_of_these_views_has_a_tooltip(make_window):
    window = make_window()
    for view in (window.theory, window.spectra, window.sweep, window.stats):
        window.tabs.setCurrentWidget(view)
        controls = [w for kind in (QAbstractSpinBox, QComboBox, QAbstractButton)
                    for w in view.findChildren(kind) if w.isVisibleTo(window)
                    and not isinstance(w.parent(), QAbstractSpinBox)]  # a spin box's own line edit
        assert controls and all(w.toolTip() for w in controls), [w.objectName() for w in controls if not w.toolTip()]


def test_closing_while_the_theory_and_spectra_compute_leaves_nothing_running(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    window.spectra.compare.setChecked(True)
    for view in (window.theory, window.spectra):
        view.runner.pause()
        window.tabs.setCurrentWidget(view)
        assert view.runner.held.wait(TIMEOUT_S)  # its first result sent, the rest held
        assert view.runner.busy
    window.close()  # returns once both runners' threads have ended
    assert not window.theory.runner.thread.isRunning() and not window.spectra.runner.thread.isRunning()
