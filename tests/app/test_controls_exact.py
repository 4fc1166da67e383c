"""The controls keep a valid config exactly: what set_config was given is what config() returns and
what run_finished reports, for parameters anywhere in the engine's ranges; typed text out of range
is refused with a message, never rounded or clamped."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt

from initsim.app.controls import ControlsPanel
from initsim.app.widgets import NumberBox, decade_step, shortest_text
from initsim.engine import ACTIVATIONS, BIAS_INITS, RANGES, SCHEMES, ConfigError, SimConfig
from initsim.engine.configfile import config_from_toml, config_to_toml
from initsim.engine.params import PARAMS, Param

from appcheck import TIMEOUT_MS, settle

# Values the fuzzing found changed and the ends of float64, used where a parameter's range has them.
EDGES = (1e-13, 2e6, 0.1 + 0.2, 5e-324, -5e-324, -0.0, 0.0, 1e-300, sys.float_info.min,
         sys.float_info.max, -sys.float_info.max, 123456.789, 1 / 3, 1.0 - 2**-53)
HYPOTHESIS = dict(deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def allows(param: Param, value: float) -> bool:
    try:
        param.validate("test", value)
    except ConfigError:
        return False
    return True


def param_values(param: Param) -> st.SearchStrategy:
    """Any value ``param`` takes: its whole range, tiny and huge magnitudes, subnormals, -0.0."""
    if param.is_choice:
        return st.sampled_from(param.choices)
    anywhere = st.floats(min_value=param.low if math.isfinite(param.low) else None,
                         max_value=param.high if math.isfinite(param.high) else None,
                         exclude_min=not param.low_inclusive, allow_nan=False, allow_infinity=False)
    return st.sampled_from([v for v in EDGES if allows(param, v)]) | anywhere


def params_of(defaults) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={name: param_values(PARAMS[name]) for name in defaults})


def integers(name: str, small: bool) -> st.SearchStrategy:
    low, high = RANGES[name]
    return st.integers(low, min(high, low + 3)) if small else st.integers(low, high)


@st.composite
def valid_configs(draw, small: bool = False) -> SimConfig:
    """Valid configs of every scheme, activation and bias, their parameters anywhere in range;
    ``small``: networks of a few units (the window runs each), else the integers' whole ranges."""
    scheme, activation, bias = (draw(st.sampled_from(sorted(registry)))
                                for registry in (SCHEMES, ACTIVATIONS, BIAS_INITS))
    config = SimConfig(
        layers=draw(integers("layers", small)), width=draw(integers("width", small)),
        batch=draw(integers("batch", small)),
        input_width=draw(st.none() | integers("input_width", small)),
        activation=activation, activation_params=draw(params_of(ACTIVATIONS[activation].defaults)),
        init=scheme, init_params=draw(params_of(SCHEMES[scheme].defaults)),
        bias_init=bias, bias_params=draw(params_of(BIAS_INITS[bias].defaults)),
        norm=draw(st.sampled_from(["none", "batch", "layer"])),
        input_dist=draw(st.sampled_from(["normal", "uniform"])), seed=draw(integers("seed", False)),
        dtype=draw(st.sampled_from(["float32", "float64"])), subnormals=draw(st.sampled_from(["flush", "keep"])),
        bins=draw(integers("bins", False)))
    try:
        return config.validated()
    except ConfigError:  # e.g. trunc_normal's low above its high, or over the memory limit
        reject()


def assert_exact(actual: SimConfig, expected: SimConfig) -> None:
    """Equal, and equal in every digit and sign (0.0 == -0.0, but they are different configs)."""
    assert actual == expected
    assert repr(actual) == repr(expected)


def test_the_controls_keep_any_valid_config_exactly(qtbot):
    controls = ControlsPanel()
    qtbot.addWidget(controls)

    @settings(max_examples=300, **HYPOTHESIS)
    @given(valid_configs())
    def check(config):
        controls.set_config(config)
        assert_exact(controls.config(), config)

    check()


