"""The engine's overlapped work (the next layer's weights drawn on a side thread while the current
layer runs) gives the same numbers, bit for bit, as a plain loop that does everything in series, and
leaves no thread behind, whether the run ends, is stopped or is dropped half-way."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
import threading
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from initsim.engine import SimConfig, initial_weights, simulate, simulate_stream
from initsim.engine.network import Network, backward
from initsim.engine.products import linear, scaled_matmul
from initsim.engine.simulate import _fractions, _input
from initsim.engine.stats import sample_geometry, std_of, summarize

# The module, not the function of the same name that initsim.engine exports.
simulate_module = importlib.import_module("initsim.engine.simulate")

CONFIGS = {
    "relu": SimConfig(layers=7, width=48, batch=40, activation="relu", seed=1),
    "tanh xavier float64": SimConfig(layers=6, width=40, batch=32, activation="tanh",
                                     init="xavier_normal", dtype="float64", seed=2),
    "gelu orthogonal": SimConfig(layers=6, width=48, batch=24, activation="gelu", init="orthogonal",
                                 input_width=20, seed=3),
    "lsuv": SimConfig(layers=6, width=32, batch=64, activation="tanh", init="lsuv", seed=4),
    "batch norm": SimConfig(layers=5, width=32, batch=40, activation="relu", norm="batch",
                            bias_init="pytorch_linear", seed=5),
    "layer norm elu": SimConfig(layers=5, width=36, batch=20, activation="elu", norm="layer", seed=6),
    "vanishing flush": SimConfig(layers=20, width=64, batch=48, activation="tanh", init="normal",
                                 init_params={"std": 1e-3}, seed=3),
    "vanishing keep": SimConfig(layers=20, width=64, batch=48, activation="tanh", init="normal",
                                init_params={"std": 1e-3}, subnormals="keep", seed=3),
    "vanishing float64 keep": SimConfig(layers=80, width=32, batch=24, activation="tanh",
                                        init="normal", init_params={"std": 1e-5}, dtype="float64",
                                        subnormals="keep", seed=3),
}


def serial_records(config: SimConfig) -> list[dict]:
    """The run's per-layer numbers from a loop doing one thing at a time: each layer's weights
    drawn when the layer is reached, then its forward pass and statistics; then the backward pass."""
    net = Network.of(config)
    c, block, dtype = net.config, net.block, net.dtype
    streams = net.streams()
    x0 = _input(c, streams[0], dtype)
    weights, cache, inv_stds, forward = [], [], [], []
    x = x0
    with np.errstate(all="ignore"):
        for layer in range(1, c.layers + 1):
            w, b = net.sample_layer(c.fans(layer), streams[layer])
            h = linear(x, w, b, flush=block.flush)
            net.scheme.fit(x, w, b, h, block.flush)
            stats = block.normalize(h)
            if stats is not None:
                inv_stds.append(stats[1])
            subnormal = block.flushed(h)
            pre, geometry = summarize(h, c.bins), sample_geometry(h)
            x, kept, post_subnormal = block.activate(h, np.empty_like(h))
            cache.append(kept)
            weights.append(w)
            forward.append((pre, summarize(x, c.bins), _fractions(net, x), std_of(w),
                            subnormal + post_subnormal, geometry))
        grad = streams[-1].standard_normal((c.batch, c.width)).astype(dtype)
        back = {}
        for layer, grad_h, x_in, subnormal in backward(grad, cache, inv_stds, weights, block, x0,
                                                       np.empty((c.batch, c.width), dtype)):
            weight_grad, exponent = scaled_matmul(x_in.T, grad_h, flush=block.flush)
            back[layer] = (summarize(grad_h, c.bins), math.ldexp(std_of(weight_grad), exponent), subnormal)
    records = []
    for layer, (pre, post, (dead, saturated), weight_std, subnormal, geometry) in enumerate(forward, 1):
        grad_stats, weight_grad_std, grad_subnormal = back[layer]
        records.append({
            "pre": pre, "post": post, "dead": dead, "saturated": saturated, "weight_std": weight_std,
            "geometry": geometry,
            "subnormal": subnormal, "grad": grad_stats, "weight_grad_std": weight_grad_std,
            "grad_subnormal": grad_subnormal})
    return records


def same_stats(a, b) -> bool:
    return (np.array_equal([a.mean, a.std, a.min, a.max], [b.mean, b.std, b.min, b.max], equal_nan=True)
            and a.nonfinite == b.nonfinite
            and np.array_equal(a.histogram.edges, b.histogram.edges)
            and np.array_equal(a.histogram.counts, b.histogram.counts))


@pytest.mark.parametrize("draw_during_gemm", [True, False], ids=["draws-during-gemm", "draws-after-gemm"])
@pytest.mark.parametrize("name", CONFIGS)
def test_simulate_gives_the_serial_loops_numbers_bit_for_bit(name, draw_during_gemm, monkeypatch):
    """Whether the side thread draws during a layer's multiply (BLAS leaves a core) or after it."""
    monkeypatch.setattr(simulate_module, "_blas_leaves_a_core", lambda: draw_during_gemm)
    result = simulate(CONFIGS[name])
    expected = serial_records(CONFIGS[name])
    assert len(result.forward) == len(result.backward) == len(expected)
    for f, b, e in zip(result.forward, result.backward, expected):
        assert same_stats(f.pre, e["pre"]) and same_stats(f.post, e["post"]), f.index
        assert (f.dead_fraction, f.saturated_fraction, f.weight_std, f.subnormal) == \
            (e["dead"], e["saturated"], e["weight_std"], e["subnormal"]), f.index
        assert np.array_equal(astuple(f.geometry), astuple(e["geometry"]), equal_nan=True), f.index
        assert same_stats(b.grad, e["grad"]), b.index
        assert np.array_equal(b.weight_grad_std, e["weight_grad_std"], equal_nan=True), b.index
        assert b.subnormal == e["grad_subnormal"], b.index


