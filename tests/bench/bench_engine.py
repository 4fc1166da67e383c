"""Engine benchmark: a 50 x 512 ReLU net on a batch of 1024, forward + backward with every statistic
and histogram, against the bare matrix-multiply chain of the same shapes, measured in one run.

    python tests/bench/bench_engine.py [--repeats N]

Prints, for 1 and 2 BLAS threads, the figure issue 10 names: the engine's time over the bare
chain's, each engine run paired with the bare chain run just before it (alternating, so both see the
same machine state), as the median of the pairs' ratios with their range; then the medians of the
times and the peak memory each holds (tracemalloc sees numpy's allocations; measured in runs of
their own, so that tracing costs the timed runs nothing). Target: ratio <= 1.2 at both.

It imports initsim before numpy, as the initsim command does, so that both chains run with the
OpenBLAS settings initsim gives (see initsim/__init__.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import initsim  # noqa: I001 (before numpy: its OpenBLAS settings, as the initsim command has them)
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from initsim.engine import SimConfig, memory, simulate

CONFIG = SimConfig(layers=50, width=512, batch=1024, activation="relu", init="kaiming_normal")


def bare_chain(config: SimConfig, weights: list[np.ndarray], x0: np.ndarray, grad0: np.ndarray) -> None:
    """The work no simulation can skip: L forward matmuls with ReLU kept for the backward pass,
    then per layer the weight-gradient and input-gradient matmuls."""
    outputs, x = [], x0
    for w in weights:
        x = x @ w
        np.maximum(x, 0, out=x)
        outputs.append(x)
    grad = grad0
    for layer in range(config.layers - 1, -1, -1):
        grad *= outputs[layer] > 0
        x_in = outputs[layer - 1] if layer else x0
        x_in.T @ grad
        grad = grad @ weights[layer].T


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def peak_bytes(fn) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    c = CONFIG
    weights = [(rng.standard_normal((c.width, c.width)) * np.sqrt(2 / c.width)).astype(np.float32)
               for _ in range(c.layers)]
    x0 = rng.standard_normal((c.batch, c.width)).astype(np.float32)
    grad0 = rng.standard_normal((c.batch, c.width)).astype(np.float32)
    blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')}" for i in threadpool_info())
    print(f"initsim {initsim.__version__}; config: {c.layers} layers x {c.width} units, batch {c.batch}, "
          f"{c.dtype}, {c.activation}; BLAS: {blas}, OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; {args.repeats} pairs")
    print(f"estimate of the config: {memory.simulation(c).text()}")
    for threads in (1, 2):
        with threadpool_limits(threads):
            simulate(c)  # warm up
            engine, bare = [], []
            for _ in range(args.repeats):
                bare.append(seconds(lambda: bare_chain(c, weights, x0, grad0.copy())))
                engine.append(seconds(lambda: simulate(c)))
            ratios = [e / b for e, b in zip(engine, bare)]
            print(f"{threads} BLAS thread(s): engine / bare chain {statistics.median(ratios):.2f} "
                  f"(pairs {min(ratios):.2f}-{max(ratios):.2f}); engine {statistics.median(engine) * 1e3:.0f} ms, "
                  f"bare chain {statistics.median(bare) * 1e3:.0f} ms (medians)")
    engine_peak = peak_bytes(lambda: simulate(c))
    bare_peak = peak_bytes(lambda: bare_chain(c, weights, x0, grad0.copy()))
    print(f"peak memory: engine {engine_peak / 2**20:.0f} MiB, bare chain {bare_peak / 2**20:.0f} MiB "
          f"(+{weights[0].nbytes * c.layers / 2**20:.0f} MiB weights held outside)")


if __name__ == "__main__":
    main()
