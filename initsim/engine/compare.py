"""Compare up to four networks (usually four init schemes) over several seeds.

Every config runs once per seed: the forward simulation (per-layer activation std and gradient std)
and, when training settings are given, a training run. All runs share the task's data (generated
once from its data seed) and the same list of seeds, so two configs differ only in themselves.
The result gives, per config, the median and the min-max band over the seeds: per layer for the
simulation, per step for the training loss and accuracy. A run that diverged has no values after
its divergence: the bands of later steps are over the runs still going (`running` counts them).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import integer_in, listed
from . import memory
from .config import RANGES, SimConfig
from .errors import ConfigError
from .memory import DEFAULT_MEMORY_LIMIT
from .simulate import BackwardEvent, ForwardEvent, simulate_stream
from .tasks import make_dataset
from .train import Diverged, Setup, StepEvent, TrainConfig, run

MAX_CONFIGS = 4
MAX_SEEDS = 32


@dataclass(frozen=True)
class Band:
    """Median, min and max over runs, per point (a layer or a step); NaN where no run has a value."""

    median: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def over(cls, samples: np.ndarray) -> Band:
        """From a (runs, points) array whose NaNs are missing values."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a point that no run reached
            return cls(np.nanmedian(samples, axis=0), np.nanmin(samples, axis=0), np.nanmax(samples, axis=0))

    def record(self, name: str, index: int) -> dict[str, float]:
        return {f"{name}_median": float(self.median[index]), f"{name}_min": float(self.low[index]),
                f"{name}_max": float(self.high[index])}


@dataclass(frozen=True)
class CompareRun:
    config: SimConfig  # validated, with the first seed
    seeds: tuple[int, ...]
    activation_std: Band  # per layer, the forward simulation's activation (output) std
    grad_std: Band  # per layer, the simulation's std of dL/dh
    loss: Band | None  # per step of training (None: no training); the mini-batch loss
    accuracy: Band | None  # per step; None also for regression
    running: np.ndarray | None  # per step, how many seeds' runs had not diverged
    diverged_at: tuple[int | None, ...]  # per seed
    data_digest: str | None  # the training data's fingerprint: the same for every run

    def layer_records(self) -> list[dict[str, Any]]:
        return [{"index": i + 1, **self.activation_std.record("activation_std", i),
                 **self.grad_std.record("grad_std", i)} for i in range(len(self.activation_std.median))]

    def step_records(self) -> list[dict[str, Any]]:
        if self.loss is None or self.running is None:
            return []
        records = []
        for i in range(len(self.loss.median)):
            record = {"step": i + 1, **self.loss.record("loss", i), "running": int(self.running[i])}
            if self.accuracy is not None:
                record.update(self.accuracy.record("accuracy", i))
            records.append(record)
        return records


@dataclass(frozen=True)
class CompareProgress:
    done: int  # runs finished (one run: one config with one seed)
    total: int
    config_index: int  # of the run just finished
    seed: int


@dataclass(frozen=True)
class CompareResult:
    runs: tuple[CompareRun, ...]  # in the order of the configs given
    training: TrainConfig | None  # validated; None: simulation only
    seconds: float


def compare_stream(configs: Sequence[SimConfig], seeds: Sequence[int] = (0, 1, 2),
                   training: TrainConfig | None = None, should_stop: Callable[[], bool] | None = None,
                   memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Iterator[CompareProgress | CompareResult]:
    """Yield a CompareProgress after each run (one config, one seed), then the CompareResult.

    Stops early, cleanly (no result), when the caller stops iterating or ``should_stop()`` turns
    true, which is checked between layers and between training steps.
    Raises ConfigError (before running anything) for invalid input, or a comparison that needs
    more than ``memory_limit`` bytes.
    """
    stop = should_stop or (lambda: False)
    configs, seeds = checked_inputs(configs, seeds)
    if training is not None:
        # The bands are of the mini-batch losses: no probe of the whole set but after the last step.
        training = training.validated()
        training = training.replace(record_every=training.steps)
    memory.check(memory.comparison(configs, len(seeds), training), memory_limit,
                 "seeds, layers, width, batch or samples")
    setups: list[list[Setup]] = [[] for _ in configs]  # per config, one prepared run per seed
    if training is not None:
        # The data drawn once, in float64, and cast once for each dtype.
        data = make_dataset(training.task, training.samples, training.noise, training.task_dim,
                            training.data_seed, "float64")
        cast = {c.dtype: data.cast(c.dtype) for c in configs}
        setups = [[Setup.of(c.replace(seed=s), training, cast[c.dtype], memory_limit) for s in seeds]
                  for c in configs]
    started = time.perf_counter()
    runs = []
    for index, config in enumerate(configs):
        sims, events = [], []
        for position, seed in enumerate(seeds):
            sim = list(simulate_stream(config.replace(seed=seed), stop, memory_limit))
            if stop():
                return
            sims.append(sim)
            if setups[index]:
                events.append(list(run(setups[index][position], stop)))
                if stop():
                    return
            yield CompareProgress(index * len(seeds) + position + 1, len(configs) * len(seeds), index, seed)
        runs.append(_summary(config, seeds, sims, events, training, setups[index]))
    yield CompareResult(tuple(runs), training, time.perf_counter() - started)


def compare(configs: Sequence[SimConfig], seeds: Sequence[int] = (0, 1, 2),
            training: TrainConfig | None = None, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> CompareResult:
    """Run the whole comparison."""
    *_, result = compare_stream(configs, seeds, training, memory_limit=memory_limit)
    assert isinstance(result, CompareResult)
    return result


def checked_inputs(configs: Sequence[SimConfig], seeds: Sequence[int]
                   ) -> tuple[list[SimConfig], list[int]]:
    """The validated configs and seeds of a comparison, or ConfigError."""
    configs, seeds = listed("configs", configs, MAX_CONFIGS), listed("seeds", seeds, MAX_SEEDS)
    for config in configs:
        if not isinstance(config, SimConfig):
            raise ConfigError("configs", f"got a {type(config).__name__}, expected SimConfigs")
    low, high = RANGES["seed"]
    return [c.validated() for c in configs], [integer_in("seeds", s, low, high) for s in seeds]


def _summary(config: SimConfig, seeds: list[int], sims: list[list], events: list[list],
             training: TrainConfig | None, setups: list[Setup]) -> CompareRun:
    activation = np.array([[e.post.std for e in sim if isinstance(e, ForwardEvent)] for sim in sims])
    grad = np.array([[e.grad.std for e in sorted((e for e in sim if isinstance(e, BackwardEvent)),
                                                 key=lambda e: e.index)] for sim in sims])
    loss = accuracy = running = None
    diverged_at: list[int | None] = [None] * len(seeds)
    if training is not None:
        losses = np.full((len(seeds), training.steps), np.nan)
        accuracies = np.full((len(seeds), training.steps), np.nan)
        for row, run_events in enumerate(events):
            for event in run_events:
                if isinstance(event, StepEvent):
                    losses[row, event.step - 1] = event.loss
                    accuracies[row, event.step - 1] = np.nan if event.accuracy is None else event.accuracy
                elif isinstance(event, Diverged):
                    diverged_at[row] = event.step
        loss, running = Band.over(losses), np.count_nonzero(~np.isnan(losses), axis=0)
        accuracy = Band.over(accuracies) if setups[0].data.is_classification else None
    return CompareRun(config.replace(seed=seeds[0]), tuple(seeds), Band.over(activation), Band.over(grad),
                      loss, accuracy, running, tuple(diverged_at),
                      setups[0].data.digest if setups else None)
