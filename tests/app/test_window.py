"""The main window against the engine: what it paints is the engine's result for its config."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QCheckBox, QComboBox,
                               QPushButton)

from initsim.app import create_window
from initsim.app.views.heatmap_view import VALUE_BINS, DepthMap
from initsim.app.model.histograms import common_grid, depth_image, panel_layers, panel_stride
from initsim.app.model.runstate import RunState
from initsim.app.widgets import NumberBox
from initsim.engine import ConfigError, SimConfig, get_scheme, simulate_stream
from initsim.engine.presets import DEFAULT_PRESET, get_preset, presets

from appcheck import (SMALL, TIMEOUT_MS, TIMEOUT_S, assert_histograms_paint, assert_paints, reference, settle,
                      start_held)

class PaintWatch(QObject):
    """Notes when the widget it watches paints."""

    def __init__(self, painted_at: list[float]) -> None:
        super().__init__()
        self.painted_at = painted_at

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.painted_at.append(time.perf_counter())
        return False


# Another network than SMALL, with more layers: an event of one folded into the other's run shows.
OTHER = SMALL.replace(layers=7, seed=8)


def test_opens_with_the_default_preset_painted(qtbot, make_window):
    window = make_window(None)
    settle(qtbot, window)
    expected = get_preset(DEFAULT_PRESET).config.validated()
    assert window.config() == expected
    assert window.findChild(QComboBox, "preset").currentData() == DEFAULT_PRESET
    assert_paints(window, reference(expected))


def test_run_finished_carries_the_painted_config(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT_MS) as finished:
        pass
    assert finished.args == [SMALL.validated()]
    assert window.displayed_state().complete
    progress = window.findChild(type(window.progress), "progress")
    assert progress.value() == progress.maximum() == 2 * SMALL.layers


def _set_spin(window, name, value):
    window.findChild(QAbstractSpinBox, name).setValue(value)


def _set_combo(window, name, key):
    combo = window.findChild(QComboBox, name)
    index = combo.findData(key)
    assert index >= 0, f"{name} has no item {key!r}"
    combo.setCurrentIndex(index)


# Each control, changed as a user would, with the config it must lead to.
CONTROL_CHANGES = {
    "layers": (lambda w: _set_spin(w, "layers", 7), dict(layers=7)),
    "width": (lambda w: _set_spin(w, "width", 24), dict(width=24)),
    "batch": (lambda w: _set_spin(w, "batch", 9), dict(batch=9)),
    "activation": (lambda w: _set_combo(w, "activation", "relu"), dict(activation="relu")),
    "activation param": (lambda w: (_set_combo(w, "activation", "leaky_relu"),
                                    w.findChild(QAbstractSpinBox, "activation.slope").setValue(0.2)),
                         dict(activation="leaky_relu", activation_params={"slope": 0.2})),
    "init": (lambda w: _set_combo(w, "init", "he_uniform"), dict(init="he_uniform", init_params={})),
    "init param": (lambda w: (_set_combo(w, "init", "normal"),
                              w.findChild(QAbstractSpinBox, "init.std").setValue(0.3)),
                   dict(init="normal", init_params={"std": 0.3})),
    "init choice param": (lambda w: (_set_combo(w, "init", "kaiming_uniform"),
                                     _set_combo(w, "init.mode", "fan_out")),
                          dict(init="kaiming_uniform", init_params={"mode": "fan_out"})),
    "bias": (lambda w: _set_combo(w, "bias_init", "normal"), dict(bias_init="normal")),
    "seed": (lambda w: _set_spin(w, "seed", 11), dict(seed=11)),
    "dtype": (lambda w: _set_combo(w, "dtype", "float64"), dict(dtype="float64")),
    "input": (lambda w: _set_combo(w, "input_dist", "uniform"), dict(input_dist="uniform")),
    "norm": (lambda w: _set_combo(w, "norm", "layer"), dict(norm="layer")),
}


@pytest.mark.parametrize("control", list(CONTROL_CHANGES))
def test_each_control_runs_and_paints_the_engine_result(qtbot, make_window, control):
    window = make_window()
    settle(qtbot, window)
    change, fields = CONTROL_CHANGES[control]
    change(window)
    expected = SMALL.replace(**fields).validated()
    assert window.config() == expected
    settle(qtbot, window)
    assert_paints(window, reference(expected))


def test_typing_into_a_spin_box_runs_the_typed_value(qtbot, make_window):
    window = make_window()
    layers = window.findChild(QAbstractSpinBox, "layers")
    layers.selectAll()
    qtbot.keyClicks(layers, "12")
    settle(qtbot, window)
    assert window.displayed_config().layers == 12
    assert [p.layer for p in window.histograms.panels] == panel_layers(12, panel_stride(12))


def test_fifty_rapid_changes_end_with_the_last_config_displayed(qtbot, make_window):
    window = make_window()
    painted_runs = []
    window.painted.connect(lambda *_: painted_runs.append(window.displayed_state().run_id))
    width = window.findChild(QAbstractSpinBox, "width")
    for step in range(50):
        width.setValue(8 + step)
        QApplication.processEvents()
    settle(qtbot, window)
    expected = SMALL.replace(width=57).validated()
    assert window.displayed_config() == expected
    assert painted_runs[-1] == window.controller.state.run_id
    assert_paints(window, reference(expected))  # no panel left from an earlier run


def test_a_cancelled_run_is_never_painted(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    runner = window.controller.runner
    runner.pause()
    window.set_config(OTHER)
    assert runner.held.wait(TIMEOUT_S)  # its first layer is sent, and not yet received
    window.set_config(SMALL)  # before the event loop turns: that layer's event is stale
    painted = []
    window.painted.connect(lambda *_: painted.append(window.displayed_state()))
    runner.resume()
    settle(qtbot, window)
    assert painted and all(state is window.controller.state for state in painted)
    assert_paints(window, reference(SMALL.validated()))


def test_stop_keeps_what_arrived_and_the_next_change_runs(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    start_held(qtbot, window, OTHER)
    stop = window.findChild(QPushButton, "stop")
    assert stop.isEnabled()
    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    state = window.controller.state
    assert state.stopped and state.received == 1 and not state.complete
    qtbot.waitUntil(lambda: "Stopped" in window.status.text() and not stop.isEnabled(), timeout=TIMEOUT_MS)
    assert window.displayed_state() is state  # what arrived stays
    window.controller.runner.resume()
    window.set_config(SMALL)
    settle(qtbot, window)
    assert_paints(window, reference(SMALL.validated()))


def test_closing_during_a_run_ends_the_worker(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    start_held(qtbot, window, OTHER)
    assert not window.controller.state.complete
    window.close()  # returns once the worker thread has ended: the held run was cancelled
    assert not window.controller.thread.isRunning()
    assert not window.controller.state.complete


def test_a_view_hidden_while_its_panels_are_laid_out_paints_them_when_shown(qtbot, make_window):
    """Panels made while another view shows get their layers: a shared x range spans exactly
    the shown layers (it once spanned only the last one)."""
    window = make_window()
    window.tabs.setCurrentWidget(window.heatmap)  # before the first run reaches the screen
    window.histograms.shared_x.setChecked(True)
    settle(qtbot, window)
    window.tabs.setCurrentWidget(window.histograms)
    assert_histograms_paint(window, reference(SMALL.validated()))


def test_a_new_heatmap_range_in_the_middle_of_a_run_leaves_the_image_to_the_next_paint(qtbot):
    """The axes lay out their ticks again at a new range: while a run streams in, that paint keeps
    the image as it was and the next one draws it; a finished run is drawn whole at once."""
    plots = pg.GraphicsLayoutWidget()
    qtbot.addWidget(plots)
    depth_map = DepthMap(plots.addPlot(), "post", "Activations")
    config = SMALL.validated()
    events = list(simulate_stream(config))
    state = RunState(config, run_id=1)
    state.add(events[0])
    assert depth_map.show(state, log=False) is False
    assert depth_map.image.image is None  # nothing drawn yet
    first = [events[0].post.histogram] + [None] * (config.layers - 1)
    grid = common_grid(first[:1], VALUE_BINS)
    np.testing.assert_allclose(depth_map.plot.viewRange(), [[0.5, config.layers + 0.5], [grid[0], grid[-1]]])
    assert depth_map.show(state, log=False) is True
    np.testing.assert_array_equal(depth_map.image.image, depth_image(first, grid, log=False))
    for event in events[1:]:
        state.add(event)
    assert DepthMap(plots.addPlot(), "post", "Activations").show(state, log=False) is True


def test_an_invalid_config_is_refused_with_the_reason(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    shown = window.displayed_config()
    for name, value in (("layers", 1000), ("width", 4096), ("batch", 8192)):
        _set_spin(window, name, value)
    qtbot.waitUntil(lambda: window.warnings.property("level") == "error", timeout=TIMEOUT_MS)
    assert "memory" in window.warnings.text()
    assert window.displayed_config() == shown
    assert not window.controller.running
    with pytest.raises(ConfigError):
        window.set_config(SMALL.replace(init="no_such_scheme"))


def test_a_parameter_the_scheme_refuses_is_explained(qtbot, make_window):
    window = make_window()
    _set_combo(window, "init", "kaiming_normal")
    _set_combo(window, "init.mode", "fan_avg")  # PyTorch's kaiming has no fan_avg
    qtbot.waitUntil(lambda: window.warnings.property("level") == "error", timeout=TIMEOUT_MS)
    assert "fan_avg" in window.warnings.text() and "variance_scaling" in window.warnings.text()
    assert "fan_avg" in window.controls.init_note.text()
    _set_combo(window, "init.mode", "fan_in")
    settle(qtbot, window)
    assert window.warnings.property("level") != "error"


def test_a_refusal_stays_on_show_when_the_run_it_stopped_reports_after_it(qtbot, make_window):
    """The run of the config before a refused one may still report (its stop, a last layer) once
    the refusal is shown; the paint that follows leaves the refusal in place."""
    window = make_window()
    settle(qtbot, window)
    _set_combo(window, "init", "kaiming_normal")
    _set_combo(window, "init.mode", "fan_avg")
    qtbot.waitUntil(lambda: window.warnings.property("level") == "error", timeout=TIMEOUT_MS)
    window._paint()  # what the paint throttle does when that report arrives
    assert window.warnings.property("level") == "error" and "fan_avg" in window.warnings.text()


def test_an_edit_is_validated_once_however_many_parts_of_the_window_read_it(qtbot, make_window, monkeypatch):
    """The window, the run and the views all ask the controls for the config: it is checked once."""
    from initsim.engine.config import _VALIDATED

    window = make_window()
    settle(qtbot, window)
    checked = []
    validated = SimConfig.validated

    def counting(config):
        if not config.__dict__.get(_VALIDATED):  # the work, not the return of a validated config
            checked.append(config)
        return validated(config)

    monkeypatch.setattr(SimConfig, "validated", counting)
    _set_spin(window, "width", 24)
    settle(qtbot, window)
    assert window.displayed_config().width == 24
    assert len(checked) == 1


def test_the_controls_say_once_per_edit_a_validated_config_or_why_none(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    said = []
    window.controls.changed.connect(said.append)
    _set_spin(window, "width", 24)
    _set_combo(window, "init", "kaiming_normal")
    _set_combo(window, "init.mode", "fan_avg")  # PyTorch's kaiming has no fan_avg
    assert len(said) == 3
    assert said[0].width == 24 and said[0].validated() is said[0]
    assert said[1].init == "kaiming_normal" and said[1].validated() is said[1]
    assert isinstance(said[2], ConfigError) and "fan_avg" in str(said[2])
    assert window.controls.said() is said[2]  # asked again, the same answer: not checked again
    _set_combo(window, "init.mode", "fan_in")
    assert said[3].init_params["mode"] == "fan_in"
    settle(qtbot, window)


def test_the_layer_statistics_log_axis_labels_its_decades_first(qtbot, make_window):
    """Over a range of two decades pyqtgraph's own log axis labels every multiple 1..9 at once,
    and they pile up; the std axis labels the decades first, then 2 and 5, where they fit."""
    window = make_window(get_preset("he_relu").config)
    window.tabs.setCurrentWidget(window.stats)
    settle(qtbot, window)
    axis = window.stats.std_plot.getAxis("left")
    low, high = axis.range
    assert 1 < high - low < 3  # a healthy net: a flat curve on at least two decades
    labelled = axis.tickValues(low, high, axis.height())[0][1]
    assert labelled and all(abs(value - round(value)) < 1e-9 for value in labelled)


def test_by_default_the_histograms_share_one_x_range_so_a_vanished_layer_is_a_spike(qtbot, make_window):
    """On its own x range a vanished layer is as wide a bell curve as a healthy one; on the shared
    range, the default, it is a spike at 0 beside the first layer's width."""
    window = make_window(SimConfig(layers=12, width=64, batch=64, activation="tanh", init="normal",
                                   init_params={"std": 0.02}))
    settle(qtbot, window)
    assert window.histograms.shared_x.isChecked() and window.shared_x_action.isChecked()
    first, last = window.displayed_state().forward[0].post, window.displayed_state().forward[-1].post
    assert last.std < 1e-6 * first.std  # it vanished
    panels = [p for p in window.histograms.panels if p.plot.isVisible()]
    spans = [p.plot.viewRange()[0] for p in panels]
    assert all(span == spans[0] for span in spans)  # one x range for every panel
    assert spans[0][1] - spans[0][0] > 1e5 * (last.max - last.min)  # the last layer: a spike in it
    window.files.reset_to_defaults()
    assert window.histograms.shared_x.isChecked()
    settle(qtbot, window)