def test_the_window_keeps_a_valid_config_and_its_file_exactly(qtbot, make_window):
    window = make_window(SimConfig(layers=1, width=2, batch=2))

    @settings(max_examples=60, **HYPOTHESIS)
    @given(valid_configs(small=True))
    def check(config):
        window.set_config(config)
        assert_exact(window.config(), config)
        window.set_config(config_from_toml(config_to_toml(config)))  # saved and opened again
        assert_exact(window.config(), config)

    check()
    settle(qtbot, window)


def test_run_finished_reports_exactly_the_config_set(qtbot, make_window):
    window = make_window(SimConfig(layers=1, width=2, batch=2))
    settle(qtbot, window)

    @settings(max_examples=15, **HYPOTHESIS)
    @given(valid_configs(small=True))
    def check(config):
        with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT_MS) as finished:
            window.set_config(config)
        assert_exact(finished.args[0], config)

    check()


def _type(qtbot, box: NumberBox, text: str) -> None:
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


def test_a_tiny_std_typed_runs_as_typed(qtbot, make_window):
    window = make_window(SimConfig(layers=2, width=4, batch=4, init="normal"))
    settle(qtbot, window)
    std = window.findChild(NumberBox, "init.std")
    with qtbot.waitSignal(window.run_finished, timeout=TIMEOUT_MS) as finished:
        _type(qtbot, std, "1e-13")
    assert finished.args[0].init_params["std"] == 1e-13
    assert std.text() == "1e-13"
    assert not window.controls.init_params.refusal.isVisible()


@pytest.mark.parametrize("name, typed, field, allowed", [
    ("init.std", "-1", "init.std", "[0, inf]"),
    ("init.std", "1e999", "init.std", "[0, inf]"),  # beyond float64: not infinity
    ("init.scale", "0", "init.scale", "(0, 1e+06]"),
    ("width", "5000", "width", "an integer in [1, 4096]"),
    ("seed", str(2**63), "seed", "an integer in [0, 9223372036854775807]"),
])
def test_a_value_typed_out_of_range_is_refused_with_a_message(qtbot, make_window, name, typed,
                                                              field, allowed):
    init = "variance_scaling" if name == "init.scale" else "normal"
    window = make_window(SimConfig(layers=2, width=4, batch=4, init=init))
    settle(qtbot, window)
    before = window.config()
    box = window.findChild(NumberBox, name)
    shown = box.text()
    _type(qtbot, box, typed)
    assert window.config() == before
    assert box.text() == shown  # the value kept, as it was: not clamped to the nearest end
    notes = [note for note in (window.controls.init_params.refusal, window.controls.network_refusal,
                               window.controls.seed_refusal) if note.isVisible()]
    assert len(notes) == 1
    message = notes[0].text()
    assert message.startswith(f"{field}: got '{typed}'") and allowed in message
    assert message.endswith(f"kept {shown}")
    window.set_config(before.replace(seed=1))  # the next config clears the note
    assert not notes[0].isVisible()


@pytest.mark.parametrize("view, box", [("training", "train.lr"), ("compare", "compare.lr")])
def test_a_learning_rate_out_of_range_is_refused_in_the_views_status(qtbot, make_window, view, box):
    window = make_window(SimConfig(layers=2, width=4, batch=4))
    window.compare.include_training.setChecked(True)  # shows the comparison's training settings
    window.tabs.setCurrentWidget(getattr(window, view))
    lr = window.findChild(NumberBox, box)
    shown = lr.text()
    _type(qtbot, lr, "1000")
    assert lr.text() == shown
    status = getattr(window, view).status.text()
    assert status == f"lr: got '1000', expected a number in [1e-08, 100]; kept {shown}"


def test_the_seed_box_takes_every_seed_the_engine_does(qtbot, make_window):
    window = make_window(SimConfig(layers=2, width=4, batch=4))
    seed = window.findChild(NumberBox, "seed")
    _type(qtbot, seed, str(RANGES["seed"][1]))
    assert window.config().seed == 2**63 - 1
    window.set_config(window.config().replace(seed=2**40 + 1))
    assert seed.text() == "1099511627777"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_shown_shortest_and_read_back_exactly(value):
    text = shortest_text(value)
    assert repr(float(text)) == repr(value)
    assert len(text) <= len(repr(value))


