"""Engine benchmark: a 50 x 512 ReLU net on a batch of 1024, and 25 pre-norm residual blocks of the
same width (two multiplies a block, issue 13), forward + backward with every statistic and
histogram, against the bare matrix-multiply chain of the same shapes, measured in one run.

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
# As many multiplies forward (two a block), with layer norm before each branch, as transformers have.
RESIDUAL = CONFIG.replace(layers=25, residual="pre", norm="layer", branch_scale="1/sqrt(L)")


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


def layer_norm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centred = x - x.mean(axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(np.mean(centred * centred, axis=1, keepdims=True) + 1e-5)
    return centred * inv_std, inv_std


def bare_blocks(config: SimConfig, weights: list[tuple[np.ndarray, np.ndarray]], x0: np.ndarray,
                grad0: np.ndarray) -> None:
    """The same for pre-norm blocks x + alpha relu(LN(x) W1) W2: per block two forward multiplies
    and the layer norm; back, dL/dh, dL/dW1 (whose statistics the simulation reports) and dL/du,
    and the layer norm's backward."""
    alpha = np.float32(config.branch_alpha)
    cache, x = [], x0
    for w1, w2 in weights:
        u, inv_std = layer_norm(x)
        a = u @ w1
        np.maximum(a, 0, out=a)
        x = x + alpha * (a @ w2)
        cache.append((u, inv_std, a))
    grad = grad0
    for (w1, w2), (u, inv_std, a) in zip(reversed(weights), reversed(cache)):
        da = (alpha * grad) @ w2.T
        da *= a > 0
        u.T @ da
        du = da @ w1.T
        grad = grad + inv_std * (du - du.mean(axis=1, keepdims=True)
                                 - u * np.mean(du * u, axis=1, keepdims=True))


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

    def matrix() -> np.ndarray:
        return (rng.standard_normal((c.width, c.width)) * np.sqrt(2 / c.width)).astype(np.float32)

    weights = [matrix() for _ in range(c.layers)]
    blocks = [(matrix(), matrix()) for _ in range(RESIDUAL.layers)]
    x0 = rng.standard_normal((c.batch, c.width)).astype(np.float32)
    grad0 = rng.standard_normal((c.batch, c.width)).astype(np.float32)
    blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')}" for i in threadpool_info())
    print(f"initsim {initsim.__version__}; config: {c.layers} layers x {c.width} units, batch {c.batch}, "
          f"{c.dtype}, {c.activation}; BLAS: {blas}, OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; {args.repeats} pairs")
    print(f"estimate of the config: {memory.simulation(c).text()}")
    runs = ((c, "plain layers", lambda: bare_chain(c, weights, x0, grad0.copy())),
            (RESIDUAL, f"{RESIDUAL.layers} pre-norm blocks", lambda: bare_blocks(RESIDUAL, blocks, x0, grad0.copy())))
    for config, name, bare_run in runs:
        for threads in (1, 2):
            with threadpool_limits(threads):
                simulate(config)  # warm up
                engine, bare = [], []
                for _ in range(args.repeats):
                    bare.append(seconds(bare_run))
                    engine.append(seconds(lambda: simulate(config)))
                ratios = [e / b for e, b in zip(engine, bare)]
                print(f"{name}, {threads} BLAS thread(s): engine / bare chain {statistics.median(ratios):.2f} "
                      f"(pairs {min(ratios):.2f}-{max(ratios):.2f}); engine "
                      f"{statistics.median(engine) * 1e3:.0f} ms, bare chain {statistics.median(bare) * 1e3:.0f} ms "
                      "(medians)")
        engine_peak = peak_bytes(lambda: simulate(config))
        bare_peak = peak_bytes(bare_run)
        print(f"{name}, peak memory: engine {engine_peak / 2**20:.0f} MiB, bare chain {bare_peak / 2**20:.0f} MiB "
              f"(+{weights[0].nbytes * c.layers / 2**20:.0f} MiB weights held outside)")


if __name__ == "__main__":
    main()
