"""Subnormals: counted per layer before anything is done to them, flushed to zero by default (so no
matrix multiply reads one), kept exactly with ``subnormals = "keep"``, and a run that never
underflows is the same bit for bit either way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from initsim.cli import main
from initsim.engine import ConfigError, SimConfig, initial_weights, simulate
from initsim.engine.export import stats_csv, stats_json
from initsim.engine.network import Network, backward, flush_subnormals, hidden_forward
from initsim.engine.products import matmul, scaled_matmul
from initsim.engine.stats import summarize

# tanh nets whose signal (forward) and gradient (backward) pass below the smallest normal well
# before their last layer: a weight std of 0.001 at width 64 shrinks the signal ~100x a layer.
VANISHING = {
    "float32": SimConfig(layers=24, width=64, batch=48, activation="tanh", init="normal",
                         init_params={"std": 1e-3}, seed=3),
    "float64": SimConfig(layers=90, width=32, batch=24, activation="tanh", init="normal",
                         init_params={"std": 1e-5}, dtype="float64", seed=3),
}


def independent_count(array: np.ndarray) -> int:
    return int(np.count_nonzero((np.abs(array) < np.finfo(array.dtype).tiny) & (array != 0)))


def independent_flush(array: np.ndarray) -> np.ndarray:
    """A copy with every value below the smallest normal a zero of its sign."""
    return np.where(np.abs(array) < np.finfo(array.dtype).tiny, np.copysign(array.dtype.type(0), array), array)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flush_subnormals_counts_them_and_zeroes_only_them_keeping_their_sign(dtype):
    info = np.finfo(dtype)
    values = np.array([0.0, -0.0, info.tiny, -info.tiny, info.smallest_subnormal, -info.smallest_subnormal,
                       info.tiny * (1 - info.eps), -info.tiny / 3, 1.0, -2.5, info.max, np.inf, -np.inf,
                       np.nan], dtype=dtype)
    kept = values.copy()
    assert flush_subnormals(kept, flush=False) == independent_count(values) == 4
    np.testing.assert_array_equal(kept, values)
    flushed = values.copy()
    assert flush_subnormals(flushed, flush=True) == 4
    expected = independent_flush(values)
    np.testing.assert_array_equal(flushed, expected)
    assert np.array_equal(np.signbit(flushed), np.signbit(values))
    assert independent_count(flushed) == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flush_subnormals_finds_them_in_every_block_of_a_large_array(dtype):
    # 3,001 rows of 50: more than BLOCK_VALUES values, so several blocks, the last a short one.
    rng = np.random.default_rng(5)
    values = rng.standard_normal((3001, 50)).astype(dtype)
    spots = rng.choice(values.size, 500, replace=False)
    values.reshape(-1)[spots] *= np.finfo(dtype).tiny / 7  # subnormal, or 0 where the product underflows
    values[-1, -1] = -np.finfo(dtype).smallest_subnormal
    flushed = values.copy()
    assert flush_subnormals(flushed, flush=True) == independent_count(values) > 400
    np.testing.assert_array_equal(flushed, independent_flush(values))


def exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b with no product underflowing: a and b scaled by the powers of two that bring their
    largest values to 1 (every value, not a sample), multiplied, and the result scaled back."""
    ea, eb = (int(np.frexp(np.abs(m).max())[1]) for m in (a, b))
    return np.ldexp(np.ldexp(a, -ea) @ np.ldexp(b, -eb), ea + eb)


def reference_run(config: SimConfig, flush: bool):
    """The simulation of a bias-free tanh net without normalization in plain numpy: per layer the
    forward (input, pre, post, subnormal count) and, from the last layer down, (dL/dh, subnormal
    count).
    With flush, the matrix products are those of `exact_product`; else numpy's, IEEE's gradual
    underflow and all."""
    product = exact_product if flush else np.matmul
    streams = Network.of(config).streams()
    dtype = np.dtype(config.dtype)
    x = streams[0].standard_normal((config.batch, config.width)).astype(dtype)
    grad = streams[-1].standard_normal((config.batch, config.width)).astype(dtype)
    weights = [w for w, _ in initial_weights(config)]
    forward, outputs = [], []
    for w in weights:
        x_in, h = x, product(x, w)
        count = independent_count(h)
        if flush:
            h = independent_flush(h)
        y = np.tanh(h)
        count += independent_count(y)
        if flush:
            y = independent_flush(y)
        forward.append((x_in, h, y, count))
        outputs.append(y)
        x = y
    backward_steps = []
    for w, y in zip(reversed(weights), reversed(outputs)):
        grad_h = grad * (1 - y * y)
        count = independent_count(grad_h)
        if flush:
            grad_h = independent_flush(grad_h)
        backward_steps.append((grad_h, count))
        grad = product(grad_h, w.T)
    return forward, backward_steps[::-1]