def test_presets_set_every_control(qtbot, make_window):
    window = make_window()
    combo = window.findChild(QComboBox, "preset")
    assert combo.currentData() == "custom"
    for name in ("too_small", "xavier_tanh"):
        combo.setCurrentIndex(combo.findData(name))
        combo.activated.emit(combo.currentIndex())
        assert window.config() == presets()[name].config
        assert presets()[name].explanation == window.controls.preset_note.text()
    settle(qtbot, window)
    _set_spin(window, "seed", 5)  # a new seed is still the same preset
    assert combo.currentData() == "xavier_tanh"
    _set_spin(window, "layers", 3)
    assert combo.currentData() == "custom"


def test_the_recommended_scheme_is_one_click_away(qtbot, make_window):
    window = make_window(SMALL.replace(activation="relu", init="xavier_normal"))
    controls = window.controls
    assert controls.apply_recommended.isVisibleTo(window)
    assert "kaiming_normal" in controls.recommendation.text()
    qtbot.mouseClick(controls.apply_recommended, Qt.MouseButton.LeftButton)
    expected = SMALL.replace(activation="relu", init="kaiming_normal",
                             init_params={"nonlinearity": "relu"}).validated()
    assert window.config() == expected
    assert not controls.apply_recommended.isVisibleTo(window)
    assert "\u2713" in controls.recommendation.text()
    settle(qtbot, window)
    assert window.displayed_config() == expected


