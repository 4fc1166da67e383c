"""Training benchmark: steps per second of He + ReLU on the two spirals (SGD with momentum), against
the bare matrix-multiply work of a step of the same shapes, measured in the same run.

    python tests/bench/bench_train.py [--repeats N]

For (L=8, W=64, batch 128) and (L=20, W=256, batch 256), with 1 and 2 BLAS threads, prints the
engine's steps/s with the whole-set probe every 10 steps (the default) and without it, the bare
step's steps/s, and the ratio of their times (the engine's overhead: per-layer statistics, optimizer,
probes). A step's bare work: per layer the forward matmul and ReLU, then the ReLU mask, the weight
gradient and the input gradient matmuls.

Then residual blocks (issue 13): steps/s of L = 20 pre-norm blocks of width 256 (E = 1, no norm and
layer norm) against the plain network of the same depth and width, and the ratio of their step
times: a block has two layers' multiplies (forward 2, backward 4: dL/dz, dL/dW2, dL/dW1, dL/du), so
about 2 is the engine's own; more is overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import islice

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from initsim.engine import SimConfig
from initsim.engine.train import Setup, TrainConfig, run

CASES = ((SimConfig(layers=8, width=64), 128, 400), (SimConfig(layers=20, width=256), 256, 60))
BLOCKS = (SimConfig(layers=20, width=256), 256, 40)


def engine_seconds_per_step(setup: Setup, steps: int) -> float:
    """Seconds per step, from the end of step 1 (the weights sampled, the first probe taken)."""
    events = run(setup)
    next(events)
    started = time.perf_counter()
    for _ in islice(events, steps):
        pass
    return (time.perf_counter() - started) / steps


def bare_seconds_per_step(weights: list[np.ndarray], x0: np.ndarray, grad0: np.ndarray, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        outputs, x = [], x0
        for w in weights:
            x = x @ w
            np.maximum(x, 0, out=x)
            outputs.append(x)
        grad = grad0.copy()
        for layer in range(len(weights) - 1, -1, -1):
            grad *= outputs[layer] > 0
            x_in = outputs[layer - 1] if layer else x0
            x_in.T @ grad
            grad = grad @ weights[layer].T
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')}" for i in threadpool_info())
    print(f"BLAS: {blas}; float32; median of {args.repeats} interleaved repeats")
    for config, batch, steps in CASES:
        training = TrainConfig(task="spirals", samples=1000, train_batch=batch, steps=steps + 1)
        probed = Setup.of(config, training)
        unprobed = Setup.of(config, training.replace(record_every=steps + 1))
        rng = np.random.default_rng(0)
        shapes = [(2, config.width)] + [(config.width, config.width)] * (config.layers - 1) + [(config.width, 2)]
        weights = [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32) for s in shapes]
        x0 = rng.standard_normal((batch, 2)).astype(np.float32)
        grad0 = rng.standard_normal((batch, 2)).astype(np.float32)
        print(f"L={config.layers}, W={config.width}, batch {batch}, {steps} steps:")
        for threads in (1, 2):
            with threadpool_limits(threads):
                engine_seconds_per_step(probed, 5)  # warm up
                times: dict[str, list[float]] = {"probe": [], "no probe": [], "bare": []}
                for _ in range(args.repeats):  # interleaved, so all see the same machine state
                    times["probe"].append(engine_seconds_per_step(probed, steps))
                    times["no probe"].append(engine_seconds_per_step(unprobed, steps))
                    times["bare"].append(bare_seconds_per_step(weights, x0, grad0, steps))
                t = {name: statistics.median(values) for name, values in times.items()}
                print(f"  {threads} BLAS thread(s): engine {1 / t['probe']:7.0f} steps/s "
                      f"(ratio {t['probe'] / t['bare']:.2f}), without probes {1 / t['no probe']:7.0f} "
                      f"steps/s (ratio {t['no probe'] / t['bare']:.2f}); bare step {1 / t['bare']:7.0f} steps/s")

    config, batch, steps = BLOCKS
    training = TrainConfig(task="spirals", samples=1000, train_batch=batch, steps=steps + 1, record_every=steps + 1)
    setups = {"plain": Setup.of(config, training),
              "pre-norm blocks, no norm": Setup.of(config.replace(residual="pre", branch_scale="1/sqrt(L)"), training),
              "pre-norm blocks, layer norm": Setup.of(config.replace(residual="pre", norm="layer",
                                                                     branch_scale="1/sqrt(L)"), training)}
    print(f"residual blocks: L={config.layers}, W={config.width}, batch {batch}, {steps} steps, no probes:")
    for threads in (1, 2):
        with threadpool_limits(threads):
            times = {name: [] for name in setups}
            for _ in range(args.repeats):
                for name, setup in setups.items():
                    times[name].append(engine_seconds_per_step(setup, steps))
            plain = statistics.median(times["plain"])
            print(f"  {threads} BLAS thread(s): plain {1 / plain:5.0f} steps/s; " + "; ".join(
                f"{name} {1 / statistics.median(t):5.0f} steps/s (a block: "
                f"{statistics.median(t) / plain:.2f} plain layers)" for name, t in times.items() if name != "plain"))


if __name__ == "__main__":
    main()
