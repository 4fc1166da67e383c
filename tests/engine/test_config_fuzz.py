"""Every config, however mistyped, either validates (and then runs) or raises a ConfigError naming
its field: SimConfig and TrainConfig fields, given as Python values or as a config file's keys,
and the seeds of a comparison and the axes of a sweep. The config cases are config_cases.py's;
tests/bench/fuzz_configs.py runs 10,000 of them with counts."""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from config_cases import MAX_COST, cases, junk, outcome, simulation_cost, validated
from initsim.engine import SCHEMES, ConfigError, SimConfig
from initsim.engine.compare import compare
from initsim.engine.sweep import grid


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_any_config_runs_or_names_its_bad_field(case):
    assert outcome(case) in ("ConfigError", "ran", "too large")


def answer(case):
    try:
        validated(case)
        return "valid"
    except ConfigError:
        return "ConfigError"


@pytest.mark.parametrize("entry", ["config", "mapping", "dict"])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("expected", ["valid", "ConfigError"])
def test_the_cases_reach_both_answers_through_both_entries(entry, training, expected):
    """A fuzz that only ever raised, or never did, would test nothing."""
    find(cases(), lambda c: c["entry"] == entry and (c["train"] is not None) == training
         and answer(c) == expected, settings=settings(database=None, max_examples=2000, phases=[Phase.generate]))


def test_the_cost_guard_runs_the_small_and_skips_the_large():
    assert simulation_cost(SimConfig(layers=4, width=16, batch=12).validated()) < MAX_COST
    assert simulation_cost(SimConfig(layers=300, width=589, batch=512, init="lsuv").validated()) > MAX_COST


TINY = SimConfig(layers=1, width=2, batch=2)


@settings(max_examples=50, deadline=None)
@given(junk | st.lists(junk, max_size=4) | st.lists(st.integers(0, 10), min_size=1, max_size=3))
def test_compare_takes_seeds_of_any_kind_or_names_them(seeds):
    try:
        result = compare([TINY], seeds)
    except ConfigError as exc:
        assert exc.field == "seeds"
        return
    assert list(result.runs[0].seeds) == [int(s) for s in seeds]


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["sigma_w2", "sigma_b2", "layers", "init"]),
       junk | st.lists(junk, max_size=3) | st.lists(st.floats(0, 4), min_size=1, max_size=3))
def test_sweep_axes_of_any_kind_give_configs_or_name_the_axis(axis, values):
    try:
        configs = grid(TINY, {axis: values})
    except ConfigError as exc:
        assert exc.field and (axis in exc.field or exc.field.startswith(("init", "bias_init")))
        return
    assert len(configs) == len(values) and all(c == c.validated() for c in configs)


@pytest.mark.parametrize("changes,field", [
    ({"init": "xavier_normal", "init_params": {"gain": 10**400}}, "init xavier_normal.gain"),
    ({"init": "normal", "init_params": {"std": -(10**400)}}, "init normal.std"),
    ({"init_params": 5}, "init_params"),
    ({"activation_params": [1, 2]}, "activation_params"),
    ({"bias_params": "std=1"}, "bias_params"),
    ({"init_params": {1: 2.0}}, "init_params"),
    ({"init": "variance_scaling", "init_params": {"mode": 3}}, "init variance_scaling.mode"),
    ({"init": "normal", "init_params": {"std": True}}, "init normal.std"),
    ({"init": "normal", "init_params": {"std": "1.5"}}, "init normal.std"),
    ({"layers": 3.0}, "layers"),
    ({"width": True}, "width"),
    ({"seed": 2**64}, "seed"),
    ({"bins": 10**5000}, "bins"),
    ({"init": 10**5000}, "init"),
    ({"dtype": ["float32"]}, "dtype"),
])
def test_the_fuzz_crashes_of_issue_9_are_config_errors(changes, field):
    with pytest.raises(ConfigError) as info:
        SimConfig(**changes).validated()
    assert info.value.field == field and len(str(info.value)) < 500


def test_numpy_scalars_are_numbers_and_a_huge_gain_has_finite_moments():
    config = SimConfig(layers=np.int64(2), width=np.int32(4), init="identity",
                       init_params={"gain": np.float32(3.0)}).validated()
    assert type(config.layers) is int and type(config.width) is int
    assert type(config.init_params["gain"]) is float
    mean, std = SCHEMES["identity"].moments(4, 4, {"gain": 1e200})  # gain**2 overflowed here
    assert mean == 2.5e199 and std == pytest.approx(1e200 * (0.25 * 0.75) ** 0.5)
