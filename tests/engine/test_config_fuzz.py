"""Every config, however mistyped, either validates (and then runs) or raises a ConfigError naming
its field: SimConfig and TrainConfig fields, given as Python values or as a config file's keys.
The cases are config_cases.py's; tests/bench/fuzz_configs.py runs 10,000 of them with counts."""

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from config_cases import MAX_COST, cases, outcome, simulation_cost, validated
from initsim.engine import ConfigError, SimConfig


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
