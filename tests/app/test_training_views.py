"""The Training and Compare tabs against the engine: what they paint is the engine's training and
comparison for the controls' network; Stop, a control change and closing end their runs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox
from threadpoolctl import threadpool_info, threadpool_limits

from initsim.app.views.compare_view import scheme_config
from initsim.app.views.plotstyle import finite, positive
from initsim.app.views.training_view import VERDICT_LEVELS
from initsim.app.runtime.worker import _blas_limited
from initsim.engine import ConfigError
from initsim.engine.compare import compare
from initsim.engine.train import Diverged, TrainConfig, Verdict, chance_of, train_stream, verdict_of

from appcheck import SMALL, TIMEOUT_MS, TIMEOUT_S, nan_equal, settle

# The steps of a training a test acts on while it goes: held after its first step, it never runs them all.
HELD_STEPS = 1_000
# Diverges at step 3, first in layer 2 (the engine's test of the same config says where).
EXPLODING = SMALL.replace(activation="relu", init="normal", init_params={"std": 3.0}, layers=8)


def _train(qtbot, window, steps: int, task: str = "spirals", batch: int = 32):
    """Start training the window's network for ``steps`` steps, from the Training tab's Train button."""
    view = window.training
    window.tabs.setCurrentWidget(view)
    settings = view.settings
    settings.task.setCurrentIndex(settings.task.findData(task))
    settings.steps.setValue(steps)
    settings.batch.setValue(batch)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert view.running
    return view


def _train_held(qtbot, window, steps: int = HELD_STEPS):
    """Start training as `_train` does, on the view's paused runner, and wait until its first step
    is shown: the run then waits, in progress, until the runner resumes or the run is cancelled."""
    window.training.runner.pause()
    view = _train(qtbot, window, steps)
    assert view.runner.held.wait(TIMEOUT_S), "the training did not reach its first step"
    qtbot.waitUntil(lambda: view.record.done == 1, timeout=TIMEOUT_MS)
    return view


def _engine_events(view) -> list:
    """The engine's events for the view's run, as the worker computes them (one BLAS thread)."""
    record = view.record
    with threadpool_limits(1):
        return list(train_stream(view.controls.config(), record.setup.training))


def _assert_training_paints(view, events: list) -> None:
    steps = [e for e in events if not isinstance(e, Diverged)]
    record = view.record
    x = np.arange(1, len(steps) + 1)
    nan_equal(view.loss_curve.xData, x)
    nan_equal(view.loss_curve.yData, positive([e.loss for e in steps]))
    nan_equal(view.accuracy_curve.yData, finite([e.accuracy for e in steps]))
    probed = [e for e in steps if e.probe is not None]
    nan_equal(view.set_loss_curve.xData, [e.step for e in probed])
    nan_equal(view.set_loss_curve.yData, positive([e.probe.loss for e in probed]))
    nan_equal(view.set_accuracy_curve.yData, finite([e.probe.accuracy for e in probed]))
    layers = record.setup.net.config.layers
    assert record.matrices[0] == 1 and record.matrices[-1] == layers + 1  # the output layer last
    assert len(view.grad_curves) == len(view.update_curves) == len(record.matrices)
    for matrix, grad, update in zip(record.matrices, view.grad_curves, view.update_curves):
        nan_equal(grad.xData, x)
        nan_equal(grad.yData, positive([e.grad_data[matrix - 1] for e in steps]))
        nan_equal(update.yData, finite([e.update_data[matrix - 1] for e in steps]))


def _engine_verdict(view, events: list) -> Verdict:
    steps = [e for e in events if not isinstance(e, Diverged)]
    setup = view.record.setup
    return verdict_of([e.loss for e in steps], chance_of(setup.data), setup.training.flat_steps)


def _draws_nothing(curve) -> bool:
    return curve.xData is None or len(curve.xData) == 0


def _finished(view) -> bool:
    return not view.running and view.seconds is not None


def test_training_paints_the_engine_events_and_says_how_it_went(qtbot, make_window):
    window = make_window()
    view = _train(qtbot, window, steps=60)
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    events = _engine_events(view)
    assert len(events) == 60
    _assert_training_paints(view, events)
    last_probe = events[-1].probe
    assert last_probe is not None and last_probe.regions is not None
    nan_equal(view.regions_image.image, last_probe.regions.T)  # the image is indexed [x, y]
    assert len(view.regions_points.data) == view.record.setup.training.samples
    status = view.status.text()
    assert status.startswith("Done: 60 steps")
    verdict = _engine_verdict(view, events)
    assert status.endswith(f" \u00b7 {verdict.message}.")
    assert view.status.property("level") == VERDICT_LEVELS[verdict.kind]
    assert view.start_button.isEnabled() and not view.stop_button.isEnabled()


def test_a_net_that_cannot_learn_is_said_not_to_learn_in_orange(qtbot, make_window):
    """It was once called healthy, in green, while its loss sat at ln 2."""
    window = make_window(SMALL.replace(init="zeros"))
    view = _train(qtbot, window, steps=80)
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    verdict = _engine_verdict(view, _engine_events(view))
    assert verdict.kind == "not learning"
    assert view.status.text().endswith(f" \u00b7 {verdict.message}.")
    assert "not learning: the loss stays at chance level (0.693, guessing among 2 classes)" in view.status.text()
    assert view.status.property("level") == "warn"


def test_a_task_of_more_than_two_dimensions_has_no_regions(qtbot, make_window):
    window = make_window()
    view = _train(qtbot, window, steps=20, task="blobs")
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    _assert_training_paints(view, _engine_events(view))
    assert view.regions_image.image is None
    assert "8-D" in view.regions_note.text


def test_a_diverging_network_says_at_which_step_and_layer(qtbot, make_window):
    window = make_window(EXPLODING)
    view = window.training
    view.train(TrainConfig(task="circles", steps=50, train_batch=32))  # as a script would
    assert view.settings.task.currentData() == "circles" and view.running
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    events = _engine_events(view)
    diverged = events[-1]
    assert isinstance(diverged, Diverged)
    where = f"diverged at step {diverged.step} (first non-finite values in layer {diverged.layer})"
    assert where in view.status.text()
    assert view.status.property("level") == "error"
    _assert_training_paints(view, events)


def test_stop_keeps_the_steps_so_far_and_nothing_more_arrives(qtbot, make_window):
    window = make_window()
    view = _train_held(qtbot, window)
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    stopped, done = view.record, view.record.done
    assert not view.running and not view.stop_button.isEnabled() and view.settings.task.isEnabled()
    assert view.status.text().startswith(f"Stopped at step 1 of {HELD_STEPS:,}")
    assert not view.runner.busy  # cancelled: anything of it still on the way is dropped
    view.runner.resume()
    view.settings.steps.setValue(30)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    assert stopped.done == done  # the stopped run's later events were dropped
    _assert_training_paints(view, _engine_events(view))


def test_a_control_change_cancels_the_training_and_marks_its_curves(qtbot, make_window):
    window = make_window()
    view = _train_held(qtbot, window)
    window.findChild(QAbstractSpinBox, "layers").setValue(SMALL.layers + 1)
    cancelled, done = view.record, view.record.done
    assert not view.running and view.start_button.isEnabled() and not view.runner.busy
    status = view.status.text()
    assert "controls changed" in status and "earlier network (5 \u00d7 16 tanh" in status
    assert view.loss_curve.yData is not None and len(view.loss_curve.yData) == done  # still shown
    view.runner.resume()
    view.settings.steps.setValue(10)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    assert cancelled.done == done
    assert view.record.setup.net.config.layers == SMALL.layers + 1
    _assert_training_paints(view, _engine_events(view))


def test_a_training_of_an_unchanged_network_is_not_cancelled_by_a_repaint(qtbot, make_window):
    """The window repaints the visible view with the simulation of the same network: the training
    goes on."""
    window = make_window()
    settle(qtbot, window)
    view = _train_held(qtbot, window, steps=40)
    window.set_config(SMALL)  # the same network again: a new simulation, the same config
    settle(qtbot, window)  # painted on the Training tab while its run is held
    assert view.running and view.runner.busy
    view.runner.resume()
    qtbot.waitUntil(lambda: _finished(view), timeout=TIMEOUT_MS)
    assert view.status.text().startswith("Done: 40 steps")


def test_compare_from_code_paints_the_engine_comparison(qtbot, make_window):
    window = make_window()
    view = window.compare
    window.tabs.setCurrentWidget(view)
    view.settings.steps.setValue(15)
    view.settings.batch.setValue(32)
    schemes = ["xavier_normal", "kaiming_normal", "zeros"]
    view.compare(schemes, seeds=2, training=True)
    assert [combo.currentData() for combo in view.picks] == [*schemes, ""]
    assert view.seeds.value() == 2 and view.include_training.isChecked()
    qtbot.waitUntil(lambda: not view.running and view.result is not None, timeout=TIMEOUT_MS)
    network = SMALL.validated()
    with threadpool_limits(1):
        expected = compare([scheme_config(network, name) for name in schemes], [SMALL.seed, SMALL.seed + 1],
                           view.settings.training())
    for field, items in view.bands.items():
        for run, item in zip(expected.runs, items):
            band = getattr(run, field)
            nan_equal(item.median.xData, np.arange(1, len(band.median) + 1))
            for curve, values in ((item.median, band.median), (item.low, band.low), (item.high, band.high)):
                nan_equal(curve.yData, positive(values))
        assert _draws_nothing(items[3].median)  # the empty slot
    labels = [label.text for _, label in view.legend.items]
    assert labels[:2] == schemes[:2] and labels[2].startswith("zeros (activation std 0")
    assert view.status.text().startswith("Done: 3 schemes \u00d7 2 seeds")


def test_compare_without_training_is_the_simulation_alone(qtbot, make_window):
    window = make_window()
    view = window.compare
    view.compare(["kaiming_normal"], seeds=1)
    qtbot.waitUntil(lambda: not view.running and view.result is not None, timeout=TIMEOUT_MS)
    assert view.result.training is None and view.result.runs[0].loss is None
    assert all(_draws_nothing(item.median) for item in view.bands["loss"])
    assert view.loss_plot.scene() is None  # no loss plot: the std plots take its room
    with pytest.raises(ConfigError):
        view.compare(["kaiming_normal"] * 5)
    with pytest.raises(ConfigError):
        view.compare(["no_such_scheme"])


def test_the_loss_plot_is_there_with_training_to_come_and_says_why_it_is_empty(qtbot, make_window):
    """It once asked to tick the box while it was ticked; without training it took a third of the
    view from the std plots, on a projector most of what they had."""
    window = make_window()
    view = window.compare
    window.tabs.setCurrentWidget(view)
    assert view.loss_plot.scene() is None
    view.include_training.setChecked(True)
    assert view.loss_plot.scene() is view.plots.scene()
    assert view.loss_note.item.isVisible() and "press Compare" in view.loss_note.text
    view.include_training.setChecked(False)
    assert view.loss_plot.scene() is None
    settle(qtbot, window)


def test_closing_mid_training_and_mid_comparison_ends_their_threads(qtbot, make_window):
    window = make_window()
    training = _train_held(qtbot, window)
    comparison = window.compare
    comparison.runner.pause()
    comparison.start()
    assert comparison.runner.held.wait(TIMEOUT_S)  # its first run done, the others held
    assert training.running and comparison.running
    window.close()  # returns once the worker threads have ended
    assert not training.runner.thread.isRunning()
    assert not comparison.runner.thread.isRunning()


def test_every_control_of_the_two_tabs_has_a_tooltip(make_window):
    window = make_window()
    window.compare.include_training.setChecked(True)  # its training settings enabled too
    for view in (window.training, window.compare):
        window.tabs.setCurrentWidget(view)
        controls = [w for kind in (QAbstractSpinBox, QComboBox, QAbstractButton)
                    for w in view.findChildren(kind)
                    if w.isVisibleTo(window) and not isinstance(w.parent(), QAbstractSpinBox)]
        assert len(controls) >= 7
        assert not [w.objectName() or w.text() for w in controls if not w.toolTip()]


def test_overlapping_runs_keep_one_blas_thread_until_the_last_one_ends():
    """BLAS's thread count is one for the process: a run that ends while another goes on must not
    give that one two threads back (its results would then differ from the engine's at one)."""
    def threads() -> set[int]:
        return {library["num_threads"] for library in threadpool_info()}

    with threadpool_limits(2):
        first, second = _blas_limited(1), _blas_limited(1)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert threads() == {1}
        second.__exit__(None, None, None)
        assert threads() == {2}
