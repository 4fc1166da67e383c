"""Config fuzz: 10,000 random configs (tests/engine/config_cases.py: SimConfig and TrainConfig
fields, a few mistyped, as Python values or a config file's keys) validated and, when valid and
cheap enough, run, with counts of what happened.

    python tests/bench/fuzz_configs.py [--cases N] [--seed S] [--budget SECONDS] [--slow SECONDS]

A valid config whose estimated cost is over config_cases.MAX_COST is not run ("too large to run in
the fuzz"); one that runs past --budget seconds is stopped (through the engine's should_stop), and
one that takes over --slow seconds is counted slow. Prints: ran, ConfigError, too large, stopped,
slow (with the slowest), and crashed, grouped by exception type and where it was raised, with the
first line of each message and one case that raised it. One BLAS thread, as in the suite.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from config_cases import cases, outcome  # noqa: E402  (tests/engine is not a package)


def where(exc: BaseException) -> str:
    """file:line of the innermost frame in initsim (or the innermost at all) that raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/initsim/" in f.filename] or frames
    frame = ours[-1]
    return f"{frame.filename.split('/initsim/')[-1]}:{frame.lineno}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds a run may take before it is stopped")
    parser.add_argument("--slow", type=float, default=2.0, help="a run longer than this counts as slow")
    args = parser.parse_args()

    counts: Counter[str] = Counter()
    crashes: dict[str, list] = defaultdict(list)
    slow: list[tuple[float, dict]] = []
    started = time.perf_counter()

    @seed(args.seed)
    @settings(max_examples=args.cases, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def fuzz(case: dict) -> None:
        began = time.perf_counter()
        try:
            counts[outcome(case, args.budget)] += 1
        except Exception as exc:  # noqa: BLE001  (counting every kind is the point)
            counts["crashed"] += 1
            first_line = (str(exc).splitlines() or [""])[0][:160]
            crashes[f"{type(exc).__name__} at {where(exc)}"].append((first_line, case))
        seconds = time.perf_counter() - began
        if seconds > args.slow:
            slow.append((seconds, case))
        done = sum(counts.values())
        if done % 1000 == 0:
            print(f"  {done} cases, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    with threadpool_limits(1):
        fuzz()
    total = sum(counts.values())
    print(f"{total} cases in {time.perf_counter() - started:.0f} s (seed {args.seed}, budget {args.budget:g} s)")
    print(f"  ran:                            {counts['ran']}")
    print(f"  ConfigError:                    {counts['ConfigError']}")
    print(f"  too large to run in the fuzz:   {counts['too large']}")
    print(f"  stopped at the budget:          {counts['stopped']}")
    print(f"  crashed:                        {counts['crashed']}")
    print(f"  {f'slow (over {args.slow:g} s):':<32}{len(slow)}")
    for kind, found in sorted(crashes.items(), key=lambda item: -len(item[1])):
        print(f"crashed {len(found)} x {kind}")
        for line in sorted({line for line, _ in found})[:5]:
            print(f"    {line}")
        print(f"    e.g. {found[0][1]}")
    for seconds, case in sorted(slow, key=lambda item: -item[0])[:5]:
        sim = case["sim"]
        print(f"slow {seconds:.1f} s: {sim.get('layers')} layers x {sim.get('width')} x batch {sim.get('batch')}, "
              f"init {sim.get('init')!r}, training {'yes' if case['train'] else 'no'}")


if __name__ == "__main__":
    main()