def same_stats(a, b) -> bool:
    return (a.mean, a.std, a.min, a.max, a.nonfinite) == (b.mean, b.std, b.min, b.max, b.nonfinite) and \
        np.array_equal(a.histogram.counts, b.histogram.counts)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["flush", "keep"])
def test_each_layers_count_and_values_match_an_independent_numpy_run(dtype, mode):
    config = VANISHING[dtype].replace(subnormals=mode)
    result = simulate(config)
    forward, backward_steps = reference_run(config, flush=mode == "flush")
    counts = [f.subnormal for f in result.forward]
    grad_counts = [b.subnormal for b in result.backward]
    assert counts == [count for *_, count in forward]
    assert grad_counts == [count for _, count in backward_steps]
    # The nets underflow part of the way: some layers have none, some have them, forward and back.
    assert counts[0] == 0 and max(counts) > 0 and grad_counts[-1] == 0 and max(grad_counts) > 0
    for event, (_, h, y, _) in zip(result.forward, forward):
        assert same_stats(event.pre, summarize(h, config.bins)) and same_stats(event.post, summarize(y, config.bins))
    for event, (grad_h, _) in zip(result.backward, backward_steps):
        assert same_stats(event.grad, summarize(grad_h, config.bins))


def test_with_flush_a_matrix_product_loses_none_of_its_products_to_underflow():
    """Values whose products fall below float32's smallest subnormal: numpy's product loses them
    to IEEE's gradual underflow, the flushed run's keeps them to float32's precision, in a
    power-of-two scale that `matmul` undoes (to subnormals or zeros, the caller's to flush)."""
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((64, 48)) * 1e-25).astype(np.float32)
    b = (rng.standard_normal((48, 32)) * 1e-22).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(exact).max() < np.finfo(np.float32).smallest_subnormal
    product, exponent = scaled_matmul(a, b, flush=True)
    np.testing.assert_allclose(np.ldexp(product.astype(np.float64), exponent), exact, rtol=0,
                               atol=1e-6 * np.abs(exact).max())
    assert not matmul(a, b, flush=True).any() and not (a @ b).any()  # in float32's scale: all lost
    kept, none = scaled_matmul(a, b, flush=False)
    assert none == 0 and np.array_equal(kept, a @ b)


@pytest.mark.parametrize("value", [1.0, 1e30, np.inf, np.nan])
def test_a_matrix_product_that_cannot_underflow_or_holds_inf_or_nan_is_numpys_bit_for_bit(value):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((40, 30)).astype(np.float32), rng.standard_normal((30, 20)).astype(np.float32)
    a[3, 4] = value
    with np.errstate(invalid="ignore"):  # inf * 0
        product, exponent = scaled_matmul(a, b, flush=True)
        assert exponent == 0 and np.array_equal(product, a @ b, equal_nan=True)


