"""The comparison's stream: after each run, the bands of that run's config over its seeds so far,
which after the last seed are the comparison's result."""

import pickle

import numpy as np

from initsim.engine import SimConfig, simulate
from initsim.engine.compare import CompareProgress, CompareResult, CompareRun, compare, compare_stream
from initsim.engine.simulate import simulate_stream
from initsim.engine.train import TrainConfig

SMALL = SimConfig(layers=6, width=48, activation="relu", init="kaiming_normal")
CONFIGS = [SMALL, SMALL.replace(init="zeros"), SMALL.replace(init="xavier_normal")]
SEEDS = (4, 5, 6)
TRAINING = TrainConfig(task="spirals", samples=200, steps=30, train_batch=50)


def assert_same_run(actual: CompareRun, expected: CompareRun) -> None:
    assert (actual.config, actual.seeds, actual.diverged_at, actual.data_digest) == (
        expected.config, expected.seeds, expected.diverged_at, expected.data_digest)
    for field in ("activation_std", "grad_std", "loss", "accuracy"):
        band, other = getattr(actual, field), getattr(expected, field)
        assert (band is None) == (other is None), field
        for part in () if band is None else ("median", "low", "high"):
            np.testing.assert_array_equal(getattr(band, part), getattr(other, part), err_msg=f"{field} {part}")
    np.testing.assert_array_equal(actual.running, expected.running)


def test_each_run_gives_its_configs_bands_over_the_seeds_so_far_and_the_last_are_the_result():
    events = list(compare_stream(CONFIGS, SEEDS, TRAINING))
    progress, result = events[:-1], events[-1]
    assert all(isinstance(event, CompareProgress) for event in progress)
    assert isinstance(result, CompareResult)
    # Seed by seed, each config in turn: every config is drawn after the first round.
    assert [(event.config_index, event.seed) for event in progress] == [
        (index, seed) for seed in SEEDS for index in range(len(CONFIGS))]
    assert [(event.done, event.total) for event in progress] == [(done, 9) for done in range(1, 10)]
    assert [event.run.seeds for event in progress] == [SEEDS[:count] for count in (1, 2, 3) for _ in CONFIGS]
    sims = {(index, seed): simulate(config.replace(seed=seed)) for index, config in enumerate(CONFIGS)
            for seed in SEEDS}
    for event in progress:  # each partial is of the seeds in so far: its bands are theirs
        config, run = CONFIGS[event.config_index], event.run
        stds = np.array([[layer.post.std for layer in sims[event.config_index, seed].forward] for seed in run.seeds])
        np.testing.assert_array_equal(run.activation_std.median, np.median(stds, axis=0))
        np.testing.assert_array_equal(run.activation_std.low, stds.min(axis=0))
        np.testing.assert_array_equal(run.activation_std.high, stds.max(axis=0))
        assert len(run.diverged_at) == len(run.seeds) and list(run.running) == [len(run.seeds)] * TRAINING.steps
        alone = compare([config], run.seeds, TRAINING)
        assert_same_run(run, alone.runs[0])
    finals = progress[-len(CONFIGS):]
    whole = compare(CONFIGS, SEEDS, TRAINING)
    for event, run, expected in zip(finals, result.runs, whole.runs):
        assert event.run is run
        assert_same_run(run, expected)


def test_a_partial_over_one_seed_is_that_runs_line():
    first = next(compare_stream(CONFIGS, SEEDS))
    assert first.run.seeds == (SEEDS[0],) and first.run.loss is None
    band = first.run.activation_std
    assert np.array_equal(band.low, band.median) and np.array_equal(band.high, band.median)


def test_a_progress_event_carries_statistics_not_the_runs_events():
    """It crosses from the worker thread to the window: per-layer and per-step numbers only."""
    wide = SMALL.replace(layers=30, width=256)
    first = next(compare_stream([wide], SEEDS, TRAINING))
    one_runs_events = len(pickle.dumps(list(simulate_stream(wide.replace(seed=SEEDS[0])))))
    assert len(pickle.dumps(first)) < min(one_runs_events / 4, 16_000)