def test_the_init_note_gives_the_std_at_this_width_and_the_framework_names(make_window):
    window = make_window(SMALL.replace(init="he_normal", width=100))
    note = window.controls.init_note.text()
    scheme = get_scheme("he_normal")
    assert f"std {scheme.std(100, 100):.4g}" in note
    assert "HeNormal" in note and "kaiming_normal_" in note


def test_parameter_editors_follow_the_scheme(make_window):
    window = make_window()
    editor = window.controls.init_params
    for name in ("zeros", "trunc_normal", "kaiming_normal", "variance_scaling"):
        _set_combo(window, "init", name)
        assert list(editor.values()) == list(get_scheme(name).defaults)
        assert editor.isVisibleTo(window) == bool(get_scheme(name).defaults)


def test_main_controls_carry_their_object_names(make_window):
    window = make_window()
    kinds = {"preset": QComboBox, "layers": NumberBox, "width": NumberBox, "batch": NumberBox,
             "activation": QComboBox, "init": QComboBox, "seed": NumberBox, "dtype": QComboBox,
             "stop": QPushButton}
    for name, kind in kinds.items():
        assert window.findChild(kind, name) is not None, name


def test_every_control_has_a_tooltip(make_window):
    window = make_window()
    for scheme in ("trunc_normal", "kaiming_normal"):  # with parameter editors of both kinds
        _set_combo(window, "init", scheme)
    _set_combo(window, "activation", "gelu")
    controls = [w for kind in (QAbstractSpinBox, QComboBox, QAbstractButton, QCheckBox)
                for w in window.findChildren(kind)
                if w.isVisibleTo(window) and not w.objectName().startswith("qt_")  # Qt's own parts
                and not isinstance(w.parent(), QAbstractSpinBox)]
    assert len(controls) >= 20
    missing = [w.objectName() or w.text() for w in controls if not w.toolTip()]
    assert not missing


