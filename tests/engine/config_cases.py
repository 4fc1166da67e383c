"""Fuzz cases over the whole config space, shared by tests/engine/test_config_fuzz.py (a few
hundred in the suite) and tests/bench/fuzz_configs.py (10,000, with counts).

A case is the fields of a SimConfig and of a TrainConfig as a Python caller, a config file or a
session could give them: mostly values of the right kind (small sizes, so that a valid case runs
in milliseconds, now and then the largest ones allowed), and in a few fields a mistyped value:
wrong types, integers far beyond any range, NaN and infinities, bools, numpy scalars, text, lists,
tables, nested junk, unknown names and parameters. `outcome` validates a case and runs it when
its estimated cost is small; anything but a ConfigError propagates.
"""

from __future__ import annotations

import math
import time
from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

from initsim.engine import ACTIVATIONS, BIAS_INITS, RANGES, SCHEMES, ConfigError, SimConfig
from initsim.engine.config import NORMS, RESIDUALS
from initsim.engine.configfile import config_from_mapping
from initsim.engine.params import PARAMS
from initsim.engine.schemes import ALIASES
from initsim.engine.simulate import simulate_stream
from initsim.engine.tasks import TASKS
from initsim.engine.train import OPTIMIZERS, TRAIN_RANGES, TRAIN_REAL_RANGES, Setup, TrainConfig, run

# Above this many estimated operations a case is validated but not run (about 0.1 s here).
MAX_COST = 3e7
# What a layer of a simulation, or a step of training, costs whatever its size (statistics,
# histograms, theory, Python): about 1 ms, measured on 1,000-layer nets of width 1.
LAYER_COST = 3e5

# --- values of the wrong kind --------------------------------------------------------------

_huge_ints = st.integers(19, 400).flatmap(
    lambda digits: st.sampled_from([10**digits, -(10**digits), 2**63, 2**64, -(2**63) - 1, 2**1024]))
_numpy_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(np.int64), st.integers(0, 2**64 - 1).map(np.uint64),
    st.floats(width=32).map(np.float32), st.floats().map(np.float64), st.booleans().map(np.bool_),
    st.integers(-128, 127).map(np.int8))
_odd_text = st.sampled_from(["", " ", "1.5", "3", "\u0663", "nan", "inf", "1e400", "None", "true",
                             " relu ", "RELU", "kaiming-normal", "x" * 300])
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), _huge_ints, st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]),
    st.text(max_size=8), _odd_text, _numpy_scalars)
junk = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6) | st.integers(), inner, max_size=3), max_leaves=6)


# --- values of the right kind, and near misses ---------------------------------------------

# Small sizes keep a valid case cheap; the cost guard decides what is run anyway.
_SMALL = {"layers": 4, "width": 16, "batch": 12, "input_width": 16, "bins": 70, "seed": 2**63 - 1,
          "samples": 64, "task_dim": 8, "data_seed": 2**63 - 1, "steps": 5, "train_batch": 16,
          "record_every": 10, "flat_steps": 100, "region_grid": 8, "expansion": 4}


@cache
def _integers(name: str, low: int, high: int, large: bool) -> st.SearchStrategy[int]:
    """Small values (cheap to run) or, in a large case, any value of the range and its edges."""
    if large:
        return st.integers(low, high) | st.sampled_from([low, high])
    return st.integers(low, min(high, _SMALL[name]))


@cache
def _names(known: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(known) | st.sampled_from(known).map(str.upper)


def _param_value(name: str) -> st.SearchStrategy:
    spec = PARAMS[name]
    if spec.is_choice:
        return st.sampled_from(spec.choices) | st.sampled_from(spec.choices).map(str.upper)
    inside = st.floats(spec.low, spec.high, allow_nan=False, allow_infinity=False,
                       exclude_min=not spec.low_inclusive)
    return st.one_of(inside, inside.filter(lambda v: abs(v) <= 4))


@cache
def _params(names: tuple[str, ...]) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={n: _param_value(n) for n in names})


@cache
def _bad_params(names: tuple[str, ...]) -> st.SearchStrategy:
    """The owner's parameters with one out of range, unknown or junk; or not a table at all."""
    outside = st.one_of(*(st.sampled_from([v for v in (PARAMS[n].low - 1, PARAMS[n].high * 2, -1.0)
                                           if math.isfinite(v)]).map(lambda v, n=n: {n: v})
                          for n in names if not PARAMS[n].is_choice)) if any(
        not PARAMS[n].is_choice for n in names) else st.nothing()
    foreign = st.dictionaries(st.sampled_from(sorted(PARAMS)) | st.text(max_size=6), junk,
                              min_size=1, max_size=2)
    return st.one_of(st.builds(lambda a, b: {**a, **b}, _params(names), outside | foreign), junk)


