"""Residual networks (issue 13): the block x_l = x_{l-1} + alpha F(norm(x_{l-1})) (pre-norm) or
norm(x_{l-1} + alpha F(x_{l-1})) (post-norm), F(u) = phi(u W1 + b1) W2 + b2, against a reference
written here from that definition, forward and backward; its backward pass against finite
differences; what the stream does (growth without a norm and with pre-norm, post-norm's std 1,
alpha = 0, Fixup); the config's validation, files, CLI and weight export."""

from __future__ import annotations

import importlib
import json
import math
import threading

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import ConfigError, SimConfig, initial_blocks, initial_weights, simulate, simulate_stream
from initsim.engine.activations import get_activation
from initsim.engine.configfile import config_from_toml, config_to_toml
from initsim.engine.diagnosis import diagnose
from initsim.engine.export import export_weights, result_record, stats_csv
from initsim.engine.network import NORM_EPS, Network, block_backward, block_forward
from initsim.engine.simulate import _input
from initsim.engine.stats import summarize
from initsim.engine.theory import config_prediction

from numeric import numeric_gradient

simulate_module = importlib.import_module("initsim.engine.simulate")


# --- a reference written from the block's definition, in float64 ------------------------------

def reference_norm(h: np.ndarray, norm: str) -> np.ndarray:
    if norm == "none":
        return h
    axis = 0 if norm == "batch" else 1
    centred = h if norm == "rms" else h - h.mean(axis=axis, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=axis, keepdims=True) + NORM_EPS)


class Reference:
    """A residual network's forward pass, every array in float64, nothing shared with the engine
    but the activation's formula and the weights."""

    def __init__(self, config: SimConfig, x0: np.ndarray, weights) -> None:
        self.config = config.validated()
        self.act = get_activation(self.config.activation)
        self.params = self.config.activation_params
        self.x0 = np.asarray(x0, np.float64)
        self.weights = weights

    def forward(self, x0: np.ndarray | None = None):
        """Per block: (a = u W1 + b1, alpha F, x_l); the stream x_0 first."""
        c, alpha = self.config, self.config.branch_alpha
        x = self.x0 if x0 is None else x0
        if self.weights.projection is not None:
            p, pb = (np.asarray(v, np.float64) for v in self.weights.projection)
            x = x @ p + pb
        stream, blocks = [x], []
        for weights in self.weights.blocks:
            w1, b1, w2, b2 = (np.asarray(v, np.float64) for v in (weights.w1, weights.b1, weights.w2, weights.b2))
            u = reference_norm(x, c.norm) if c.residual == "pre" else x
            a = u @ w1 + b1
            branch = alpha * (self.act.forward(a.copy(), self.params) @ w2 + b2)
            x = x + branch
            if c.residual == "post":
                x = reference_norm(x, c.norm)
            blocks.append((a, branch, x))
            stream.append(x)
        return stream, blocks


def tiny(**changes) -> SimConfig:
    return SimConfig(layers=3, width=5, batch=6, activation="tanh", init="xavier_normal", bias_init="normal",
                     dtype="float64", seed=7, residual="pre").replace(**changes)


def input_of(config: SimConfig) -> np.ndarray:
    net = Network.of(config)
    return _input(net.config, net.streams()[0], net.dtype)


# --- forward and backward against the reference -----------------------------------------------

FORMS = [("pre", "none"), ("pre", "layer"), ("pre", "rms"), ("pre", "batch"),
         ("post", "none"), ("post", "layer"), ("post", "rms"), ("post", "batch")]


