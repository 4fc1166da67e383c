"""Plots that cannot draw say why in their own area (issue 12): zero weights in Layer statistics,
Spectra and Training, a normalization the theory does not model, std 0 from underflow; and a
healthy network's plots say nothing."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import QApplication

from initsim.app.views.plot_notes import POINT_SIZES, PlotNote
from initsim.app.views.stats_view import _layers_text
from initsim.engine import ConfigError, SimConfig, simulate
from initsim.engine.spectra import jacobian_spectrum

from appcheck import SMALL, TIMEOUT_MS, settle, train_to_the_end

ZEROS = SMALL.replace(init="zeros", activation="relu")
BATCH_NORM = SMALL.replace(init="normal", init_params={"std": 0.01}, activation="relu", norm="batch")


def shown(note: PlotNote) -> str:
    """The note's text if it is shown, inside its plot's area; "" if none is."""
    if not note.item.isVisible():
        return ""
    area = note.view_box.sceneBoundingRect()
    assert area.contains(note.item.sceneBoundingRect()), "the note spills out of its plot"
    return note.text


def stats_window(qtbot, make_window, config: SimConfig):
    window = make_window(config)
    window.tabs.setCurrentWidget(window.stats)
    settle(qtbot, window)
    return window.stats


def test_zero_weights_say_why_layer_statistics_is_empty(qtbot, make_window):
    view = stats_window(qtbot, make_window, ZEROS)
    assert shown(view.std_note).startswith("All weights are zero: every unit computes the same value; std 0 "
                                           "cannot be drawn on a log axis")
    assert view.std_note.place == "center"
    assert "no angle" in shown(view.correlation_note)
    assert all(len(view.curves[name].getData()[0] or ()) == 0 for name in ("pre_std", "post_std", "grad_std"))


def test_a_healthy_network_has_no_notes(qtbot, make_window):
    view = stats_window(qtbot, make_window, SMALL)
    assert shown(view.std_note) == "" and shown(view.correlation_note) == ""


def test_batch_norm_says_which_theory_lines_are_missing(qtbot, make_window):
    view = stats_window(qtbot, make_window, BATCH_NORM)
    assert shown(view.std_note) == "No gradient theory line: mean-field theory here does not model batch norm."
    assert shown(view.correlation_note) == "No mean-field line: its correlation map does not model batch norm."
    assert view.std_note.place == view.correlation_note.place == "aside"


def test_a_std_that_underflows_to_0_says_from_which_layer(qtbot, make_window):
    config = SimConfig(layers=40, width=32, batch=64, activation="relu", init="normal",
                       init_params={"std": 0.01}, seed=1)
    result = simulate(config)
    zero = [f.index for f in result.forward if f.pre.std == 0]
    assert zero and zero == list(range(zero[0], config.layers + 1))  # the engine's underflow: a tail of layers
    view = stats_window(qtbot, make_window, config)
    text = shown(view.std_note)
    assert f"pre-activation and activation std from layer {zero[0]}" in text
    assert view.std_note.place == "aside"
    assert f"No measurement from layer {zero[0]}" in shown(view.correlation_note)


def test_layers_text_says_where_the_missing_layers_are():
    every = np.ones(6, bool)
    assert _layers_text(every, every) == "at every layer"
    assert _layers_text(np.arange(6) == 2, every) == "at layer 3"
    assert _layers_text(np.arange(6) >= 3, every) == "from layer 4"
    assert _layers_text(np.isin(np.arange(6), [1, 3]), every) == "at 2 layers from layer 2"
    arrived = np.arange(6) < 4  # layers 5 and 6 not in yet: missing 3 and 4 is "from layer 3"
    assert _layers_text(np.isin(np.arange(6), [2, 3]), arrived) == "from layer 3"


def spectra(qtbot, make_window, config: SimConfig):
    window = make_window(config)
    view = window.view("spectra")
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.config == window.displayed_config() and view.up_to_date(), timeout=TIMEOUT_MS)
    return view


def test_spectra_of_zero_weights_and_of_batch_norm_say_why_they_are_empty(qtbot, make_window):
    view = spectra(qtbot, make_window, ZEROS)
    assert shown(view.jacobian_note).startswith(f"All {ZEROS.width} singular values are 0 (no signal passes)")
    assert shown(view.weight_note).startswith("Every weight is 0")
    view.log_scale.setChecked(False)  # on a linear axis the zeros are drawn: a spike at 0
    assert shown(view.jacobian_note) == ""
    with pytest.raises(ConfigError) as refused:
        jacobian_spectrum(BATCH_NORM.validated())
    view = spectra(qtbot, make_window, BATCH_NORM)
    message = str(refused.value)
    assert shown(view.jacobian_note) == message[0].upper() + message[1:]
    assert shown(view.weight_note) == ""  # the weights are drawn against their law


def test_training_zero_weights_says_why_the_ratio_plots_are_empty(qtbot, make_window):
    window = make_window(ZEROS)
    view = train_to_the_end(qtbot, window, 20)
    for note in (view.grad_note, view.update_note):
        assert shown(note).startswith("Nothing to draw: std(W) is 0")
    window.controls.set_config(SMALL)
    settle(qtbot, window)
    train_to_the_end(qtbot, window, 20)
    assert shown(view.grad_note) == shown(view.update_note) == ""


@pytest.fixture
def plot(qtbot):
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    item = widget.addPlot()
    item.setRange(xRange=(0, 10), yRange=(0, 10), padding=0)
    item.enableAutoRange(False)
    widget.show()
    QApplication.processEvents()
    return widget, item


@pytest.mark.parametrize("crowded", ["top right", "top left", "bottom right"])
def test_a_note_aside_takes_the_emptiest_corner(plot, crowded):
    _, item = plot
    top = crowded.startswith("top")
    right = crowded.endswith("right")
    x = np.linspace(6, 10, 50) if right else np.linspace(0, 4, 50)
    y = np.full(50, 9.0 if top else 1.0)
    item.plot(x, y)
    note = PlotNote(item)
    note.say("A note about a part of the plot, long enough to wrap over two lines or three.", "aside")
    box = note.item.mapRectToItem(note.view_box, note.item.boundingRect())
    area = note.view_box.boundingRect()
    in_right, in_top = box.center().x() > area.center().x(), box.center().y() < area.center().y()
    assert (in_right, in_top) != (right, top)
    if crowded != "top right":
        assert (in_right, in_top) == (True, True)  # the first choice when it is free


def test_a_note_shrinks_to_fit_a_small_plot(plot):
    widget, item = plot
    note = PlotNote(item)
    text = "A long note about why this plot draws nothing, " * 4
    note.say(text)
    assert note.item.font().pointSizeF() == POINT_SIZES["center"]
    widget.resize(300, 140)
    QApplication.processEvents()
    assert note.item.font().pointSizeF() < POINT_SIZES["center"]
    assert note.item.boundingRect().height() <= note.view_box.boundingRect().height()
    note.say("")
    assert not note.item.isVisible() and note.text == ""