@cache
def _near_misses(known: tuple[str, ...]) -> st.SearchStrategy:
    return st.sampled_from(known).map(lambda n: n[:-1]) | st.text(max_size=10) | junk


@cache
def _bad_integers(low: int, high: int) -> st.SearchStrategy:
    return st.one_of(st.sampled_from([low - 1, high + 1, float(low), float(high) + 0.5]), _huge_ints, junk)


def _owned(registry: dict, name: Any, aliases: dict | None = None) -> tuple[str, ...]:
    """The parameters of the registry entry ``name`` names, if it names one."""
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else ""
    key = (aliases or {}).get(key, key)
    return tuple(registry[key].defaults) if key in registry else ()


_WRONG_CHOICES = st.sampled_from(["float16", "int8", "group", "cauchy", ""]) | junk
_NAMED = {"init": (SCHEMES, ALIASES, "init_params"), "activation": (ACTIVATIONS, None, "activation_params"),
          "bias_init": (BIAS_INITS, None, "bias_params")}
_CHOICES = {"norm": NORMS, "input_dist": ("normal", "uniform"),
            "dtype": ("float32", "float64"), "residual": RESIDUALS}
# The residual block's other options: values of the right kind (a scale as a number or as text).
_BLOCK_OPTIONS = {"branch_scale": st.sampled_from(["1", "0", "0.5", "1/sqrt(L)", "1/sqrt(2L)", " 1/SQRT(2l) "])
                  | st.floats(-4, 4), "fixup": st.booleans()}


def _integer_fields(draw, ranges: dict[str, tuple[int, int]], bad: set[str], large: bool,
                    optional: str) -> dict[str, Any]:
    """The integer fields of ``ranges``, those in ``bad`` of the wrong kind; ``optional`` (whose
    None means its default) is None in about half of the cases."""
    fields = {name: draw(_bad_integers(low, high) if name in bad else _integers(name, low, high, large))
              for name, (low, high) in ranges.items()}
    if optional not in bad:
        fields[optional] = draw(st.none() | st.just(fields[optional]))
    return fields


def _sim_fields(draw, bad: set[str], large: bool) -> dict[str, Any]:
    """SimConfig's fields, those in ``bad`` given a value of the wrong kind."""
    fields = _integer_fields(draw, RANGES, bad, large, "input_width")
    for name, (registry, aliases, params) in _NAMED.items():
        known = tuple(sorted(registry) + sorted(aliases or {}))
        fields[name] = draw(_near_misses(known) if name in bad else _names(known))
        names = _owned(registry, fields[name], aliases)
        fields[params] = draw(_bad_params(names) if params in bad else _params(names))
    for name, allowed in _CHOICES.items():
        fields[name] = draw(_WRONG_CHOICES if name in bad else st.sampled_from(allowed))
    for name, good in _BLOCK_OPTIONS.items():
        fields[name] = draw(junk if name in bad else good)
    return fields


def _train_fields(draw, bad: set[str], large: bool) -> dict[str, Any]:
    """TrainConfig's fields, those in ``bad`` given a value of the wrong kind."""
    fields = _integer_fields(draw, TRAIN_RANGES, bad, large, "task_dim")
    for name in TRAIN_REAL_RANGES:
        fields[name] = draw(_bad_reals(name) if name in bad else _reals(name))
    for name, registry in (("task", TASKS), ("optimizer", OPTIMIZERS)):
        fields[name] = draw(_near_misses(tuple(registry)) if name in bad else _names(tuple(registry)))
    return fields


@cache
def _reals(name: str) -> st.SearchStrategy:
    low, high = TRAIN_REAL_RANGES[name]
    given = st.floats(low, high) | st.sampled_from([low, high])
    return st.none() | given if name in ("noise", "lr") else given


@cache
def _bad_reals(name: str) -> st.SearchStrategy:
    low, high = TRAIN_REAL_RANGES[name]
    return st.sampled_from([low / 2 - 1, high * 2, math.nan]) | junk


_SIM_FIELDS = sorted(set(RANGES) | set(_NAMED) | {p for _, _, p in _NAMED.values()} | set(_CHOICES)
                     | set(_BLOCK_OPTIONS))
_TRAIN_FIELDS = sorted(set(TRAIN_RANGES) | set(TRAIN_REAL_RANGES) | {"task", "optimizer"})