@pytest.mark.parametrize("form,norm", FORMS)
def test_the_simulation_reports_the_reference_statistics(form, norm):
    config = SimConfig(layers=4, width=24, input_width=10, batch=12, activation="gelu", residual=form, norm=norm,
                       branch_scale="1/sqrt(2L)", expansion=3, bias_init="normal", dtype="float64", seed=3)
    result = simulate(config)
    weights = initial_blocks(config)
    assert weights.projection is not None and weights.projection[0].shape == (10, 24)
    assert [b.w1.shape for b in weights.blocks] == [(24, 72)] * 4 and weights.blocks[0].w2.shape == (72, 24)
    _, blocks = Reference(config, input_of(config), weights).forward()
    for event, (a, branch, x) in zip(result.forward, blocks):
        assert event.pre.std == pytest.approx(float(a.std()), rel=1e-9)
        assert event.pre.mean == pytest.approx(float(a.mean()), rel=1e-7, abs=1e-12)
        assert event.post.std == pytest.approx(float(x.std()), rel=1e-9)
        assert event.post.max == pytest.approx(float(x.max()), rel=1e-12)
        assert event.branch_std == pytest.approx(float(branch.std()), rel=1e-9)
        assert event.weight_std == pytest.approx(float(weights.blocks[event.index - 1].w1.std()), rel=1e-9)


def reference_gradients(config: SimConfig, x0: np.ndarray, weights, g: np.ndarray):
    """dL/dx_l for l = L..0 and dL/dW1 of each block for L = sum(g x_L), by the reference's own
    backpropagation, written out per form and norm (independent of network.py's)."""
    c = config.validated()
    alpha, act, params = c.branch_alpha, get_activation(c.activation), c.activation_params
    stream, blocks = Reference(config, x0, weights).forward()

    def norm_backward(grad_u: np.ndarray, h: np.ndarray) -> np.ndarray:
        if c.norm == "none":
            return grad_u
        axis = 0 if c.norm == "batch" else 1
        centred = h if c.norm == "rms" else h - h.mean(axis=axis, keepdims=True)
        r = 1 / np.sqrt((centred ** 2).mean(axis=axis, keepdims=True) + NORM_EPS)
        u = centred * r
        grad = grad_u - u * (grad_u * u).mean(axis=axis, keepdims=True)
        if c.norm != "rms":
            grad = grad - grad_u.mean(axis=axis, keepdims=True)
        return grad * r

    grads, weight_grads = {len(blocks): g}, {}
    grad = g
    for l in range(len(blocks), 0, -1):
        w = weights.blocks[l - 1]
        w1, w2 = np.asarray(w.w1, np.float64), np.asarray(w.w2, np.float64)
        x_prev = stream[l - 1]
        a = blocks[l - 1][0]
        if c.residual == "post":
            s = x_prev + blocks[l - 1][1]
            grad_s = norm_backward(grad, s)
            u = x_prev
        else:
            grad_s = grad
            u = reference_norm(x_prev, c.norm)
        grad_a = (alpha * grad_s @ w2.T) * act.derivative(a, params)
        weight_grads[l] = u.T @ grad_a
        grad_u = grad_a @ w1.T
        grad = grad_s + (norm_backward(grad_u, x_prev) if c.residual == "pre" else grad_u)
        grads[l - 1] = grad
    return grads, weight_grads


@pytest.mark.parametrize("form,norm", FORMS)
def test_the_backward_pass_matches_the_reference(form, norm):
    config = SimConfig(layers=3, width=16, batch=10, activation="silu", residual=form, norm=norm, expansion=2,
                       branch_scale="0.7", bias_init="normal", dtype="float64", seed=5)
    result = simulate(config)
    net = Network.of(config)
    g = net.streams()[-1].standard_normal((10, 16))
    grads, weight_grads = reference_gradients(config, input_of(config), initial_blocks(config), g)
    for event in result.backward:
        assert event.grad.std == pytest.approx(float(grads[event.index].std()), rel=1e-9)
        assert event.weight_grad_std == pytest.approx(float(weight_grads[event.index].std()), rel=1e-9)