def test_the_vanishing_configs_do_underflow():
    """The pinned configs reach the subnormal range, so flush and keep are both exercised."""
    for name in ("vanishing flush", "vanishing keep", "vanishing float64 keep"):
        assert sum(e["subnormal"] for e in serial_records(CONFIGS[name])) > 0, name


def engine_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread()}


def test_a_finished_run_leaves_no_thread():
    before = engine_threads()
    simulate(CONFIGS["gelu orthogonal"])
    assert engine_threads() == before


@pytest.mark.parametrize("stop_after", [1, 3, 6, 9])
def test_a_stopped_run_leaves_no_thread(stop_after):
    """Stopped by ``should_stop`` in the forward pass and in the backward pass."""
    before = engine_threads()
    seen = []
    for event in simulate_stream(CONFIGS["relu"], should_stop=lambda: len(seen) >= stop_after):
        seen.append(event)
    assert len(seen) == stop_after
    assert engine_threads() == before


@pytest.mark.parametrize("taken", [0, 1, 4])
def test_a_run_closed_half_way_leaves_no_thread(taken):
    before = engine_threads()
    stream = simulate_stream(CONFIGS["lsuv"])
    for _ in range(taken):
        next(stream)
    stream.close()
    assert engine_threads() == before


def test_a_run_dropped_half_way_or_cut_short_by_initial_weights_leaves_no_thread():
    before = engine_threads()
    stream = simulate_stream(CONFIGS["relu"])
    next(stream)
    del stream  # the consumer lets go of it without closing it
    initial_weights(CONFIGS["lsuv"])  # stops iterating after the forward pass
    assert engine_threads() == before


def test_the_threads_that_decide_when_to_draw_are_those_numpy_multiplies_with():
    """Numpy's and scipy's wheels each bring an OpenBLAS; the theory imports scipy in the middle of
    a run. Only numpy's multiplies, so only its threads say whether a core is left for the draws.
    Numpy's is the one its core module names as a library it needs (an ELF's dynamic strings)."""
    pytest.importorskip("scipy.linalg")
    core = Path(np._core._multiarray_umath.__file__).read_bytes()
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    linked = [lib.filepath for lib in controller.lib_controllers if Path(lib.filepath).name.encode() in core]
    others = [lib.filepath for lib in controller.lib_controllers if lib.filepath not in linked]
    if len(linked) != 1 or not others:
        pytest.skip("numpy and scipy do not bring their own BLAS each here")
    for numpy_threads, other_threads in ((1, 2), (2, 1)):
        with (controller.select(filepath=linked).limit(limits=numpy_threads),
              controller.select(filepath=others).limit(limits=other_threads)):
            assert simulate_module.matmul_threads() == numpy_threads


@pytest.mark.parametrize("users", [None, "12"], ids=["unset", "the user's"])
def test_importing_initsim_tells_openblas_to_let_its_idle_threads_sleep_before_numpy_loads_it(users):
    """OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, when numpy loads it: importing initsim sets it
    (2**4 cycles of spinning, not 2**28) before numpy is imported, unless the user has set it."""
    env = {name: value for name, value in os.environ.items() if name != "OPENBLAS_THREAD_TIMEOUT"}
    if users is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = users
    code = "import os, sys, initsim; print('numpy' in sys.modules, os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", users or "4"]
