"""Sweeps on any executor: grids, streaming, stopping, the same results from threads and processes,
and the finite-width band."""

import concurrent.futures as cf
import csv
import io
import math
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from initsim.engine import ConfigError, SimConfig
from initsim.engine import sweep as W

from gated import GatedExecutor

SMALL = SimConfig(layers=8, width=32, batch=32, activation="tanh", init="xavier_normal")


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Multi-threaded BLAS slows down tenfold when other processes hold the cores (shared CI)."""
    with threadpool_limits(limits=1):
        yield


def test_grid_is_the_product_of_its_axes_last_fastest_and_moves_configs_in_the_plane():
    configs = W.grid(SMALL, {"sigma_w2": [1.0, 2.0], "sigma_b2": [0.0, 0.05, 0.1]})
    assert len(configs) == 6
    np.testing.assert_allclose([W.config_sigmas(c) for c in configs[:3]], [(1.0, 0.0), (1.0, 0.05), (1.0, 0.1)])
    assert all(c.init == "variance_scaling" for c in configs)
    mixed = W.grid(SMALL, {"init": ["he_normal", "orthogonal"], "layers": [4, 6], "seed": [0, 1]})
    assert [(c.init, c.layers, c.seed) for c in mixed[:3]] == [("he_normal", 4, 0), ("he_normal", 4, 1),
                                                              ("he_normal", 6, 0)]
    # A new scheme starts from its own defaults, not the base scheme's parameters.
    assert W.grid(SMALL.replace(init_params={"gain": 2.0}), {"init": ["lecun_normal"]})[0].init_params == {}
    with pytest.raises(ConfigError, match="axis"):
        W.grid(SMALL, {"widht": [8]})
    with pytest.raises(ConfigError, match="layers"):
        W.grid(SMALL, {"layers": [0]})


def test_fitted_chi1_recovers_a_geometric_gradient_and_skips_nonfinite_layers():
    chi = 0.8
    grad_std = [math.sqrt(chi ** (9 - l)) for l in range(10)]  # layer 1 is deepest from the output
    assert W.fitted_chi1(grad_std) == pytest.approx(chi)
    assert W.fitted_chi1([math.inf, 0.0, *grad_std[2:]]) == pytest.approx(chi)
    assert math.isnan(W.fitted_chi1([1.0, math.nan]))


def test_thread_pool_and_process_pool_give_the_same_results():
    configs = W.grid(SMALL, {"sigma_w2": [0.8, 2.5], "sigma_b2": [0.0, 0.05]})
    with cf.ThreadPoolExecutor(2) as threads:
        by_threads = sorted(W.sweep(configs, threads), key=lambda r: r.index)
    with W.local_pool(2) as processes:  # the default pool: spawned workers, one BLAS thread each
        by_processes = sorted(W.sweep(configs, processes), key=lambda r: r.index)
    assert [r.index for r in by_threads] == list(range(4))
    for a, b in zip(by_threads, by_processes):
        assert a.config == b.config
        assert a.pre_std == b.pre_std and a.grad_std == b.grad_std
        assert a.measured_chi1 == b.measured_chi1 and a.theory_chi1 == b.theory_chi1
    ordered, chaotic = by_threads[0], by_threads[-1]
    assert ordered.theory_chi1 < 1 < chaotic.theory_chi1
    assert ordered.measured_chi1 < 1 < chaotic.measured_chi1


def test_results_stream_as_tasks_finish_and_stop_cancels_the_rest():
    configs = W.grid(SMALL, {"seed": list(range(12))})
    stopped = threading.Event()
    with GatedExecutor(permits=1) as executor:  # leaving it lets the task already waiting end
        stream = W.sweep(configs, executor, should_stop=stopped.is_set)
        first = next(stream)  # available while the other tasks wait
        stopped.set()
        rest = list(stream)
    assert first.index == 0 and rest == []
    # Every task not yet started was cancelled (the second may have started: it was waiting).
    assert sum(f.cancelled() for f in executor.futures) >= len(configs) - 2


def test_results_csv_has_a_row_per_run_in_grid_order():
    configs = W.grid(SMALL, {"seed": [0, 1], "sigma_w2": [1.0]})
    with cf.ThreadPoolExecutor(2) as threads:
        results = list(W.sweep(configs, threads))
    rows = list(csv.DictReader(io.StringIO(W.results_csv(results, ["seed"]))))
    assert [(row["index"], row["seed"]) for row in rows] == [("0", "0"), ("1", "1")]
    assert float(rows[0]["sigma_w2"]) == pytest.approx(1.0)
    assert {"measured_depth_scale", "theory_depth_scale", "measured_chi1", "theory_chi1"} <= set(rows[0])


def test_band_is_median_and_spread_over_seeds_beside_the_theory():
    runs = [W.measure(k, SMALL.replace(seed=k)) for k in range(5)]
    pre = np.array([r.pre_std for r in runs])
    band = W.band_of(runs[::-1])
    assert band.seeds == 5 and band.config == runs[0].config
    np.testing.assert_allclose(band.pre_std.median, np.median(pre, axis=0))
    np.testing.assert_allclose(band.pre_std.low, np.percentile(pre, 16, axis=0))
    np.testing.assert_allclose(band.pre_std.theory, runs[0].theory_pre_std)
    outside = (band.pre_std.theory < band.pre_std.low) | (band.pre_std.theory > band.pre_std.high)
    np.testing.assert_array_equal(band.pre_std.theory_outside, outside)


def test_finite_width_band_runs_the_seeds_on_the_executor():
    config = SimConfig(layers=10, width=32, batch=32, activation="gelu", init="kaiming_normal", seed=3)
    with cf.ThreadPoolExecutor(2) as threads:
        band = W.finite_width_band(config, seeds=4, executor=threads)
    assert band.seeds == 4 and band.config.seed == 3 and band.pre_std.median.shape == (10,)
    assert np.all(band.pre_std.low <= band.pre_std.median) and np.all(band.pre_std.median <= band.pre_std.high)
    assert band.pre_std.theory[0] == pytest.approx(math.sqrt(2.0)) and band.grad_std.theory.shape == (10,)
    assert np.all(band.pre_std.high > band.pre_std.low)  # the seeds spread


def test_the_phase_diagram_axes_refuse_residual_blocks():
    blocks = SimConfig(layers=3, width=8, batch=8, residual="pre", norm="layer")
    with pytest.raises(ConfigError, match="residual blocks have no depth scale"):
        W.grid(blocks, {"sigma_w2": [1.0, 2.0]})
    assert len(W.grid(blocks, {"seed": [0, 1]})) == 2  # other axes sweep blocks as any config
