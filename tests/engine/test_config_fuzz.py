"""Every config, however mistyped, either validates (and then runs) or raises a ConfigError naming
its field: SimConfig and TrainConfig fields, given as Python values or as a config file's keys,
and the seeds of a comparison and the axes of a sweep. The config cases are config_cases.py's;
tests/bench/fuzz_configs.py runs 10,000 of them with counts."""

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from config_cases import MAX_COST, cases, junk, outcome, simulation_cost, validated
from initsim.engine import ConfigError, SimConfig
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
