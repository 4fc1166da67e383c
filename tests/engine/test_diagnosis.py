"""The engine's diagnosis: kinds, layers and messages; the measurements it rests on (the samples'
correlation, the units' spread, the dead units a correlated batch explains) against independent
references."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import SimConfig, simulate
from initsim.engine.diagnosis import WARNING_KINDS, diagnose, expected_dead_fraction
from initsim.engine.presets import get_preset
from initsim.engine.stats import GEOMETRY_SAMPLES, sample_geometry, std_of


def _findings(config: SimConfig):
    result = simulate(config.validated())
    return result, diagnose(result.config, result.forward, result.backward)


def _kinds(findings) -> list[str]:
    return [f.kind for f in findings]


@pytest.mark.parametrize(("activation", "init"), [("relu", "kaiming_normal"), ("tanh", "xavier_normal"),
                                                 ("selu", "lecun_normal")])
def test_the_recommended_inits_get_no_warning_at_50_layers(activation, init):
    result, found = _findings(SimConfig(layers=50, width=256, batch=256, activation=activation, init=init))
    assert not [f for f in found if f.is_warning], found
    if activation == "relu":
        # Its samples collapse towards one vector (c* = 1): information, with the dead units it explains.
        (collapsed,) = found
        assert collapsed.kind == "collapsed" and not collapsed.is_warning
        assert "units are on or off for all samples alike" in collapsed.message
        assert max(f.dead_fraction for f in result.forward) >= 0.25  # what the old rule called dead


def test_zeros_are_symmetric_first():
    config = get_preset("zeros").config
    _, found = _findings(config.replace(batch=128, width=min(config.width, 128)))
    assert [(f.kind, f.layer) for f in found] == [("symmetric", 1), ("vanished", 1), ("dead", 1),
                                                   ("vanished", 10)]
    assert found[0].message.startswith("symmetric: from layer 1 every unit computes the same value")
    assert found[2].message == "100% of relu units dead at layer 1"


def test_a_constant_init_is_symmetric_not_only_saturated():
    _, found = _findings(SimConfig(layers=8, width=64, batch=64, activation="tanh", init="constant",
                                   init_params={"value": 0.1}))
    assert _kinds(found)[:2] == ["symmetric", "saturated"]


def test_units_made_identical_by_dead_units_below_are_dead_not_symmetric():
    # A bias of -1 kills every ReLU within a few layers; the layers above then compute their bias
    # alone, the same value everywhere, though their weights differ.
    _, found = _findings(SimConfig(layers=8, width=64, batch=64, activation="relu", init="kaiming_normal",
                                   bias_init="constant", bias_params={"value": -1.0}))
    assert "dead" in _kinds(found) and "symmetric" not in _kinds(found)


def test_the_first_overflowing_layer_is_named():
    result, found = _findings(get_preset("too_large").config.replace(batch=64))
    first = next(f.index for f in result.forward if f.post.nonfinite or f.pre.nonfinite)
    assert (found[0].kind, found[0].layer) == ("nonfinite", first)
    assert found[0].message == f"exploded: non-finite values (inf or NaN) at layer {first}"


def test_saturation_and_shrinking():
    _, saturated = _findings(SimConfig(layers=4, width=64, batch=64, activation="tanh", init="normal",
                                       init_params={"std": 1.0}))
    assert any(f.kind == "saturated" and "% of units at layer" in f.message for f in saturated)
    _, shrinking = _findings(SimConfig(layers=20, width=64, batch=64, activation="relu", init="xavier_normal"))
    (drift,) = [f for f in shrinking if f.message.startswith("activation std shrinking: ")]
    assert (drift.kind, drift.layer) == ("vanished", 20) and drift.message.endswith("at layer 20")


def test_a_partial_run_is_diagnosed_from_what_arrived():
    result, _ = _findings(get_preset("zeros").config)
    layers = result.config.layers
    assert diagnose(result.config, [None] * layers, [None] * layers) == []
    first = diagnose(result.config, [result.forward[0]] + [None] * (layers - 1), [None] * layers)
    assert _kinds(first) == ["symmetric", "vanished", "dead"]


def test_the_findings_reach_the_cli_json(capsys):
    assert main(["simulate", "--layers", "6", "--width", "32", "--batch", "16", "--init", "zeros", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["diagnosis"][0] == {"kind": "symmetric", "layer": 1, "message": record["diagnosis"][0]["message"]}
    assert {d["kind"] for d in record["diagnosis"]} <= set(WARNING_KINDS) | {"collapsed", "underflow"}
    assert all({"sample_correlation", "theory_sample_correlation", "unit_spread"} <= set(row)
               for row in record["layers"])


def test_the_cli_prints_the_findings(capsys):
    assert main(["simulate", "--layers", "6", "--width", "32", "--batch", "16", "--init", "zeros"]) == 0
    assert "warning: symmetric: from layer 1" in capsys.readouterr().out


# --- what the diagnosis rests on ------------------------------------------------------------

def _gram_geometry(array: np.ndarray) -> tuple[float, float]:
    """The mean off-diagonal cosine by the full Gram matrix, and the units' spread by definition."""
    rows = array[:GEOMETRY_SAMPLES].astype(np.float64)
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    gram = unit @ unit.T
    m = len(rows)
    return (gram.sum() - np.trace(gram)) / (m * (m - 1)), math.sqrt(rows.var(axis=1).sum() / np.square(rows).mean(axis=1).sum())


