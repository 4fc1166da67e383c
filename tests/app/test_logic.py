"""The app's pieces without a window: rebinning, panel choice, warnings, run state, the reference,
the throttle, and the worker called synchronously."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initsim.app.runtime.controller import StreamRunner, Throttle
from initsim.app.runtime.pools import LazyPool
from initsim.app.model.histograms import (MAX_PANELS, DepthImage, common_grid, depth_image, fractions,
                                    panel_curve, panel_height, panel_layers, panel_stride, rebin,
                                    rebin_rows)
from initsim.app.model.reference import reference_html
from initsim.app.model.runstate import RunState
from initsim.app.runtime.worker import StreamWorker, simulation_job
from initsim.engine import ACTIVATIONS, BIAS_INITS, SCHEMES, ForwardEvent, Histogram, SimConfig, simulate_stream
from initsim.engine.stats import histogram

from appcheck import SMALL, TIMEOUT_MS, TIMEOUT_S, reference


def _histogram(values, bins=16):
    values = np.asarray(values, dtype=float)
    return histogram(values, float(values.min()), float(values.max()), bins)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.integers(2, 80))
def test_rebin_keeps_the_total_on_a_grid_that_covers_the_range(values, bins):
    h = _histogram(values)
    grid = common_grid([h, _histogram([min(values) - 1, max(values) + 3])], bins)
    moved = rebin(h, grid)
    assert moved.sum() == pytest.approx(h.total, rel=1e-9)
    assert np.all(moved >= -1e-9)


def test_rebin_onto_its_own_edges_is_the_identity():
    h = _histogram(np.random.default_rng(0).normal(size=1000))
    np.testing.assert_allclose(rebin(h, h.edges), h.counts)


def test_a_narrow_histogram_lands_whole_in_one_wide_bin():
    narrow = _histogram([0.0, 1e-9, 2e-9])
    grid = np.linspace(-10, 10, 5)
    np.testing.assert_allclose(rebin(narrow, grid), [0, 0, 3, 0])


def test_rebinning_many_histograms_at_once_interpolates_each_cumulative_count():
    """Against numpy's own linear interpolation, one histogram at a time: rows of different bin
    counts, uneven bins, grid values on edges, left of, right of and between them."""
    rng = np.random.default_rng(7)
    hists = [_histogram(rng.normal(size=300) * scale, bins) for scale, bins in ((1, 64), (1e-3, 3), (50, 17))]
    uneven = np.cumsum(rng.exponential(size=12)) - 4.0
    hists.append(Histogram(edges=uneven, counts=rng.integers(0, 9, 11)))
    hists.append(Histogram(edges=np.array([2.0, 2.5]), counts=np.array([5])))
    grid = np.sort(np.concatenate([np.linspace(-200, 200, 41), uneven[::3], [2.0, 2.5, 1e-4]]))
    for row, h in zip(rebin_rows(hists, grid), hists):
        cumulative = np.concatenate(([0.0], np.cumsum(h.counts)))
        np.testing.assert_allclose(row, np.diff(np.interp(grid, h.edges, cumulative)), rtol=1e-12, atol=1e-9)


def test_common_grid_spans_every_histogram_with_values():
    a, b = _histogram([-1, 0, 2]), _histogram([5, 7])
    empty = histogram(np.array([]), 0.0, 0.0, 4)
    grid = common_grid([a, b, empty], 10)
    assert (grid[0], grid[-1], len(grid)) == (-1, 7, 11)
    assert list(common_grid([empty], 2)) == [-0.5, 0, 0.5]


def test_fractions_of_nothing_are_zero():
    assert list(fractions(np.zeros(3))) == [0, 0, 0]
    assert list(fractions(np.array([1, 3]))) == [0.25, 0.75]


@pytest.mark.parametrize("layers", [1, 2, 16, 17, 20, 30, 99, 100, 101, 500, 999, 1000])
def test_panels_keep_the_first_and_last_layer_and_at_most_sixteen(layers):
    stride = panel_stride(layers)
    shown = panel_layers(layers, stride)
    assert shown[0] == 1 and shown[-1] == layers
    assert len(shown) <= MAX_PANELS and shown == sorted(set(shown))
    assert str(stride)[0] in "125"
    if layers <= MAX_PANELS:
        assert shown == list(range(1, layers + 1))


def test_panel_curve_on_own_bins_and_on_a_grid():
    h = _histogram([0, 1, 1, 2, 3])
    x, y = panel_curve(h, None)
    assert x is h.edges and y.sum() == pytest.approx(1)
    grid = np.linspace(-1, 4, 6)
    x, y = panel_curve(h, grid)
    assert x is grid and y.sum() == pytest.approx(1)


def test_a_spike_is_clipped_and_an_even_histogram_is_not():
    assert panel_height(np.array([0.6, 0.1, 0.1, 0.1, 0.1])) == (pytest.approx(0.2), True)
    assert panel_height(np.array([0.3, 0.3, 0.4])) == (pytest.approx(0.4), False)
    assert panel_height(np.array([1.0, 0.0, 0.0])) == (1.0, False)  # one bin is the whole story


def test_depth_image_rows_are_relative_to_their_peak():
    hists = [_histogram([0, 0, 1]), None, histogram(np.array([]), 0.0, 0.0, 4)]
    grid = common_grid([h for h in hists if h is not None], 4)
    image = depth_image(hists, grid, log=False)
    assert image.shape == (3, 4)
    assert np.nanmax(image[0]) == 1 and np.all(np.isnan(image[1:]))
    logged = depth_image(hists, grid, log=True)
    assert np.nanmin(logged) == -4 and np.nanmax(logged) == 0


def test_a_depth_image_kept_as_layers_arrive_is_the_one_computed_afresh():
    """The heatmap's image kept between paints: layers arriving in any order, inside the grid and
    widening it, one without a finite value, one replaced, give the grid and image computed afresh."""
    empty = histogram(np.array([]), 0.0, 0.0, 4)
    arrivals = [(3, _histogram([0, 0, 1, 2])), (1, _histogram([0.5, 1, 1.5])), (4, empty),
                (2, _histogram([-3, 1, 1, 5])), (5, _histogram([1, 1, 1])), (1, _histogram([0, 1, 1, 9])),
                (5, empty)]
    kept = DepthImage(5, 8)
    hists: list = [None] * 5
    for layer, arrived in arrivals:
        kept.add(layer, arrived)
        hists[layer - 1] = arrived
        grid = common_grid([h for h in hists if h is not None], 8)
        for log in (False, True):
            kept_grid, image = kept.image(log)
            np.testing.assert_array_equal(kept_grid, grid)
            np.testing.assert_array_equal(image, depth_image(hists, grid, log))
    assert np.array_equal(DepthImage(2, 4).image(False)[0], common_grid([], 4))  # nothing arrived yet


def test_run_state_folds_events_and_tells_progress():
    config = SMALL.validated()
    state = RunState(config, run_id=4)
    assert np.all(np.isnan(state.series("pre_std")))
    events = list(simulate_stream(config))
    for event in events[: config.layers + 2]:
        state.add(event)
    assert state.progress_text() == f"backward pass, layer {config.layers - 1} of {config.layers}"
    grad = state.series("grad_std")
    assert np.isnan(grad[0]) and not np.isnan(grad[-1])
    for event in events[config.layers + 2:]:
        state.add(event)
    assert state.complete
    result = reference(config)
    np.testing.assert_array_equal(state.series("post_std"), [f.post.std for f in result.forward])
    assert state.stats("grad", 2).std == result.backward[1].grad.std


def test_reference_is_built_from_the_registries():
    html = reference_html()
    for name in (*SCHEMES, *ACTIVATIONS, *BIAS_INITS):
        assert f"<b>{name}</b>" in html
    for scheme in SCHEMES.values():
        assert scheme.pytorch.replace("'", "&#x27;").replace("<", "&lt;").replace(">", "&gt;") in html


def test_throttle_calls_once_at_once_and_once_after_a_burst(qtbot):
    calls = []
    parent = Throttle(0, lambda: None, None)  # a QObject to own the one under test
    throttle = Throttle(50, lambda: calls.append(len(calls)), parent)
    for _ in range(10):
        throttle.request()
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=TIMEOUT_MS)
    for _ in range(10):
        throttle.request()
    assert throttle.pending
    qtbot.waitUntil(lambda: not throttle.pending, timeout=TIMEOUT_MS)
    assert calls == [0, 1]


def test_worker_streams_every_event_in_order_and_reports_done():
    worker = StreamWorker()
    events, done = [], []
    worker.events_ready.connect(lambda run_id, batch: events.extend(batch))
    worker.run_done.connect(lambda run_id, seconds: done.append(run_id))
    config = SMALL.validated()
    worker.wanted_run = 7
    worker.run(simulation_job(config), 7)
    assert done == [7]
    expected = list(simulate_stream(config))
    assert [(type(e), e.index) for e in events] == [(type(e), e.index) for e in expected]


def test_worker_stops_when_another_run_is_wanted_and_skips_a_superseded_one():
    worker = StreamWorker()
    events, done = [], []

    def on_events(run_id, batch):
        events.extend(batch)
        worker.wanted_run = run_id + 1  # as the GUI does when a new run starts

    worker.events_ready.connect(on_events)
    worker.run_done.connect(lambda run_id, seconds: done.append(run_id))
    worker.wanted_run = 1
    worker.run(simulation_job(SimConfig(layers=50, width=8, batch=8)), 1)
    assert done == [] and 0 < len(events) < 100
    assert isinstance(events[0], ForwardEvent)
    worker.run(simulation_job(SMALL), 1)  # no longer wanted: not even started
    assert done == []


def test_a_paused_runner_sends_a_runs_first_event_and_holds_it_until_resumed(qtbot):
    runner = StreamRunner("paused")
    events, done = [], []
    runner.events.connect(lambda run_id, batch: events.extend(batch))
    runner.done.connect(lambda run_id, seconds: done.append(run_id))
    config = SMALL.validated()
    try:
        runner.pause()
        run_id = runner.start(simulation_job(config))
        assert runner.held.wait(TIMEOUT_S)
        qtbot.waitUntil(lambda: len(events) > 0, timeout=TIMEOUT_MS)
        assert len(events) == 1 and runner.busy and runner.held.is_set()  # held: nothing more computed
        runner.resume()
        qtbot.waitUntil(lambda: len(done) > 0, timeout=TIMEOUT_MS)
    finally:
        runner.shutdown()
    assert done == [run_id] and not runner.held.is_set()
    assert [(type(e), e.index) for e in events] == [(type(e), e.index) for e in simulate_stream(config)]


def test_events_sent_before_their_run_was_superseded_are_never_reported(qtbot):
    runner = StreamRunner("superseded")
    reported, done = [], []
    runner.events.connect(lambda run_id, batch: reported.append(run_id))
    runner.done.connect(lambda run_id, seconds: done.append(run_id))
    try:
        runner.pause()
        runner.start(simulation_job(SMALL))
        assert runner.held.wait(TIMEOUT_S)  # its first event is sent, not yet received
        second = runner.start(simulation_job(SMALL.replace(seed=4)))  # ends the held run
        runner.resume()
        qtbot.waitUntil(lambda: len(done) > 0, timeout=TIMEOUT_MS)
    finally:
        runner.shutdown()
    assert done == [second] and set(reported) == {second}


def test_an_unbatched_runner_sends_each_event_before_the_stream_stalls(qtbot):
    """A sweep's results: two may come at once, then none for a simulation's time. With batching,
    the second would wait for the next."""
    release = threading.Event()

    def stalling(should_stop):
        yield "first"
        yield "second"
        release.wait()

    runner = StreamRunner("unbatched", batch_seconds=0)
    received = []
    runner.events.connect(lambda run_id, batch: received.extend(batch))
    try:
        runner.start(stalling)
        qtbot.waitUntil(lambda: received == ["first", "second"], timeout=TIMEOUT_MS)
    finally:
        release.set()
        runner.shutdown()


def test_a_request_already_made_starts_no_second_job_and_the_pool_ends_with_the_runner(qtbot):
    """The lifecycle every view's background work shares (StreamRunner): the same request twice in a
    row is one job, a failed one may be asked for again, and shutdown ends the pool with the thread."""
    started, failures, done = [], [], []

    def job(name, fail=False):
        def run(should_stop):
            started.append(name)
            if fail:
                raise ValueError("no")
            yield name
        return run

    executors = []
    def executor():
        executors.append(ThreadPoolExecutor(1))
        return executors[-1]

    runner = StreamRunner("requests", pool=LazyPool(executor))
    runner.failed.connect(lambda run_id, message: failures.append(message))
    runner.done.connect(lambda run_id, seconds: done.append(run_id))
    try:
        runner.request("a", job("a"))
        qtbot.waitUntil(lambda: len(done) == 1, timeout=TIMEOUT_MS)
        runner.request("a", job("a again"))  # the one last finished: nothing starts
        runner.request("b", job("b", fail=True))
        qtbot.waitUntil(lambda: len(failures) == 1, timeout=TIMEOUT_MS)
        runner.request("b", job("b once more"))  # it failed: asked again, it runs
        qtbot.waitUntil(lambda: len(done) == 2, timeout=TIMEOUT_MS)
        runner.pool.get()
    finally:
        runner.shutdown()
    assert started == ["a", "b", "b once more"]
    assert not runner.pool.started and executors[0]._shutdown


def test_worker_reports_a_failure_instead_of_raising():
    worker = StreamWorker()
    failures = []
    worker.run_failed.connect(lambda run_id, message: failures.append(message))
    worker.wanted_run = 2
    worker.run(simulation_job(SMALL.replace(width=0)), 2)
    assert failures == ["the engine refused the config: width: got 0, expected an integer in [1, 4096]"]