@pytest.mark.parametrize("form,norm", FORMS)
@pytest.mark.parametrize("changes", [{}, {"expansion": 2, "branch_scale": "1/sqrt(L)", "activation": "gelu"}])
def test_the_engine_blocks_backward_matches_finite_differences(form, norm, changes):
    """network.block_forward / block_backward, chained over a tiny net: dL/dx_0 and every dL/dW1
    against central differences of the reference's loss."""
    config = tiny(**changes).replace(residual=form, norm=norm)
    net = Network.of(config)
    c, alpha = net.config, net.config.branch_alpha
    weights = initial_blocks(config)
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((6, 5))
    g = rng.standard_normal((6, 5))
    hidden = (6, c.hidden_width)
    x, steps = x0, []
    for w in weights.blocks:
        step = block_forward(x, w, net.block, net.branch, form, alpha, np.empty(hidden), np.empty(hidden),
                             np.empty((6, 5)))
        steps.append(step)
        x = step.out
    grad, weight_grads = g, {}
    for l in range(3, 0, -1):
        back = block_backward(grad, steps[l - 1].cache, weights.blocks[l - 1], net.block, net.branch, alpha,
                              np.empty((6, 5)), np.empty(hidden), np.empty((6, 5)))
        weight_grads[l] = back.branch_in.T @ back.grad_pre
        grad = back.grad_in.copy()

    reference = Reference(config, x0, weights)

    def loss() -> float:
        return float((g * reference.forward()[0][-1]).sum())

    np.testing.assert_allclose(grad, numeric_gradient(loss, reference.x0), rtol=1e-6, atol=1e-8)
    for l, block in enumerate(weights.blocks, 1):
        np.testing.assert_allclose(weight_grads[l], numeric_gradient(loss, block.w1), rtol=1e-6, atol=1e-8)


# --- what the stream does --------------------------------------------------------------------

def stream_std(config: SimConfig) -> np.ndarray:
    return np.array([event.post.std for event in simulate(config).forward])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pre_norm_std_grows_like_the_root_of_depth_and_without_a_norm_exponentially(seed):
    """He + ReLU, alpha = 1: with pre-norm (layer norm) each block adds Var(F) = 2 E[relu(a)^2]
    = 2 (a ~ N(0, 2)) to a unit-variance input: Var(x_l) = 1 + 2 l. Without a norm the branch sees
    the stream itself and Var(F) = 2 Var(x_{l-1}): Var(x_l) = 3 Var(x_{l-1})."""
    base = SimConfig(layers=30, width=512, batch=256, activation="relu", init="kaiming_normal",
                     init_params={"nonlinearity": "relu"}, residual="pre", seed=seed)
    blocks = np.arange(1, 31)
    pre_norm = stream_std(base.replace(norm="layer"))
    np.testing.assert_allclose(pre_norm, np.sqrt(1 + 2 * blocks), rtol=0.12)  # measured within 5.3%, seeds 0-5
    assert pre_norm[-1] / pre_norm[6] == pytest.approx(math.sqrt(61 / 15), rel=0.1)  # sqrt(L), not e^L
    plain = stream_std(base.replace(layers=12))
    # per block a factor sqrt(3) in std: the slope of ln std (measured within 4% over seeds 0-7)
    slope = np.polyfit(np.arange(1, 13), np.log(plain), 1)[0]
    assert slope == pytest.approx(math.log(3) / 2, rel=0.08)
    assert plain[-1] > 100 * plain[0]


def test_post_norm_keeps_the_stream_at_std_one():
    result = simulate(SimConfig(layers=20, width=256, batch=128, residual="post", norm="layer", seed=1))
    for event in result.forward:
        assert event.post.std == pytest.approx(1.0, abs=1e-4)
        assert abs(event.post.mean) < 1e-5
    rms = simulate(SimConfig(layers=5, width=256, batch=128, residual="post", norm="rms", dtype="float64"))
    for event in rms.forward:  # rms sets each sample's mean square to 1, not its variance
        assert event.post.std ** 2 + event.post.mean ** 2 == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_alpha_zero_passes_the_input_through_exactly(norm):
    config = SimConfig(layers=8, width=32, batch=16, residual="pre", norm=norm, branch_scale="0", seed=4)
    result = simulate(config)
    x0 = input_of(config)
    expected = summarize(x0, config.bins)
    last = result.forward[-1]
    assert (last.post.mean, last.post.std, last.post.min, last.post.max) == \
        (expected.mean, expected.std, expected.min, expected.max)
    assert last.post.histogram.counts.tolist() == expected.histogram.counts.tolist()
    assert all(event.branch_std == 0.0 for event in result.forward)
    # the gradient passes the blocks unchanged, and no W1 gets any
    assert len({event.grad.std for event in result.backward}) == 1
    assert all(event.weight_grad_std == 0.0 for event in result.backward)


