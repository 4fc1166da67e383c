"""RMSNorm (norm "rms", issue 13): u = h / sqrt(mean(h^2) + eps) over each sample's units, no mean
subtracted; its forward pass against a reference written here, its exact backward pass against
finite differences, training with it, its mean-field q = 1 and its CLI flag."""

from __future__ import annotations

import json

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import ConfigError, SimConfig, initial_weights, memory, simulate
from initsim.engine.activations import get_activation
from initsim.engine.config import NORMS
from initsim.engine.network import NORM_EPS, Network, backward, hidden_forward, normalize_backward
from initsim.engine.simulate import _input
from initsim.engine.theory import config_prediction
from initsim.engine.train import Setup, TrainConfig, loss_and_gradients, mean_squared_error, train

from numeric import numeric_gradient

TINY = SimConfig(layers=3, width=6, input_width=4, batch=5, activation="tanh", norm="rms",
                 init="xavier_normal", bias_init="normal", dtype="float64", seed=11)


def reference_forward(x: np.ndarray, layers, activation: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(u, y) per layer, in float64, written from RMSNorm's definition."""
    phi = get_activation(activation)
    params = phi.params({})
    out = []
    for w, b in layers:
        h = x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64)
        rms = np.sqrt((h ** 2).mean(axis=1, keepdims=True) + NORM_EPS)
        u = h / rms
        x = phi.forward(u.copy(), params)
        out.append((u, x))
    return out


def test_rms_is_a_norm_of_the_config_and_is_validated():
    assert "rms" in NORMS
    assert SimConfig(norm="rms").validated().norm == "rms"
    with pytest.raises(ConfigError) as error:
        SimConfig(norm="rmsnorm").validated()
    assert error.value.field == "norm" and "rms" in str(error.value)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_forward_matches_a_reference(dtype, rtol):
    config = SimConfig(layers=4, width=32, input_width=12, batch=16, activation="gelu", norm="rms",
                       bias_init="normal", bias_params={"std": 0.5}, dtype=dtype, seed=2)
    net = Network.of(config)
    layers = initial_weights(config)
    x0 = _input(net.config, net.streams()[0], net.dtype)
    expected = reference_forward(x0, layers, "gelu")
    for (y, kept, stats), (u, y_ref) in zip(hidden_forward(x0, layers, net.block), expected):
        np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(kept, u, rtol=rtol, atol=rtol)  # the backward pass keeps u
        assert stats[0] == 0.0  # no mean subtracted
    # No mean is subtracted: a bias shared by the units survives as a nonzero mean of u.
    shifted = [(w, b + 3.0) for w, b in layers[:1]]
    u = reference_forward(x0, shifted, "gelu")[0][0]
    assert abs(u.mean()) > 0.5
    np.testing.assert_allclose((u ** 2).mean(axis=1), 1.0, rtol=1e-4)


def test_the_simulation_reports_the_reference_statistics():
    config = SimConfig(layers=5, width=64, batch=32, activation="relu", norm="rms", dtype="float64", seed=4)
    result = simulate(config)
    net = Network.of(config)
    x0 = _input(net.config, net.streams()[0], net.dtype)
    for event, (u, y) in zip(result.forward, reference_forward(x0, initial_weights(config), "relu")):
        assert event.pre.std == pytest.approx(float(u.std()), rel=1e-9)
        assert event.post.std == pytest.approx(float(y.std()), rel=1e-9)




def test_normalize_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    h = rng.standard_normal((4, 7)) * 0.3 + 0.2
    g = rng.standard_normal((4, 7))

    def loss() -> float:
        return float((g * h / np.sqrt((h ** 2).mean(axis=1, keepdims=True) + NORM_EPS)).sum())

    inv_std = 1 / np.sqrt((h ** 2).mean(axis=1, keepdims=True) + NORM_EPS)
    exact = normalize_backward(g.copy(), h * inv_std, inv_std, "rms")
    np.testing.assert_allclose(exact, numeric_gradient(loss, h), rtol=1e-7, atol=1e-9)