@pytest.mark.parametrize("offset", [0.0, 0.3, 3.0])
@pytest.mark.parametrize("scale", [1.0, 1e-38, 1e30])
def test_sample_geometry_is_the_gram_matrix_mean(offset, scale):
    rows = np.random.default_rng(1).standard_normal((300, 96)) + offset
    array = (rows * scale).astype(np.float32)
    correlation, spread = _gram_geometry(array.astype(np.float64) / scale)
    measured = sample_geometry(array)
    assert measured.correlation == pytest.approx(correlation, abs=1e-6)
    assert measured.unit_spread == pytest.approx(spread, rel=1e-5)


def test_sample_geometry_of_identical_units_and_of_nothing():
    identical = np.repeat(np.random.default_rng(2).standard_normal((40, 1)), 64, axis=1).astype(np.float32)
    assert sample_geometry(identical).unit_spread == 0.0
    zeros = sample_geometry(np.zeros((40, 64), np.float32))
    assert zeros.unit_spread == 0.0 and math.isnan(zeros.correlation)
    assert math.isnan(sample_geometry(np.full((4, 4), np.inf, np.float32)).correlation)


def test_a_constant_float32_array_has_std_zero():
    # The float32 dot product's rounding once gave a constant init a weight std of 0.00037.
    assert std_of(np.full((256, 256), 0.1, np.float32)) == 0.0
    values = np.random.default_rng(3).normal(3.0, 0.01, (256, 256)).astype(np.float32)
    assert std_of(values) == pytest.approx(values.astype(np.float64).std(), rel=1e-6)


@pytest.mark.parametrize("correlation", [0.3, 0.8, 0.95, 0.99])
def test_expected_dead_fraction_matches_sampling(correlation):
    rng = np.random.default_rng(4)
    batch, units = 64, 200_000
    shared = rng.standard_normal(units)
    negative_everywhere = np.ones(units, bool)
    for _ in range(batch):  # sample by sample: never a (units, batch) array
        h = math.sqrt(correlation) * shared + math.sqrt(1 - correlation) * rng.standard_normal(units)
        negative_everywhere &= h <= 0
    sampled = negative_everywhere.mean()
    assert expected_dead_fraction(correlation, batch) == pytest.approx(sampled, abs=4 * math.sqrt(0.25 / units) + 1e-4)
    assert expected_dead_fraction(1.0, batch) == 0.5 and expected_dead_fraction(0.0, batch) < 1e-15


def test_the_theory_correlation_is_relus_arc_cosine_kernel():
    # For ReLU without bias, c -> (sqrt(1 - c^2) + (pi - arccos c) c) / pi (Cho & Saul 2009),
    # whatever sigma_w^2: an independent closed form for the quadrature's recursion.
    result = simulate(SimConfig(layers=12, width=64, batch=16, activation="relu", init="kaiming_normal").validated())
    c, expected = 0.0, []
    for _ in range(12):
        expected.append(c)
        c = (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
    np.testing.assert_allclose([f.theory_sample_correlation for f in result.forward], expected, atol=1e-7)


@pytest.mark.parametrize(("activation", "init", "params"), [
    ("tanh", "normal", {"std": 1.5 / 32}),  # sigma_w^2 = 2.25 on width 1024: chaotic, c* < 1
    ("relu", "kaiming_normal", {}),
])
def test_measured_correlation_follows_the_theory_on_a_wide_net(activation, init, params):
    # One net's correlation strays ~0.01-0.02 from the mean over nets at width 1024 (its weights
    # are shared by every pair); four seeds' mean is within ~0.01 of the theory.
    measured = []
    for seed in range(4):
        config = SimConfig(layers=10, width=1024, batch=GEOMETRY_SAMPLES, activation=activation, init=init,
                           init_params=params, bias_init="normal", bias_params={"std": 0.3}, seed=seed)
        result = simulate(config.validated())
        measured.append([f.geometry.correlation for f in result.forward])
    theory = np.array([f.theory_sample_correlation for f in result.forward])
    assert np.abs(np.mean(measured, axis=0) - theory).max() < 0.03
    assert theory[-1] > theory[0] + 0.2  # a curve that moves, not a constant both agree on


def test_a_residual_networks_findings_name_its_blocks():
    config = SimConfig(layers=12, width=64, batch=64, activation="relu", init="kaiming_normal", residual="pre",
                       seed=1).validated()  # no norm: the stream grows by sqrt(3) a block
    result = simulate(config)
    found = diagnose(config, result.forward, result.backward)
    assert {f.kind for f in found} >= {"exploded"}
    assert all(" block " in f.message and " layer " not in f.message for f in found), [f.message for f in found]