def test_fixup_zeroes_w2_and_scales_w1():
    config = SimConfig(layers=9, width=32, batch=16, residual="pre", expansion=2, fixup=True, seed=6)
    fixup = initial_blocks(config)
    usual = initial_blocks(config.replace(fixup=False))
    for block, plain in zip(fixup.blocks, usual.blocks):
        assert not block.w2.any() and block.w2.shape == (64, 32)
        np.testing.assert_array_equal(block.w1, plain.w1 * np.float32(9 ** -0.5))
    result = simulate(config)  # zero biases: F = 0, the stream stays the input
    assert all(event.branch_std == 0.0 for event in result.forward)
    assert result.forward[-1].post.std == summarize(input_of(config), 64).std
    with pytest.raises(ConfigError, match="^fixup: .*norm none"):
        config.replace(norm="layer").validated()


def test_a_seed_gives_the_same_weights_and_numbers_every_time():
    config = SimConfig(layers=4, width=16, input_width=6, batch=8, residual="post", norm="rms", expansion=2, seed=9)
    first, second = initial_blocks(config), initial_blocks(config)
    for a, b in zip(first.blocks, second.blocks):
        for name in ("w1", "b1", "w2", "b2"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(first.projection[0], second.projection[0])
    assert result_record(simulate(config))["layers"] == result_record(simulate(config))["layers"]
    # Block l draws from plain layer l's stream: with expansion 1, W1 is the plain net's W_l.
    plain = initial_weights(SimConfig(layers=4, width=16, seed=9))
    block = initial_blocks(SimConfig(layers=4, width=16, seed=9, residual="pre"))
    for (w, _), weights in zip(plain, block.blocks):
        np.testing.assert_array_equal(w, weights.w1)


@pytest.mark.parametrize("draw_during_gemm", [True, False])
def test_the_side_thread_gives_the_same_numbers(draw_during_gemm, monkeypatch):
    config = SimConfig(layers=6, width=40, batch=24, residual="pre", norm="layer", expansion=2, seed=2)
    expected = result_record(simulate(config))["layers"]
    monkeypatch.setattr(simulate_module, "_blas_leaves_a_core", lambda: draw_during_gemm)
    assert result_record(simulate(config))["layers"] == expected


def side_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("initsim-side")]


@pytest.mark.parametrize("stop_after", [1, 5, 9])
def test_a_stopped_or_dropped_run_leaves_no_thread(stop_after):
    config = SimConfig(layers=6, width=32, batch=16, residual="post", norm="layer")
    seen = []
    for event in simulate_stream(config, lambda: len(seen) >= stop_after):
        seen.append(event)
    assert len(seen) == stop_after  # asked after each event
    assert not side_threads()
    stream = simulate_stream(config)
    for _ in range(stop_after):
        next(stream)
    stream.close()
    assert not side_threads()


def test_the_stream_is_forward_then_backward_by_block():
    config = SimConfig(layers=4, width=16, batch=8, residual="pre")
    steps = [(type(e).__name__, e.index) for e in simulate_stream(config)]
    assert steps == [("ForwardEvent", i) for i in (1, 2, 3, 4)] + [("BackwardEvent", i) for i in (4, 3, 2, 1)]


# --- plain networks are untouched -----------------------------------------------------------