def test_the_network_backward_pass_matches_finite_differences():
    """dL/dW and dL/db of every layer for L = sum(G * y_L), by the simulation's backward pass."""
    net = Network.of(TINY)
    layers = [(w.copy(), b.copy()) for w, b in initial_weights(TINY)]
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((TINY.batch, TINY.input_width))
    g = rng.standard_normal((TINY.batch, TINY.width))

    def loss() -> float:
        return float((g * reference_forward(x0, layers, "tanh")[-1][1]).sum())

    cache, inv_stds = [], []
    for _, kept, stats in hidden_forward(x0, layers, net.block):
        cache.append(kept.copy())
        inv_stds.append(stats[1])
    exact = {}
    for layer, grad_h, x_in, _ in backward(g.copy(), cache, inv_stds, [w for w, _ in layers], net.block, x0,
                                            np.empty((TINY.batch, TINY.width))):
        exact[layer] = (x_in.T @ grad_h, grad_h.sum(axis=0))
    for layer, (w, b) in enumerate(layers, 1):
        np.testing.assert_allclose(exact[layer][0], numeric_gradient(loss, w), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(exact[layer][1], numeric_gradient(loss, b), rtol=1e-6, atol=1e-9)


def test_training_gradients_with_rms_match_finite_differences():
    net = Network.of(TINY)
    streams = net.streams(extra=1)
    layers = [net.sample_layer(TINY.fans(layer), streams[layer]) for layer in range(1, 4)]
    layers.append(net.sample_layer((TINY.width, 1), streams[-1]))
    rng = np.random.default_rng(1)
    x, targets = rng.standard_normal((5, 4)), rng.standard_normal((5, 1))
    result = loss_and_gradients(layers, net.block, mean_squared_error, x, targets)

    def value():
        return loss_and_gradients(layers, net.block, mean_squared_error, x, targets).loss

    for (w, b), (dw, db) in zip(layers, result.grads):
        np.testing.assert_allclose(dw, numeric_gradient(value, w), rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(db, numeric_gradient(value, b), rtol=1e-5, atol=1e-8)


def test_a_deep_net_with_rms_norm_trains():
    config = SimConfig(layers=6, width=48, activation="relu", norm="rms")
    settings = TrainConfig(task="spirals", samples=400, steps=400, train_batch=100, record_every=100)
    result = train(config, settings)
    assert result.diverged is None
    first = np.median([s.loss for s in result.steps[:5]])
    last = np.median([s.loss for s in result.steps[-50:]])
    assert last < 0.75 * first, (first, last)
    assert result.status == "healthy", result.verdict
    assert Setup.of(config, settings).net.block.norm == "rms"


def test_theory_sets_q_to_one_and_the_measurement_agrees():
    config = SimConfig(layers=10, width=512, batch=256, activation="tanh", init="normal",
                       init_params={"std": 0.3}, bias_init="normal", bias_params={"std": 0.2}, norm="rms")
    prediction = config_prediction(config.validated())
    assert prediction.pre_std == (1.0,) * 10
    assert prediction.q_star == 1.0 and prediction.grad_std == (None,) * 10
    result = simulate(config)
    for event in result.forward:
        assert event.theory_pre_std == 1.0
        assert event.pre.std == pytest.approx(1.0, abs=0.02)  # weights of mean 0: u's mean is ~0


def test_cli_takes_norm_rms(capsys):
    assert main(["simulate", "--layers", "3", "--width", "16", "--batch", "8", "--norm", "rms", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["config"]["norm"] == "rms"
    assert [layer["theory_pre_std"] for layer in record["layers"]] == [1.0, 1.0, 1.0]
    assert main(["simulate", "--norm", "rmsnorm"]) == 2
    assert "rms" in capsys.readouterr().err


def test_memory_counts_the_rms_statistics_as_layer_norm_s():
    plain, rms, layer = (memory.simulation(SimConfig(norm=n).validated()).bytes for n in ("none", "rms", "layer"))
    assert rms == layer > plain
