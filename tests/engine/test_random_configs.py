"""Random configs: a valid one runs to the end with sane output; an invalid one raises ConfigError."""

import math

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from initsim.engine import ACTIVATIONS, BIAS_INITS, SCHEMES, ConfigError, SimConfig, simulate
from initsim.engine.config import NORMS
from initsim.engine.params import PARAMS

BAD_VALUES = {"layers": 0, "width": -3, "batch": 10**5, "activation": "relux", "init": "kaiming",
              "norm": "group", "input_dist": "cauchy", "dtype": "int8", "bins": 1, "seed": -1,
              "init_params": {"bogus": 1.0}}


def param_value(name):
    spec = PARAMS[name]
    if spec.is_choice:
        return st.sampled_from(spec.choices)
    low, high = max(spec.low, -4.0), min(spec.high, 4.0)
    return st.floats(low, high, allow_nan=False)


def params_of(defaults):
    return st.fixed_dictionaries({}, optional={n: param_value(n) for n in defaults})


@st.composite
def configs(draw):
    """Mostly valid configs (every scheme, activation and bias with random parameters), and now
    and then one field set to a bad value."""
    scheme = draw(st.sampled_from(sorted(SCHEMES)))
    activation = draw(st.sampled_from(sorted(ACTIVATIONS)))
    bias = draw(st.sampled_from(sorted(BIAS_INITS)))
    config = SimConfig(
        layers=draw(st.integers(1, 5)), width=draw(st.integers(1, 24)), batch=draw(st.integers(1, 12)),
        input_width=draw(st.none() | st.integers(1, 20)),
        activation=activation, activation_params=draw(params_of(ACTIVATIONS[activation].defaults)),
        init=scheme, init_params=draw(params_of(SCHEMES[scheme].defaults)),
        bias_init=bias, bias_params=draw(params_of(BIAS_INITS[bias].defaults)),
        norm=draw(st.sampled_from(NORMS)),
        input_dist=draw(st.sampled_from(["normal", "uniform"])), seed=draw(st.integers(0, 2**32)),
        dtype=draw(st.sampled_from(["float32", "float64"])), bins=draw(st.integers(2, 70)),
    )
    if draw(st.integers(0, 4)) == 0:
        field = draw(st.sampled_from(sorted(BAD_VALUES)))
        config = config.replace(**{field: BAD_VALUES[field]})
    return config


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_random_configs_run_or_raise_the_clear_error(config):
    try:
        valid = config.validated()
    except ConfigError as exc:
        assert exc.field and str(exc)
        return
    result = simulate(valid)
    assert len(result.forward) == len(result.backward) == valid.layers
    for event in result.forward:
        for stats in (event.pre, event.post):
            assert len(stats.histogram.edges) == valid.bins + 1
            assert all(math.isfinite(e) for e in stats.histogram.edges)
    for event in result.backward:
        assert all(math.isfinite(e) for e in event.grad.histogram.edges)


def is_valid(config):
    try:
        config.validated()
        return True
    except ConfigError:
        return False


def test_the_generator_yields_both_kinds():
    assert is_valid(find(configs(), lambda c: is_valid(c) and c.layers > 2 and c.init == "orthogonal"))
    assert not is_valid(find(configs(), lambda c: not is_valid(c)))