def test_block_options_of_a_plain_network_change_nothing():
    plain = SimConfig(layers=5, width=32, batch=16, activation="tanh", init="xavier_normal", norm="batch", seed=3)
    leftovers = plain.replace(branch_scale="1/sqrt(L)", expansion=4, fixup=True)
    assert leftovers.validated() == plain.validated()
    assert result_record(simulate(leftovers))["layers"] == result_record(simulate(plain))["layers"]
    assert "branch_std" not in result_record(simulate(plain))["layers"][0]


# --- theory, diagnosis, exports ---------------------------------------------------------------

def test_the_theory_reaches_the_events_the_json_and_the_csv():
    # (test_residual_theory.py tests the values; here, that each reaches where it is read)
    config = SimConfig(layers=5, width=32, batch=16, residual="pre", norm="rms", input_width=8).validated()
    prediction = config_prediction(config)
    assert prediction.q_star is prediction.chi1 is prediction.jacobian_mean_square is None
    result = simulate(config)
    record = json.loads(json.dumps(result_record(result)))
    for layer, f, b, pre, post, branch, grad in zip(record["layers"], result.forward, result.backward,
                                                    prediction.pre_std, prediction.post_std,
                                                    prediction.branch_std, prediction.grad_std):
        assert None not in (pre, post, branch, grad)
        assert (f.theory_pre_std, f.theory_post_std, f.theory_branch_std, b.theory_grad_std) == (pre, post, branch, grad)
        assert (layer["theory_pre_std"], layer["theory_post_std"], layer["theory_branch_std"],
                layer["theory_grad_std"]) == (pre, post, branch, grad)
    assert record["theory"]["q_star"] is None
    assert isinstance(diagnose(result.config, result.forward, result.backward), list)
    assert {"branch_std", "theory_branch_std", "theory_post_std"} <= set(stats_csv(result).splitlines()[0].split(","))


def test_diagnosis_sees_the_exploding_stream():
    result = simulate(SimConfig(layers=30, width=64, batch=32, residual="pre", seed=1))
    kinds = {finding.kind for finding in diagnose(result.config, result.forward, result.backward)}
    assert "exploded" in kinds


def test_weights_export_is_per_block(tmp_path):
    config = SimConfig(layers=3, width=8, input_width=5, batch=4, residual="pre", expansion=2, seed=1)
    path = export_weights(config, tmp_path / "w.npz")
    with np.load(path) as data:
        arrays = dict(data)
    assert sorted(arrays) == sorted(["projection.W", "projection.b", "config_json"]
                                    + [f"block{l}.{n}" for l in (1, 2, 3) for n in ("W1", "b1", "W2", "b2")])
    weights = initial_blocks(config)
    np.testing.assert_array_equal(arrays["block2.W2"], weights.blocks[1].w2)
    assert arrays["block1.W1"].shape == (8, 16) and arrays["projection.W"].shape == (5, 8)
    assert json.loads(str(arrays["config_json"]))["residual"] == "pre"
    with pytest.raises(ConfigError, match="^residual: .*initial_blocks"):
        initial_weights(config)


# --- validation, files and the CLI ------------------------------------------------------------

@pytest.mark.parametrize("changes,message", [
    ({"expansion": 0}, "^expansion: got 0, expected an integer in \\[1, 16\\]$"),
    ({"expansion": -2}, "^expansion: got -2"),
    ({"branch_scale": "1/sqrt(K)"}, "^branch_scale: got '1/sqrt\\(K\\)', expected a finite number or one of"),
    ({"branch_scale": "nan"}, "^branch_scale: "),
    ({"branch_scale": True}, "^branch_scale: "),
    ({"fixup": True, "norm": "batch"}, "^fixup: Fixup replaces the normalization"),
    ({"fixup": "yes"}, "^fixup: got 'yes', expected true or false$"),
    ({"residual": "both"}, "^residual: unknown name 'both'"),
    ({"init": "lsuv"}, "^init: lsuv is not available for residual networks"),
])
def test_bad_block_options_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError, match=message) as error:
        SimConfig(residual="pre").replace(**changes).validated()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("given,canonical,alpha", [
    ("1", "1", 1.0), ("0", "0", 0.0), (0.5, "0.5", 0.5), ("2.50", "2.5", 2.5), ("1e-3", "0.001", 1e-3),
    ("1/sqrt(L)", "1/sqrt(L)", 1 / math.sqrt(8)), ("1 / sqrt(2l)", "1/sqrt(2L)", 1 / math.sqrt(16)),
])
def test_branch_scales_are_kept_as_canonical_text(given, canonical, alpha):
    config = SimConfig(layers=8, residual="post", branch_scale=given).validated()
    assert config.branch_scale == canonical and config.branch_alpha == pytest.approx(alpha, rel=1e-15)


