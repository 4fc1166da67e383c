"""Subnormal benchmark: a tanh net whose signal vanishes (weight std 0.01 or 0.001) against the same
network with Xavier's init, each a whole `initsim simulate` process on one BLAS thread.

    python tests/bench/bench_subnormal.py [--repeats N]

float32: 50 x 256 on a batch of 512, std 0.01 (values fall below float32's smallest normal from
layer ~40 forward, ~10 backward). float64: 200 layers, std 0.001 (below float64's from layer ~170
forward, ~30 backward). Each pair runs alternately, ``--repeats`` times, with the default flush to
zero and with ``--subnormals keep`` (IEEE); prints the median wall times and the ratio vanishing /
healthy. Target: ratio <= 1.2 with flush, in both dtypes. What keep costs depends on the CPU (many
x86 cores take a microcode assist per subnormal operation; recent AMD cores barely slow down).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

SHAPE = ["--width", "256", "--batch", "512", "--activation", "tanh"]
CASES = {  # dtype: (layers, the vanishing init's std)
    "float32": ("50", "0.01"),
    "float64": ("200", "0.001"),
}


def command(dtype: str, vanishing: bool, subnormals: str) -> list[str]:
    layers, std = CASES[dtype]
    init = ["--init", "normal", "--std", std] if vanishing else ["--init", "xavier_normal"]
    return [sys.executable, "-m", "initsim", "simulate", "--layers", layers, *SHAPE, *init, "--dtype", dtype,
            "--subnormals", subnormals, "--blas-threads", "1", "--json"]


def wall_seconds(argv: list[str]) -> float:
    """The whole process's wall time (start-up and import included, as a user waits for it)."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    return time.perf_counter() - started


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{cpu_name()}, {os.cpu_count()} cores, one BLAS thread; median of {args.repeats} alternating runs")
    for dtype, (layers, std) in CASES.items():
        for subnormals in ("flush", "keep"):
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.repeats):
                for vanishing in (True, False):
                    times[vanishing].append(wall_seconds(command(dtype, vanishing, subnormals)))
            slow, healthy = statistics.median(times[True]), statistics.median(times[False])
            print(f"{dtype} L{layers} W256 B512 tanh, subnormals {subnormals:5}: std {std} {slow:6.2f} s, "
                  f"xavier_normal {healthy:6.2f} s, ratio {slow / healthy:.2f}")


if __name__ == "__main__":
    main()
