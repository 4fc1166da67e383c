"""Engine benchmark: a 50 x 512 ReLU net on a batch of 1024, forward + backward with every statistic
and histogram, against the bare matrix-multiply chain of the same shapes, measured in one run.

    python tests/bench/bench_engine.py [--repeats N]

Prints, for 1 and 2 BLAS threads: the engine's time, the bare chain's time, their ratio, and the
peak memory each holds (tracemalloc sees numpy's allocations). Target: ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

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


def timed(fn) -> tuple[float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    c = CONFIG
    weights = [(rng.standard_normal((c.width, c.width)) * np.sqrt(2 / c.width)).astype(np.float32)
               for _ in range(c.layers)]
    x0 = rng.standard_normal((c.batch, c.width)).astype(np.float32)
    grad0 = rng.standard_normal((c.batch, c.width)).astype(np.float32)
    blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')}" for i in threadpool_info())
    print(f"config: {c.layers} layers x {c.width} units, batch {c.batch}, {c.dtype}, {c.activation}; "
          f"BLAS: {blas}")
    print(f"estimate of the config: {memory.simulation(c).text()}")
    for threads in (1, 2):
        with threadpool_limits(threads):
            simulate(c)  # warm up
            engine, bare = [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine state
                engine.append(timed(lambda: simulate(c)))
                bare.append(timed(lambda: bare_chain(c, weights, x0, grad0.copy())))
            e = statistics.median(s for s, _ in engine)
            b = statistics.median(s for s, _ in bare)
            print(f"{threads} BLAS thread(s): engine {e * 1e3:7.1f} ms, bare chain {b * 1e3:7.1f} ms, "
                  f"ratio {e / b:.2f}; peak memory engine {max(m for _, m in engine) / 2**20:.0f} MiB, "
                  f"bare chain {max(m for _, m in bare) / 2**20:.0f} MiB (+{weights[0].nbytes * c.layers / 2**20:.0f} MiB weights held outside)")


if __name__ == "__main__":
    main()