@st.composite
def cases(draw) -> dict[str, Any]:
    """{"sim": SimConfig fields, "train": TrainConfig fields or None, "entry": how the case is given}.

    In half of the cases up to three fields of each hold a value of the wrong kind; one case in
    five is large (sizes and counts anywhere in their ranges). ``entry`` is "config" (the
    dataclass, as Python code builds it), "mapping" (the keys of a config file, through
    engine/configfile.py) or "dict" (SimConfig.from_dict); the last two now and then with an
    unknown key."""
    large = draw(st.integers(0, 4)) == 0

    def bad(fields: list[str]) -> set[str]:
        return draw(st.sets(st.sampled_from(fields), max_size=3)) if draw(st.booleans()) else set()

    sim = _sim_fields(draw, bad(_SIM_FIELDS), large)
    train = _train_fields(draw, bad(_TRAIN_FIELDS), large) if draw(st.booleans()) else None
    entry = draw(st.sampled_from(["config", "mapping", "dict"]))
    if entry != "config" and draw(st.integers(0, 9)) == 0:  # an unknown key: text in a file
        key = st.text(min_size=1, max_size=8) if entry == "mapping" else st.text() | st.integers() | st.none()
        sim[draw(key)] = draw(junk)
    return {"sim": sim, "train": train, "entry": entry}


# --- validating and running ----------------------------------------------------------------

def validated(case: dict[str, Any]) -> tuple[SimConfig, TrainConfig | None]:
    """The case's configs through the entry it names; raises ConfigError."""
    if case["entry"] == "mapping":
        config = config_from_mapping(case["sim"], "", "fuzz.toml")
    elif case["entry"] == "dict":
        config = SimConfig.from_dict(case["sim"]).validated()
    else:
        config = SimConfig(**case["sim"]).validated()
    training = TrainConfig(**case["train"]).validated() if case["train"] is not None else None
    return config, training


def simulation_cost(config: SimConfig) -> float:
    """Rough operations of a simulation: matmuls forward and backward, statistics, the sampling
    (a QR per layer for orthogonal weights, up to 10 extra passes for LSUV) and each layer's fixed
    overhead (theory, histograms)."""
    fan_in, width, batch, layers = config.fan_in_first, config.width, config.batch, config.layers
    weights = fan_in * width + (layers - 1) * width * width
    matmuls = 6 * batch * weights * (11 if SCHEMES[config.init].data_dependent else 1)
    if config.residual != "none":  # a block: two matrices of width x expansion width
        matmuls *= 2 * config.expansion
    sampling = layers * max(fan_in, width) ** 3 if not SCHEMES[config.init].iid else 10 * weights
    return matmuls + sampling + 50 * layers * batch * width + LAYER_COST * layers


def training_cost(config: SimConfig, training: TrainConfig) -> float:
    """Rough operations of a training run: its steps, its probes over the training set and the
    region grid, and the simulation-like sampling of the network."""
    dim = training.task_dim
    weights = dim * config.width + (config.layers - 1) * config.width**2 + config.width * 10
    probes = training.steps // training.record_every + 2
    probe_rows = training.samples + training.region_grid**2
    return (6 * training.steps * min(training.train_batch, training.samples) * weights
            + 2 * probes * probe_rows * weights + 20 * training.samples * dim
            + simulation_cost(config.replace(batch=1, input_width=dim)) + LAYER_COST * training.steps)


def outcome(case: dict[str, Any], budget_seconds: float = math.inf, max_cost: float = MAX_COST) -> str:
    """"ConfigError" (refused by validation, or by the run's own checks before it starts: memory,
    samples per class), "ran", "too large" (valid, not run: its estimated cost is over
    ``max_cost``) or "stopped" (ran past ``budget_seconds`` and was stopped). Any other exception
    propagates."""
    try:
        return _run(case, time.perf_counter() + budget_seconds, max_cost)
    except ConfigError as exc:
        if not exc.field:
            raise AssertionError(f"a ConfigError without a field: {exc}") from None
        return "ConfigError"


def _run(case: dict[str, Any], deadline: float, max_cost: float) -> str:
    def over_time() -> bool:
        return time.perf_counter() > deadline

    config, training = validated(case)
    if training is None:
        if simulation_cost(config) > max_cost:
            return "too large"
        events = list(simulate_stream(config, over_time))
        if over_time():
            return "stopped"
        assert len(events) == 2 * config.layers
        return "ran"
    if training_cost(config, training) > max_cost:
        return "too large"
    events = list(run(Setup.of(config, training), over_time))
    if over_time():
        return "stopped"
    assert events and events[-1].step <= training.steps
    return "ran"