def test_the_weight_gradients_std_is_that_of_the_exact_product_where_float32_loses_it():
    """In the vanishing float32 net dL/dW = x_in.T @ dL/dh underflows in float32 at every layer
    where both are nonzero; the flushed run reports the std of the product itself."""
    config = VANISHING["float32"]
    forward, backward_steps = reference_run(config, flush=True)
    exact = [float((x_in.astype(np.float64).T @ grad_h.astype(np.float64)).std())
             for (x_in, *_), (grad_h, _) in zip(forward, backward_steps)]
    lost = [std for std in exact if 0 < std < np.finfo(np.float32).smallest_subnormal]
    assert len(lost) > config.layers // 2
    reported = [b.weight_grad_std for b in simulate(config).backward]
    np.testing.assert_allclose(reported, exact, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flush_and_keep_agree_up_to_the_first_subnormal(dtype):
    config = VANISHING[dtype]
    flushed, kept = simulate(config), simulate(config.replace(subnormals="keep"))
    first = next(f.index for f in kept.forward if f.subnormal)
    assert next(f.index for f in flushed.forward if f.subnormal) == first
    for a, b in zip(flushed.forward[:first - 1], kept.forward[:first - 1]):
        assert same_stats(a.pre, b.pre) and same_stats(a.post, b.post)
    # At that layer tanh keeps a subnormal pre-activation subnormal: counted in pre and post when
    # kept, in pre only when flushed (its output is then 0).
    assert 0 < flushed.forward[first - 1].subnormal < kept.forward[first - 1].subnormal
    # From there on the flushed run holds zeros where the exact one holds subnormals.
    assert any(a.post.std == 0 < b.post.std for a, b in zip(flushed.forward, kept.forward))


@pytest.mark.parametrize("config", [
    SimConfig(layers=12, width=48, batch=40, activation="tanh", init="xavier_normal"),
    SimConfig(layers=10, width=40, batch=32, activation="relu", init="kaiming_normal", bias_init="normal",
              bias_params={"std": 0.1}, norm="batch", dtype="float64"),
    SimConfig(layers=8, width=32, batch=24, activation="gelu", init="lsuv", norm="layer"),
    SimConfig(layers=8, width=32, batch=24, activation="selu", init="lecun_normal", input_width=20),
], ids=["tanh", "relu-batchnorm-f64", "gelu-lsuv-layernorm", "selu"])
def test_a_run_without_underflow_is_the_same_bit_for_bit_in_both_modes(config):
    flushed, kept = simulate(config), simulate(config.replace(subnormals="keep"))
    assert all(f.subnormal == 0 for f in kept.forward) and all(b.subnormal == 0 for b in kept.backward)
    assert flushed.layer_records() == kept.layer_records()


@pytest.mark.parametrize("activation", ["tanh", "gelu", "elu"])
def test_with_flush_no_matrix_multiply_reads_a_subnormal(activation):
    """The layers' outputs (forward), dL/dh and the recomputed inputs (backward) are what the
    matrix multiplies read; gelu and elu keep u and recompute their outputs on the way back."""
    base = VANISHING["float32"].replace(activation=activation, init_params={"std": 2e-3})
    found = {}
    for mode in ("flush", "keep"):
        net = Network.of(base.replace(subnormals=mode))
        streams = net.streams()
        x0 = streams[0].standard_normal((base.batch, base.width)).astype(np.float32)
        layers = initial_weights(net.config)
        cache, read = [], []
        for y, kept, _ in hidden_forward(x0, layers, net.block):
            cache.append(kept)
            read.append(independent_count(y))
        grad = streams[-1].standard_normal((base.batch, base.width)).astype(np.float32)
        scratch = np.empty_like(grad)
        for _, grad_h, x_in, _ in backward(grad, cache, [], [w for w, _ in layers], net.block, x0, scratch):
            read.append(independent_count(grad_h) + independent_count(x_in))
        found[mode] = sum(read)
    assert found["flush"] == 0 < found["keep"]


def test_subnormals_is_validated_by_name():
    with pytest.raises(ConfigError, match="subnormals"):
        SimConfig(subnormals="ftz").validated()
    assert SimConfig().subnormals == "flush"


def test_the_json_and_the_data_exports_report_the_counts_next_to_nonfinite(capsys):
    config = VANISHING["float32"].replace(subnormals="keep")
    assert main(["simulate", "--layers", "24", "--width", "64", "--batch", "48", "--activation", "tanh",
                 "--init", "normal", "--std", "0.001", "--seed", "3", "--subnormals", "keep", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    result = simulate(config)
    assert data["config"]["subnormals"] == "keep"
    assert [layer["subnormal"] for layer in data["layers"]] == [f.subnormal for f in result.forward]
    assert [layer["grad_subnormal"] for layer in data["layers"]] == [b.subnormal for b in result.backward]
    exported = json.loads(stats_json(result))
    assert [layer["subnormal"] for layer in exported["layers"]] == [f.subnormal for f in result.forward]
    header, *rows = stats_csv(result).splitlines()
    columns = header.split(",")
    assert columns.index("subnormal") == columns.index("grad_nonfinite") + 1
    assert [int(row.split(",")[columns.index("grad_subnormal")]) for row in rows] == \
        [b.subnormal for b in result.backward]
