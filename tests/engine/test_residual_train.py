"""Training residual networks (issue 13, item 4): every parameter's gradient against finite
differences, ReZero's learned alpha, Fixup, determinism, probes and regions, divergence, the
classic result (a plain 100-layer tanh net stays at chance on the spirals, a pre-norm residual one
of the same depth learns them), the CLI, compare --train and the memory estimate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import SimConfig, initial_blocks, memory
from initsim.engine.compare import compare
from initsim.engine.network import Network
from initsim.engine.train import (Diverged, ResidualModel, Setup, TrainConfig, _residual_forward, chance_of,
                                  cross_entropy, initial_model, mean_squared_error, residual_loss_and_gradients,
                                  run, train, train_stream)

from numeric import numeric_gradient

MIB = 1024**2




def tiny_model(config: SimConfig, classes: int) -> tuple[ResidualModel, Network]:
    """A residual network on a 3-D task (projected to the width) as training builds it."""
    task = TrainConfig(task="blobs" if classes else "regression", task_dim=3, samples=16, train_batch=6)
    setup = Setup.of(config, task)
    return initial_model(setup, setup.net.streams(extra=2)), setup.net


# --- backpropagation ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["pre", "post"])
@pytest.mark.parametrize("norm,activation,classes", [
    ("none", "tanh", 4), ("batch", "gelu", 0), ("layer", "relu", 4), ("rms", "silu", 0),
])
def test_every_parameters_gradient_matches_finite_differences(form, norm, activation, classes):
    """P, b, each block's W1, b1, W2, b2 and learned alpha, and the output layer, in float64 on a tiny
    net with an expanded branch, nonzero biases and both losses; alpha moved off its start of 0 so
    that no gradient is trivially zero."""
    config = SimConfig(layers=3, width=4, expansion=2, residual=form, norm=norm, activation=activation,
                       init="xavier_normal", bias_init="normal", branch_scale="0", dtype="float64", seed=4)
    model, net = tiny_model(config, classes)
    assert model.learn_alpha and model.projection is not None
    model.alpha[:] = [0.7, -0.4, 1.3]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3))
    loss, targets = ((cross_entropy, rng.integers(0, 4, 6)) if classes
                     else (mean_squared_error, rng.standard_normal((6, 1))))
    result = residual_loss_and_gradients(model, net, loss, x, targets)
    assert isinstance(result.grads, ResidualModel)

    def value() -> float:
        return residual_loss_and_gradients(model, net, loss, x, targets).loss

    params, grads = model.arrays(), result.grads.arrays()
    assert len(params) == len(grads) == 2 + 4 * 3 + 1 + 2
    for param, grad in zip(params, grads):
        assert grad.shape == param.shape and np.abs(grad).max() > 0
        np.testing.assert_allclose(grad, numeric_gradient(value, param), rtol=1e-5, atol=1e-8)


def test_rezero_starts_as_the_identity_and_learns_its_alphas():
    """Branch scale 0: at step 1 only alpha (and the output and projection) have a gradient; then the
    branches come in, and every StepEvent reports the alphas after its update."""
    config = SimConfig(layers=4, width=16, residual="pre", norm="layer", branch_scale="0")
    training = TrainConfig(samples=200, steps=60, train_batch=50, record_every=30)
    model, net = tiny_model(config.replace(dtype="float64"), 4)
    rng = np.random.default_rng(0)
    first = residual_loss_and_gradients(model, net, cross_entropy, rng.standard_normal((6, 3)),
                                        rng.integers(0, 4, 6)).grads
    assert all(not (g.w1.any() or g.b1.any() or g.w2.any() or g.b2.any()) for g in first.blocks)
    assert np.abs(first.alpha).min() > 0
    result = train(config, training)
    assert result.residual is not None and result.residual.learn_alpha
    alphas = [event.alpha for event in result.steps]
    assert all(a is not None and len(a) == config.layers for a in alphas)
    assert np.array_equal(result.residual.alpha, np.array(alphas[-1], np.float32))
    assert np.abs(alphas[-1]).min() > 1e-3  # every branch came in
    assert result.steps[0].record()["alpha"] == list(alphas[0])
    fixed = train(config.replace(branch_scale="1/sqrt(L)"), training.replace(steps=3))
    assert fixed.steps[-1].alpha is None and "alpha" not in fixed.steps[-1].record()
    assert np.all(fixed.residual.alpha == np.float32(0.5)) and not fixed.residual.learn_alpha


def test_fixup_moves_w2_first_and_w1_once_w2_has_moved():
    """Fixup: W2 = 0 and the output layer 0 at the start; step 1 trains the output layer alone,
    W2 moves from step 2, and W1, which has no gradient while W2 is 0, from step 3."""
    config = SimConfig(layers=6, width=16, residual="pre", fixup=True, activation="relu")
    training = TrainConfig(samples=200, train_batch=50, steps=3)
    ratios = [e.grad_norm for e in train_stream(config, training)]  # per block W1, then the output
    assert ratios[0][-1] > 0 and not any(ratios[0][:-1])
    assert not any(ratios[1][:-1])  # W1 still has no gradient: W2 was still 0 at step 2's pass
    assert all(n > 0 for n in ratios[2])
    result = train(config, TrainConfig(samples=400, steps=300, train_batch=100))
    assert result.status == "healthy"


def test_determinism_same_seed_same_losses():
    config = SimConfig(layers=5, width=24, residual="post", norm="batch", activation="gelu", expansion=2)
    training = TrainConfig(samples=300, steps=40, train_batch=64, optimizer="adam")
    first, again = train(config, training), train(config, training)
    assert [e.loss for e in first.steps] == [e.loss for e in again.steps]
    assert [e.grad_data for e in first.steps] == [e.grad_data for e in again.steps]
    other = train(config.replace(seed=1), training)
    assert [e.loss for e in first.steps] != [e.loss for e in other.steps]


def test_training_starts_from_the_simulations_blocks():
    config = SimConfig(layers=3, width=8, residual="pre", norm="rms", bias_init="normal", expansion=2)
    setup = Setup.of(config, TrainConfig())
    model = initial_model(setup, setup.net.streams(extra=2))
    expected = initial_blocks(config.replace(input_width=2))
    assert all(np.array_equal(a, b) for a, b in zip(model.projection, expected.projection))
    assert len(model.blocks) == len(expected.blocks) == 3
    for ours, theirs in zip(model.blocks, expected.blocks):
        for name in ("w1", "b1", "w2", "b2"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name))
    assert model.output[0].shape == (8, 2)


# --- probes, regions, divergence ---------------------------------------------------------------

def test_probes_report_the_stream_and_regions_use_the_training_sets_batch_statistics():
    config = SimConfig(layers=3, width=16, residual="pre", norm="batch", activation="tanh")
    training = TrainConfig(samples=200, steps=20, train_batch=50, record_every=10, region_grid=8)
    layers: list = []
    setup = Setup.of(config, training)
    events = list(run(setup, layers_out=layers))
    model, net, data = layers[0], setup.net, setup.data
    probe = events[-1].probe
    assert [e.step for e in events if e.probe] == [1, 10, 20]
    assert len(probe.activation_std) == config.layers and len(events[-1].grad_data) == config.layers + 1
    assert probe.regions.shape == (8, 8)
    # the statistics of the whole training set, per block; then each grid point alone with them
    hidden, branch = np.empty((len(data.inputs), 16), np.float32), np.empty((len(data.inputs), 16), np.float32)
    population = [step.stats for step in _residual_forward(model, net, data.inputs, hidden, branch)]
    points = data.grid(8)
    alone = []
    for point in points:
        stream = point[None, :]
        for step in _residual_forward(model, net, stream, np.empty((1, 16), np.float32),
                                      np.empty((1, 16), np.float32), population):
            stream = step.out
        alone.append(int(np.argmax(stream @ model.output[0] + model.output[1])))
    assert np.array_equal(np.array(alone).reshape(8, 8), probe.regions)


def test_a_residual_net_that_overflows_diverges_at_its_first_non_finite_block():
    """No norm, alpha 1, linear blocks with std-1 weights: each block multiplies the stream's size by
    about sqrt(1 + width^2) = 16; the float64 forward pass of the same weights says where float32
    overflows."""
    config = SimConfig(layers=40, width=16, residual="pre", activation="linear", init="normal",
                       init_params={"std": 1.0})
    training = TrainConfig(samples=64, train_batch=64, steps=5)  # one batch: the whole set
    setup = Setup.of(config, training)
    model = initial_model(setup, setup.net.streams(extra=2))
    x = setup.data.inputs.astype(np.float64) @ model.projection[0] + model.projection[1]
    expected = None
    for block, w in enumerate(model.blocks, 1):
        x = x + (x @ w.w1 + w.b1) @ w.w2 + w.b2
        if np.abs(x).max() > np.finfo(np.float32).max:
            expected = block
            break
    assert expected is not None and 5 < expected < 40
    events = list(train_stream(config, training))
    assert len(events) == 1 and isinstance(events[0], Diverged)
    assert (events[0].step, events[0].layer) == (1, expected)
    assert events[0].message == f"diverged at step 1 (first non-finite values in block {expected})"


# --- the classic result ------------------------------------------------------------------------

# 100 layers of 32 tanh units, Xavier, SGD at its default rate, 100 steps of 64 spirals: measured
# (seeds 0-4) the plain net's set loss 0.679-0.698 at chance, accuracy 0.5-0.585; the pre-norm
# residual net's (layer norm) 0.0002-0.0005, accuracy 1.0. Each run takes 1-2 s: few steps of a
# small width, the full depth.
CLASSIC = SimConfig(layers=100, width=32, activation="tanh", init="xavier_normal")
CLASSIC_TRAINING = TrainConfig(task="spirals", samples=400, steps=100, train_batch=64, record_every=100)


@pytest.mark.parametrize("norm", ["layer", "rms"])
def test_plain_100_layer_tanh_stays_at_chance_where_a_pre_norm_residual_net_learns(norm):
    plain = train(CLASSIC, CLASSIC_TRAINING)
    residual = train(CLASSIC.replace(residual="pre", norm=norm, branch_scale="1/sqrt(L)"), CLASSIC_TRAINING)
    chance = chance_of(Setup.of(CLASSIC, CLASSIC_TRAINING).data).loss
    assert plain.status == "not learning"
    assert plain.last_probe.loss > 0.95 * chance and plain.last_probe.accuracy < 0.65
    assert residual.status == "healthy"
    assert residual.last_probe.loss < 0.05 * chance and residual.last_probe.accuracy > 0.95
    # why, at step 1: the plain net's signal fades with depth (measured: std 0.29 after layer 1, 0.023
    # after layer 100, its inputs no longer told apart); the residual stream keeps its size (0.33, 0.62)
    plain_std, residual_std = plain.steps[0].probe.activation_std, residual.steps[0].probe.activation_std
    assert plain_std[-1] < 0.2 * plain_std[0]
    assert residual_std[-1] > residual_std[0]


# --- the command line and compare --------------------------------------------------------------

def test_cli_trains_a_residual_network(capsys):
    argv = ["train", "--residual", "pre", "--branch-scale", "1/sqrt(L)", "--norm", "layer", "--layers", "4",
            "--width", "16", "--steps", "60", "--samples", "200", "--every", "30"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 pre-norm residual blocks x 16" in out and "alpha 1/sqrt(L)" in out and "healthy" in out
    assert main([*argv, "--json", "--branch-scale", "0"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["config"]["residual"] == "pre" and record["config"]["branch_scale"] == "0"
    step = record["steps"][-1]
    assert len(step["grad_data"]) == len(step["update_data"]) == len(step["alpha"]) + 1 == 5
    assert len(step["probe"]["activation_std"]) == 4 and record["status"] in ("healthy", "too early")


def test_compare_trains_a_plain_and_a_residual_network_side_by_side():
    training = TrainConfig(samples=200, steps=30, train_batch=50)
    result = compare([SimConfig(layers=6, width=16), SimConfig(layers=6, width=16, residual="pre", norm="rms")],
                     seeds=(0, 1), training=training)
    plain, residual = result.runs
    assert residual.config.residual == "pre" and residual.loss is not None
    assert residual.loss.median.shape == (30,) and np.isfinite(residual.loss.median).all()
    assert residual.data_digest == plain.data_digest
    assert len(residual.activation_std.median) == 6


def test_cli_compare_train_with_residual_blocks(capsys):
    assert main(["compare", "--init", "kaiming_normal,xavier_normal", "--residual", "post", "--norm", "layer",
                 "--layers", "3", "--width", "8", "--batch", "16", "--seeds", "1", "--train", "--steps", "5",
                 "--samples", "64", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [run["config"]["residual"] for run in record["runs"]] == ["post", "post"]
    assert all(len(run["steps"]) == 5 for run in record["runs"])


# --- memory ------------------------------------------------------------------------------------

def test_the_estimate_counts_blocks_and_refuses_what_does_not_fit():
    training = TrainConfig(samples=1000, steps=10).validated()
    plain = memory.training(SimConfig(layers=20, width=512).validated(), training)
    blocks = memory.training(SimConfig(layers=20, width=512, residual="pre").validated(), training)
    assert 1.8 < blocks.bytes / plain.bytes < 2.3 and 1.8 < blocks.flops / plain.flops < 2.2
    expanded = memory.training(SimConfig(layers=20, width=512, residual="pre", expansion=4).validated(), training)
    assert expanded.bytes > 3 * blocks.bytes
    with pytest.raises(Exception, match="memory"):
        Setup.of(SimConfig(layers=1000, width=4096, residual="pre"), training)


# test_memory.py's script that measures a run's peak RSS in a fresh process, read from its source