def test_histograms_of_a_deep_net_keep_to_about_sixteen_panels(qtbot, make_window):
    window = make_window(SMALL.replace(layers=100, width=8, batch=8))
    settle(qtbot, window)
    layers = [p.layer for p in window.histograms.panels]
    assert layers[0] == 1 and layers[-1] == 100 and len(layers) <= 16
    assert "every 10th" in window.histograms.caption.text()


def test_a_title_of_another_width_never_relays_out_the_histogram_panels(qtbot, make_window):
    """Panels' titles give each layer's std once it arrives; their widths must not size the grid's
    columns (a relayout repaints every panel, many times a run)."""
    window = make_window(SMALL.replace(layers=40))
    settle(qtbot, window)

    def laid_out() -> list:
        # The columns as laid out for the titles shown now (the rows' heights settle later on a
        # slow machine, for reasons of the grid's own; a title is one line and never sizes them).
        window.histograms.plots.ci.layout.activate()
        return [(panel.plot.geometry().x(), panel.plot.geometry().width())
                for panel in window.histograms.panels]

    geometries = laid_out()
    # Held after its first layer, a run shows one long title ("layer 1 · std ...") among short ones.
    start_held(qtbot, window, SMALL.replace(layers=40, seed=4))
    qtbot.waitUntil(lambda: not window.histograms.catching_up, timeout=TIMEOUT_MS)
    titles = [panel.plot.titleLabel.text for panel in window.histograms.panels]
    assert "std" in titles[0] and "std" not in titles[-1]
    assert laid_out() == geometries