def test_a_residual_config_survives_a_file():
    config = SimConfig(layers=6, residual="pre", branch_scale="1/sqrt(2L)", expansion=4, fixup=True).validated()
    assert config_from_toml(config_to_toml(config)).validated() == config
    assert SimConfig.from_dict(json.loads(json.dumps(config.to_dict()))).validated() == config


def run_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_simulate_json_of_blocks(capsys):
    data = run_json(capsys, "simulate", "--layers", "3", "--width", "16", "--batch", "8", "--residual", "pre",
                    "--norm", "layer", "--branch-scale", "1/sqrt(L)", "--expansion", "2", "--json")
    assert {k: data["config"][k] for k in ("residual", "branch_scale", "expansion", "fixup")} == \
        {"residual": "pre", "branch_scale": "1/sqrt(L)", "expansion": 2, "fixup": False}
    layer = data["layers"][0]
    assert {"pre_std", "post_std", "grad_std", "branch_std", "weight_grad_std"} <= set(layer)
    assert layer["branch_std"] > 0 and layer["theory_pre_std"] == pytest.approx(math.sqrt(2), rel=1e-4)
    fixup = run_json(capsys, "simulate", "--layers", "3", "--width", "16", "--batch", "8", "--residual", "post",
                     "--fixup", "--json")
    assert fixup["config"]["fixup"] is True and fixup["layers"][0]["branch_std"] == 0.0


@pytest.mark.parametrize("argv,message", [
    (["--fixup"], "--fixup: only for a residual network (give --residual pre or post)"),
    (["--expansion", "4", "--branch-scale", "0"], "--branch-scale, --expansion: only for a residual network"),
    (["--residual", "pre", "--expansion", "0"], "argument --expansion: got 0, expected an integer in [1, 16]"),
    (["--residual", "pre", "--branch-scale", "half"], "argument --branch-scale: got 'half'"),
    (["--residual", "pre", "--fixup", "--norm", "rms"], "fixup: Fixup replaces the normalization"),
    (["--residual", "sideways"], "argument --residual: unknown name 'sideways'"),
])
def test_cli_refuses_bad_block_flags_in_one_line(capsys, argv, message):
    assert main(["simulate", "--layers", "2", "--width", "8", "--batch", "4", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_simulate_table_and_weights(capsys, tmp_path):
    assert main(["simulate", "--layers", "2", "--width", "8", "--batch", "4", "--residual", "pre"]) == 0
    out = capsys.readouterr().out
    assert "pre-norm residual blocks, alpha 1" in out and "branch std" in out and "theory x" in out
    assert "mean field: per block, W1's sigma_w^2 = 2" in out
    assert main(["simulate", "--layers", "2", "--width", "8", "--batch", "4", "--residual", "pre",
                 "--init", "constant"]) == 0
    assert "mean field: no prediction for these blocks" in capsys.readouterr().out
    assert main(["weights", "--layers", "2", "--width", "8", "--residual", "post", "--out",
                 str(tmp_path / "w.npz")]) == 0
    assert "wrote 2 blocks" in capsys.readouterr().out
    with np.load(tmp_path / "w.npz") as data:
        assert "block2.W2" in data
