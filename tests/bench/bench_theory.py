"""Theory benchmark: the phase diagram's grid time per activation, the spectra at width 1024, and
sweep throughput with 1 and 2 worker processes.

    python tests/bench/bench_theory.py [--grid N] [--repeats N] [--tasks N]

Targets: a 200 x 200 phase diagram (q*, chi_1 and the critical line) in well under a second for
every activation; 2 workers finishing a sweep faster than 1 (on a 2-core machine, nearly twice).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import time

from threadpoolctl import threadpool_limits

from initsim.engine import ACTIVATIONS, SimConfig, initial_weights
from initsim.engine import spectra, sweep, theory

SWEEP_BASE = SimConfig(layers=30, width=256, batch=256, activation="tanh")


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_phase(grid: int, repeats: int) -> None:
    print(f"phase diagram, {grid} x {grid} (best of {repeats}; table = the moment table alone):")
    for act in ACTIVATIONS.values():
        p = act.params()
        axes = theory.phase_axes(act, p, grid)
        # The table is cached per process: each repeat integrates it anew.
        table = best_of(repeats, lambda: (theory._moment_table.cache_clear(), theory.moment_table(act, p)))
        total = best_of(repeats, lambda: theory.phase_diagram(act, p, *axes))
        print(f"  {act.name:<11} {total * 1e3:7.1f} ms  (table {table * 1e3:5.1f} ms)")


def bench_spectra() -> None:
    with threadpool_limits(limits=1):
        config = SimConfig(layers=1, width=1024, batch=1, init="kaiming_normal")
        w = initial_weights(config)[0][0]
        started = time.perf_counter()
        spectrum = spectra.weight_spectrum(w, variance=2 / 1024)
        ks = spectrum.ks_distance()
        seconds = time.perf_counter() - started
        print(f"weight spectrum 1024 x 1024 (1 BLAS thread): {seconds:.2f} s, KS distance to "
              f"Marchenko-Pastur {ks:.4f}")
        deep = SimConfig(layers=20, width=1024, batch=1, activation="tanh", init="xavier_normal")
        for label, c in zip(("gaussian", "orthogonal"), spectra.isometry_pair(deep)):
            started = time.perf_counter()
            s = spectra.jacobian_spectrum(c)
            print(f"jacobian 20 x 1024 tanh, {label:<10}: {time.perf_counter() - started:.2f} s, "
                  f"max {s.max:.3g}, min {s.min:.3g}, std of log10 s {s.log_spread:.3f}")


def bench_sweep(tasks: int) -> None:
    configs = sweep.grid(SWEEP_BASE, {"seed": list(range(tasks))})
    print(f"sweep of {tasks} tasks ({SWEEP_BASE.layers} x {SWEEP_BASE.width} tanh, batch {SWEEP_BASE.batch}), "
          "process pools started beforehand:")
    rates = {}
    for workers in (1, 2):
        with sweep.local_pool(workers) as pool:
            list(sweep.sweep(configs[:workers], pool))  # start the workers (spawn imports numpy)
            started = time.perf_counter()
            done = sum(1 for _ in sweep.sweep(configs, pool))
            rates[workers] = done / (time.perf_counter() - started)
        print(f"  {workers} worker{'s' if workers > 1 else ' '}: {rates[workers]:6.1f} tasks/s")
    print(f"  speed-up {rates[2] / rates[1]:.2f}x")
    with cf.ThreadPoolExecutor(2) as threads, threadpool_limits(limits=1):
        started = time.perf_counter()
        done = sum(1 for _ in sweep.sweep(configs, threads))
        print(f"  2 threads (1 BLAS thread each): {done / (time.perf_counter() - started):6.1f} tasks/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=24)
    args = parser.parse_args()
    bench_phase(args.grid, args.repeats)
    bench_spectra()
    bench_sweep(args.tasks)


if __name__ == "__main__":
    main()