def test_warnings_are_the_engines_diagnosis(qtbot, make_window):
    window = make_window(get_preset("zeros").config)
    settle(qtbot, window)
    found = window.displayed_state().diagnosis()
    assert found[0].kind == "symmetric"
    assert window.warnings.text() == "\u26a0 " + " \u00b7 ".join(f.message for f in found)
    assert window.warnings.property("level") == "warn"
    # A collapsed batch is information: the run is all clear, and the line says both.
    window.set_config(SMALL.replace(layers=100, width=64, activation="relu", init="kaiming_normal"))
    settle(qtbot, window)
    (note,) = window.displayed_state().diagnosis()
    assert note.kind == "collapsed"
    assert window.warnings.property("level") == "ok"
    assert window.warnings.text().startswith("\u2713 No warnings over all 100 layers")
    assert window.warnings.text().endswith(f"\u2139 {note.message}.")


def test_shortcuts(qtbot, make_window):
    window = make_window()
    settle(qtbot, window)
    window.activateWindow()
    qtbot.waitActive(window, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.stats
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.histograms and window.histograms.quantity == "grad"
    seed = window.config().seed
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.config().seed != seed
    settle(qtbot, window)
    start_held(qtbot, window, OTHER)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.controller.state.stopped
    shortcuts = {a.text(): a.shortcut().toString() for a in window.findChildren(type(window.menuBar().actions()[0]))}
    assert shortcuts["&Save screenshot\u2026"] == "Ctrl+S"
    assert shortcuts["&Quit"] == "Ctrl+Q"
    assert shortcuts["&Full screen"] == "F11"


def test_save_screenshot_writes_the_window(qtbot, make_window, tmp_path):
    window = make_window()
    settle(qtbot, window)
    path = tmp_path / "window.png"
    assert window.save_screenshot(path)
    image = QImage(str(path))
    assert (image.width(), image.height()) == (window.width() * window.devicePixelRatio(),
                                               window.height() * window.devicePixelRatio())
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)  # alive while its bits are read
    pixels = np.frombuffer(gray.constBits(), dtype=np.uint8)
    assert pixels.std() > 10  # not a blank image


