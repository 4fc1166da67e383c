"""Compare up to four networks (usually four init schemes) over several seeds.

Every config runs once per seed: the forward simulation (per-layer activation std and gradient std)
and, when training settings are given, a training run. All runs share the task's data (generated
once from its data seed) and the same list of seeds, so two configs differ only in themselves.
The result gives, per config, the median and the min-max band over the seeds: per layer for the
simulation, per step for the training loss and accuracy. A run that diverged has no values after
its divergence: the bands of later steps are over the runs still going (`running` counts them).

The comparison streams: after each run it gives the bands of that run's config over its seeds so
far, so that a view can draw each scheme as soon as one of its runs has finished. The runs go seed
by seed, each config in turn, and a comparison keeps of each run only its per-layer and per-step
numbers (`SeedStats`), from which a config's bands are made again, cheaply, as its seeds come in.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import integer_in, listed
from . import memory
from .config import RANGES, SimConfig
from .errors import ConfigError
from .memory import DEFAULT_MEMORY_LIMIT
from .simulate import BackwardEvent, ForwardEvent, simulate_stream
from .tasks import Dataset, make_dataset
from .train import Diverged, Setup, StepEvent, TrainConfig, TrainEvent, run

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
    run: CompareRun  # that config over its seeds so far (`run.seeds`), this one the last


@dataclass(frozen=True)
class SeedStats:
    """What a comparison keeps of one run (one config, one seed): its numbers per layer and per
    step, not its events (whose histograms would take far more room)."""

    activation_std: np.ndarray  # per layer
    grad_std: np.ndarray  # per layer
    loss: np.ndarray | None  # per step, NaN from its divergence on; None: no training
    accuracy: np.ndarray | None  # per step, NaN for regression
    diverged_at: int | None


@dataclass(frozen=True)
class CompareResult:
    runs: tuple[CompareRun, ...]  # in the order of the configs given
    training: TrainConfig | None  # validated; None: simulation only
    seconds: float


def compare_stream(configs: Sequence[SimConfig], seeds: Sequence[int] = (0, 1, 2),
                   training: TrainConfig | None = None, should_stop: Callable[[], bool] | None = None,
                   memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Iterator[CompareProgress | CompareResult]:
    """Yield a CompareProgress after each run (one config, one seed), with that config's bands over
    its seeds so far, then the CompareResult: every config's bands over all the seeds.

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
    data: list[Dataset | None] = [None] * len(configs)  # per config, its training data
    setups: list[list[Setup]] = [[] for _ in configs]  # per config, one prepared run per seed
    if training is not None:
        # The data drawn once, in float64, and cast once for each dtype.
        drawn = make_dataset(training.task, training.samples, training.noise, training.task_dim,
                             training.data_seed, "float64")
        cast = {c.dtype: drawn.cast(c.dtype) for c in configs}
        data = [cast[c.dtype] for c in configs]
        setups = [[Setup.of(c.replace(seed=s), training, cast[c.dtype], memory_limit) for s in seeds]
                  for c in configs]
    started = time.perf_counter()
    kept: list[list[SeedStats]] = [[] for _ in configs]
    latest: dict[int, CompareRun] = {}  # per config index, its bands over its seeds so far
    done, total = 0, len(configs) * len(seeds)
    # Seed by seed, each config in turn: every config has its first run after one round, where
    # config by config the last one would wait for all the seeds of the others.
    for position, seed in enumerate(seeds):
        for index, config in enumerate(configs):
            activation_std, grad_std = _simulation_stds(simulate_stream(config.replace(seed=seed), stop,
                                                                        memory_limit))
            if stop():
                return
            loss = accuracy = diverged_at = None
            if training is not None:
                loss, accuracy, diverged_at = _training_curves(run(setups[index][position], stop),
                                                               training.steps)
                if stop():
                    return
            kept[index].append(SeedStats(activation_std, grad_std, loss, accuracy, diverged_at))
            summary = _summary(config, seeds[:position + 1], kept[index], data[index])
            latest[index] = summary
            done += 1
            yield CompareProgress(done, total, index, seed, summary)
    yield CompareResult(tuple(latest.values()), training, time.perf_counter() - started)  # in config order


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


def _simulation_stds(events: Iterable[ForwardEvent | BackwardEvent]) -> tuple[np.ndarray, np.ndarray]:
    """A simulation's activation std and gradient std, each per layer in layer order."""
    activation, grads = [], {}
    for event in events:
        if isinstance(event, ForwardEvent):
            activation.append(event.post.std)
        else:  # the backward pass goes from the last layer to the first
            grads[event.index] = event.grad.std
    return np.array(activation), np.array([grads[index] for index in sorted(grads)])


def _training_curves(events: Iterable[TrainEvent], steps: int
                     ) -> tuple[np.ndarray, np.ndarray, int | None]:
    """A training run's loss and accuracy per step (NaN where it has none: after diverging, or an
    accuracy in regression) and the step it diverged at (None: it did not)."""
    loss, accuracy = np.full(steps, np.nan), np.full(steps, np.nan)
    diverged_at = None
    for event in events:
        if isinstance(event, StepEvent):
            loss[event.step - 1] = event.loss
            accuracy[event.step - 1] = np.nan if event.accuracy is None else event.accuracy
        elif isinstance(event, Diverged):
            diverged_at = event.step
    return loss, accuracy, diverged_at


def _summary(config: SimConfig, seeds: Sequence[int], stats: Sequence[SeedStats], data: Dataset | None
             ) -> CompareRun:
    """``config``'s bands over the runs of ``seeds`` (``stats``, in the same order); ``data``: the
    training data (None: no training)."""
    loss = accuracy = running = None
    if data is not None:
        losses = np.array([s.loss for s in stats])
        loss, running = Band.over(losses), np.count_nonzero(~np.isnan(losses), axis=0)
        accuracy = Band.over(np.array([s.accuracy for s in stats])) if data.is_classification else None
    return CompareRun(config.replace(seed=seeds[0]), tuple(seeds),
                      Band.over(np.array([s.activation_std for s in stats])),
                      Band.over(np.array([s.grad_std for s in stats])), loss, accuracy, running,
                      tuple(s.diverged_at for s in stats), None if data is None else data.digest)
