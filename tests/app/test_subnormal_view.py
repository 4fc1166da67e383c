"""The window's side of subnormals: the control in "Seed and precision" and the plain-words warning
naming the first layer whose values fell below the smallest normal, forward and backward."""

from __future__ import annotations

import pytest

from initsim.app.controls import ControlsPanel
from initsim.app.model.runstate import RunState
from initsim.engine import SimConfig, simulate_stream

# A tanh net whose signal passes below float32's smallest normal on the way forward and whose
# gradient does on the way back (a weight std of 0.001 at width 64 shrinks both ~100x a layer).
VANISHING = SimConfig(layers=24, width=64, batch=48, activation="tanh", init="normal",
                      init_params={"std": 1e-3}, seed=3)


def finished(config: SimConfig) -> RunState:
    state = RunState(config.validated(), run_id=1)
    for event in simulate_stream(config):
        state.add(event)
    return state


@pytest.mark.parametrize(("dtype", "mode", "tiny", "fate"), [
    ("float32", "flush", "1.2e-38", "flushed to zero"),
    ("float64", "keep", "2.2e-308", "kept (IEEE, slow on many CPUs)"),
])
def test_the_warnings_name_the_first_layers_with_subnormals_and_what_became_of_them(dtype, mode, tiny, fate):
    deeper = {"layers": 90, "width": 32, "init_params": {"std": 1e-5}} if dtype == "float64" else {}
    config = VANISHING.replace(subnormals=mode, dtype=dtype, **deeper)
    state = finished(config)
    forward = next(f.index for f in state.forward if f.subnormal)
    backward = max(b.index for b in state.backward if b.subnormal)
    assert 1 < forward < config.layers and 1 < backward < config.layers
    warnings = [f.message for f in state.diagnosis()]
    assert f"underflow: values below {dtype}'s smallest normal ({tiny}) from layer {forward}, {fate}" in warnings
    assert (f"gradient underflow: values below {dtype}'s smallest normal ({tiny}) from layer {backward} "
            f"back to layer 1, {fate}") in warnings


def test_no_underflow_warning_without_subnormals():
    warnings = [f.message for f in finished(VANISHING.replace(layers=4)).diagnosis()]
    assert not [w for w in warnings if "underflow" in w]


def test_the_subnormals_control_sets_and_reads_the_config_field(qtbot):
    controls = ControlsPanel()
    qtbot.addWidget(controls)
    assert controls.config().subnormals == "flush"
    with qtbot.waitSignal(controls.changed, timeout=1000):
        controls.subnormals.setCurrentIndex(controls.subnormals.findData("keep"))
    assert controls.config().subnormals == "keep"
    controls.set_config(SimConfig(subnormals="flush"))
    assert controls.subnormals.currentData() == "flush"
    assert "smallest normal" in controls.subnormals.toolTip()
    assert controls.subnormals.parentWidget().title() == "Seed and precision"