def test_geometry_and_view_choices_are_remembered(qtbot, make_window):
    window = make_window()
    window.resize(1000, 700)
    window.tabs.setCurrentWidget(window.heatmap)
    window.histograms.shared_x.setChecked(True)
    window.close()
    again = make_window(size=None)
    assert (again.width(), again.height()) == (1000, 700)
    assert again.tabs.currentWidget() is again.heatmap
    assert again.histograms.shared_x.isChecked()


def test_the_reference_lists_every_scheme_and_activation(make_window):
    from initsim.engine import ACTIVATIONS, SCHEMES

    text = make_window().reference.toPlainText()
    assert all(name in text for name in (*SCHEMES, *ACTIVATIONS))


def test_the_apps_window_starts_its_first_run_once_it_is_painted(qtbot):
    """As initsim opens it: the first run's imports would otherwise hold the window back."""
    window = create_window(SMALL, first_run_at_first_paint=True)
    qtbot.addWidget(window)
    painted_at: list[float] = []
    window.installEventFilter(watch := PaintWatch(painted_at))
    QApplication.processEvents()
    assert window.controller.state is None  # not shown, not painted: nothing runs
    window.show()
    settle(qtbot, window)
    window.removeEventFilter(watch)
    assert painted_at and window.controller.state.started > painted_at[0]


def test_the_warnings_line_keeps_its_height_at_one_width_and_the_progress_bar_paints_later(qtbot):
    """A shorter message after a longer one leaves the plots above where they were (each resize
    relays out and repaints every plot); a new width starts afresh. Setting the progress bar paints
    nothing at once (QProgressBar's own setValue repaints the window's pending plots in that call)."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from initsim.app.widgets import ProgressBar, SteadyLabel

    host = QWidget()
    qtbot.addWidget(host)
    layout = QVBoxLayout(host)
    label = SteadyLabel()
    layout.addWidget(label)
    layout.addStretch(1)
    host.resize(300, 400)
    host.show()
    label.setText("short")
    qtbot.waitUntil(lambda: label.height() > 0)
    one_line = label.height()
    label.setText("a message long enough to wrap onto several lines at three hundred pixels wide " * 2)
    qtbot.waitUntil(lambda: label.height() > one_line)
    tallest = label.height()
    label.setText("short")
    qtbot.wait(50)
    assert label.height() == tallest
    host.resize(900, 400)
    qtbot.waitUntil(lambda: label.height() < tallest)

    painted = []

    class Watch(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                painted.append(obj)
            return False

    bar = ProgressBar()
    layout.addWidget(bar)
    bar.setRange(0, 100)
    qtbot.waitUntil(bar.isVisible)
    qtbot.wait(20)
    watch = Watch()
    bar.installEventFilter(watch)
    bar.setValue(50)
    assert painted == []
    qtbot.waitUntil(lambda: bool(painted))