def test_number_box_text_is_the_shortest_form(qapp):  # a widget needs the application
    box = NumberBox(PARAMS["std"], owner="init")
    for value, text in ((0.01, "0.01"), (2.5e-5, "2.5e-05"), (2e6, "2000000"), (5e-324, "5e-324"),
                        (0.1 + 0.2, "0.30000000000000004"), (1e300, "1e+300"), (-0.0, "-0")):
        box.setValue(value)
        assert (box.text(), box.value()) == (text, value)
    with pytest.raises(ConfigError, match=r"^init\.std: "):
        box.setValue(-1.0)


@pytest.mark.parametrize("text, integer, state", [
    ("1e-13", False, "Acceptable"), (" 2E+5 ", False, "Acceptable"), (".5", False, "Acceptable"),
    ("2e6", False, "Intermediate"), ("1e", False, "Intermediate"), ("-", False, "Intermediate"),
    ("-1", False, "Intermediate"),
    ("inf", False, "Invalid"), ("nan", False, "Invalid"), ("1_000", False, "Invalid"),
    ("\u0661\u0662", False, "Invalid"), ("12", True, "Acceptable"), ("1.5", True, "Invalid"),
    ("1e3", True, "Invalid"), ("\u0661\u0662", True, "Invalid"),  # Arabic-Indic digits
])
def test_what_a_number_box_lets_be_typed(qtbot, text, integer, state):
    box = NumberBox(Param("x", "", low=0, high=10**6), integer=integer)
    qtbot.addWidget(box)
    assert box.validate(text, 0)[0].name == state


@pytest.mark.parametrize("start, steps, end", [
    (0.1, 1, 0.11), (0.1, 3, 0.13), (2e6, 1, 2.1e6), (1.0, -1, 0.99), (1.0, 1, 1.1), (0.0, 1, 0.1),
    (0.0, -1, -0.1), (-1.0, 1, -0.99), (1e-13, 1, 1.1e-13),
    (0.30000000000000004, 1, 0.31000000000000005),
])
def test_arrows_step_a_tenth_of_the_decade(start, steps, end):
    assert decade_step(start, steps) == end


@given(st.floats(1e-300, 1e300), st.sampled_from([1, -1]))
def test_a_step_moves_at_most_a_tenth_and_the_right_way(value, direction):
    stepped = decade_step(value, direction)
    assert (stepped - value) * direction > 0
    assert abs(stepped - value) <= value / 10 * (1 + 1e-12)


def test_arrows_stop_at_the_ends_of_the_range(qtbot):
    sparsity = NumberBox(PARAMS["sparsity"], owner="init")
    qtbot.addWidget(sparsity)
    sparsity.setValue(0.95)
    sparsity.stepBy(10)
    assert sparsity.value() == 1.0
    assert not sparsity.stepEnabled() & sparsity.StepEnabledFlag.StepUpEnabled
    scale = NumberBox(PARAMS["scale"], owner="init")  # (0, 1e6]: arrows come near 0, never to it
    qtbot.addWidget(scale)
    scale.setValue(1e-300)
    scale.stepBy(-5)
    assert 0 < scale.value() < 1e-300
    layers = NumberBox(Param("layers", "", low=1, high=1000), integer=True)
    qtbot.addWidget(layers)
    layers.setValue(3)
    layers.stepBy(-10)
    assert layers.value() == 1


def test_long_numbers_do_not_widen_the_controls(qtbot, make_window):
    window = make_window(SimConfig(layers=2, width=4, batch=4, init="trunc_normal"), size=(1280, 720))
    dock_width = window.dock.width()
    hint = window.controls.sizeHint().width()
    long = dict(mean=-0.30000000000000004, std=1.7976931348623157e308, low=-123456.78901234567,
                high=2.2250738585072014e-308)
    window.set_config(window.config().replace(init_params=long, seed=2**63 - 1))
    assert window.controls.sizeHint().width() == hint
    assert window.dock.width() == dock_width
    settle(qtbot, window)
