"""Residual networks in the window (issue 13): the block controls, shown with residual blocks only,
say exactly the config; every view paints a residual run as the engine computes it; the Spectra
view shows a block's W1."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from initsim.app.views.job_view import network_text
from initsim.engine import ConfigError, initial_blocks, simulate
from initsim.engine.spectra import weight_spectrum

from appcheck import SMALL, TIMEOUT_MS, assert_paints, settle, train_to_the_end

RESIDUAL = SMALL.replace(residual="pre", norm="layer", branch_scale="1/sqrt(L)", expansion=2, activation="relu",
                         init="kaiming_normal", layers=6)


def test_block_options_show_with_blocks_only_and_say_the_config(qtbot, make_window):
    window = make_window(SMALL)
    controls = window.controls
    assert not controls.block_options.isVisible()
    assert controls.network_form.labelForField(controls.layers).text() == "Layers"
    controls.set_config(RESIDUAL)
    assert controls.block_options.isVisible()
    assert controls.network_form.labelForField(controls.layers).text() == "Blocks"
    assert controls.said() == RESIDUAL.validated()
    controls.branch_scale.setCurrentText("0.25")
    assert controls.said().branch_scale == "0.25"
    controls.branch_scale.setCurrentText("1 / sqrt(2l)")
    assert controls.said().branch_scale == "1/sqrt(2L)"
    controls.branch_scale.setCurrentText("half")
    refused = controls.said()
    assert isinstance(refused, ConfigError) and "branch_scale" in str(refused)
    controls.branch_scale.setCurrentText("1")
    controls.fixup.setChecked(True)  # with a layer norm: refused, saying why
    assert isinstance(controls.said(), ConfigError) and "Fixup" in str(controls.said())
    controls.norm.setCurrentIndex(controls.norm.findData("none"))
    assert controls.said().fixup and controls.said().norm == "none"
    controls.residual.setCurrentIndex(controls.residual.findData("none"))
    assert not controls.block_options.isVisible()
    assert controls.said().residual == "none" and not controls.said().fixup  # a plain net has no block
    settle(qtbot, window)


def test_every_view_paints_a_residual_run_as_the_engine_computes_it(qtbot, make_window):
    window = make_window(RESIDUAL)
    settle(qtbot, window)
    result = simulate(RESIDUAL)
    assert_paints(window, result)  # the histogram panels' titles name blocks
    assert window.warnings.property("level") in ("ok", "warn")  # the engine's diagnosis, no failure
    # The stream's theory is drawn (assert_paints compared it with the engine's), the parts named.
    stats = window.stats
    assert len(stats.curves["theory_post_std"].yData) == RESIDUAL.layers
    labels = [label.text for legend, _ in stats.legends for _, label in legend.items]
    assert "stream std" in labels and "stream theory" in labels and "branch pre-activation std" in labels
    assert stats.std_plot.titleLabel.text == "Standard deviation by block"
    assert all(m.plot.getAxis("bottom").labelText == "block" for m in window.heatmap.maps)
    assert "blocks" in window.warnings.text() or window.warnings.property("level") == "warn"
    window.set_config(SMALL)
    settle(qtbot, window)
    labels = [label.text for legend, _ in stats.legends for _, label in legend.items]
    assert "stream theory" not in labels and "activation std" in labels
    assert stats.std_plot.titleLabel.text == "Standard deviation by layer"


@pytest.mark.parametrize("fixup", [False, True])
def test_spectra_show_a_blocks_w1_against_its_law(qtbot, make_window, fixup):
    config = RESIDUAL.replace(norm="none", fixup=fixup) if fixup else RESIDUAL
    window = make_window(config)
    view = window.view("spectra")
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.config == window.displayed_config() and view.up_to_date(), timeout=TIMEOUT_MS)
    QApplication.processEvents()
    block = view.layer.value()
    w1 = initial_blocks(config.validated()).blocks[block - 1].w1
    assert w1.shape == (config.width, config.expansion * config.width)
    expected = weight_spectrum(w1, view.weights.spectrum.variance)
    np.testing.assert_array_equal(view.weights.spectrum.eigenvalues, expected.eigenvalues)
    # The law's variance is the scheme's E[W1^2] at W1's own fans, over L with Fixup.
    fan_in = config.width
    expected_variance = 2 / fan_in / (config.layers if fixup else 1)  # kaiming_normal, relu, fan_in mode
    assert view.weights.spectrum.variance == pytest.approx(expected_variance)
    assert view.weight_plot.titleLabel.text.startswith(f"W1 of block {block}")
    assert view.layer_label.text() == "Block (W1)"



def test_the_training_tab_trains_rezero_blocks_and_says_their_learned_alphas(qtbot, make_window):
    config = RESIDUAL.replace(branch_scale="0", layers=4)
    window = make_window(config)
    view = train_to_the_end(qtbot, window, 40)
    last = view.record.last
    assert last.alpha is not None and len(last.alpha) == config.layers and any(a != 0 for a in last.alpha)
    largest = int(np.argmax(np.abs(last.alpha))) + 1
    assert "Learned branch scales alpha (from 0)" in view.status.text()
    assert f"(block {largest})" in view.status.text()
    assert view.depth_key.getAxis("bottom").labelText.startswith("block (its W1)")
    assert len(view.grad_curves) == config.layers + 1  # each block's W1 and the output layer
    assert view.regions_image.image is not None


def test_the_job_views_name_the_blocks_of_the_network_they_run():
    assert network_text(RESIDUAL.validated()) == (
        "6 pre-norm blocks \u00d7 16 relu (alpha 1/sqrt(L); expansion 2), kaiming_normal "
        "(negative_slope=0, mode=fan_in, nonlinearity=leaky_relu), layer norm, seed 3")
    rezero = RESIDUAL.replace(branch_scale="0", residual="post").validated()
    assert "6 post-norm blocks \u00d7 16 relu (alpha 0, learned; expansion 2)" in network_text(rezero)
    assert network_text(SMALL.validated()).startswith("5 \u00d7 16 tanh, xavier_normal")


def test_the_theory_view_says_its_diagram_is_of_plain_layers(qtbot, make_window):
    window = make_window(RESIDUAL)
    view = window.view("theory")
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.config == window.displayed_config() and view.up_to_date(), timeout=TIMEOUT_MS)
    assert "Residual blocks: the point is their W1's" in view.numbers.text()


def test_the_sweep_refuses_residual_blocks_in_one_line(qtbot, make_window):
    window = make_window(RESIDUAL)
    view = window.view("sweep")
    window.tabs.setCurrentWidget(view)
    settle(qtbot, window)
    assert not view.run_button.isEnabled()
    assert view.caption.text().startswith("No sweep of this network: residual:")
    window.set_config(SMALL)
    settle(qtbot, window)
    assert view.run_button.isEnabled() and view.caption.text().startswith("Run sweeps the network")
