"""The Compare tab while it runs: each run is drawn as it finishes, a scheme's line with its first
seed and its band with its second, and the legend says how many of each scheme's seeds are in;
stopping or a control change keeps what is drawn."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QAbstractSpinBox
from threadpoolctl import threadpool_limits

from initsim.app.views.compare_view import scheme_config
from initsim.app.views.plotstyle import positive
from initsim.engine import ConfigError
from initsim.engine import compare as engine_compare
from initsim.engine.compare import CompareProgress, compare_stream
from initsim.engine.simulate import simulate_stream

from appcheck import SMALL, TIMEOUT_MS, TIMEOUT_S, nan_equal

SCHEMES = ["xavier_normal", "kaiming_normal", "zeros"]
RESIDUAL = SMALL.replace(residual="pre", norm="layer", branch_scale="1/sqrt(L)", activation="relu",
                         init="kaiming_normal", layers=6)


def _draws_nothing(curve) -> bool:
    return curve.xData is None or len(curve.xData) == 0


class RunGate:
    """Stands in for the comparison's simulations: each run waits at its start until the test lets
    it go. With the view's runner paused, a test steps a comparison one run at a time (`step`)."""

    def __init__(self) -> None:
        self.arrived = threading.Semaphore(0)  # released by each run that comes to the gate
        self._permits = threading.Semaphore(0)
        self._opened = threading.Event()

    def simulate_stream(self, config, should_stop, memory_limit):
        self.arrived.release()
        while not self._opened.is_set() and not self._permits.acquire(timeout=0.01):
            if should_stop():  # cancelled or shut down while at the gate
                return
        yield from simulate_stream(config, should_stop, memory_limit)

    def open(self) -> None:
        """Let every run go, now and from now on."""
        self._opened.set()

    def step(self, qtbot, view) -> None:
        """Let the view's comparison run its next run; return once the run's event is painted and
        the comparison held after it."""
        done = view.progress.value()
        view.runner.resume()  # the run held, if any, goes on to the gate
        assert self.arrived.acquire(timeout=TIMEOUT_S), "no run came to the gate"
        view.runner.pause()  # the run let go is then held once it has sent its event
        self._permits.release()
        assert view.runner.held.wait(TIMEOUT_S), "the run was not held after its event"
        qtbot.waitUntil(lambda: view.progress.value() == done + 1, timeout=TIMEOUT_MS)


def _start_gated_comparison(qtbot, make_window, monkeypatch):
    """A window's Compare tab comparing SCHEMES over two seeds with training, held after its first
    run; its gate; and the engine's events for that comparison."""
    window = make_window()
    view = window.compare
    window.tabs.setCurrentWidget(view)
    view.settings.steps.setValue(15)
    view.settings.batch.setValue(32)
    network = SMALL.validated()
    with threadpool_limits(1):
        events = list(compare_stream([scheme_config(network, name) for name in SCHEMES],
                                     [SMALL.seed, SMALL.seed + 1], view.settings.training()))
    gate = RunGate()
    monkeypatch.setattr(engine_compare, "simulate_stream", gate.simulate_stream)
    view.compare(SCHEMES, seeds=2, training=True)
    gate.step(qtbot, view)
    return view, gate, events


def _assert_draws(view, slot: int, event: CompareProgress) -> None:
    """``slot`` draws the scheme's bands as they stand after ``event``: its line from one seed on,
    its min..max from two."""
    for field, items in view.bands.items():
        band, item = getattr(event.run, field), items[slot]
        nan_equal(item.median.yData, positive(band.median))
        if len(event.run.seeds) == 1:
            assert _draws_nothing(item.low) and _draws_nothing(item.high)
        else:
            nan_equal(item.low.yData, positive(band.low))
            nan_equal(item.high.yData, positive(band.high))


def test_compare_draws_each_run_as_it_finishes_with_its_schemes_seed_count(qtbot, make_window, monkeypatch):
    """The lecturer saw '0 of 6 runs' and empty plots for minutes: the first scheme's line comes
    with its first run, its band with its second seed, while the other runs are still to go."""
    view, gate, events = _start_gated_comparison(qtbot, make_window, monkeypatch)
    curves = view.activation_plot.listDataItems()
    assert view.running
    _assert_draws(view, 0, events[0])
    assert all(_draws_nothing(item.median) for items in view.bands.values() for item in items[1:])
    labels = [label.text for _, label in view.legend.items]
    assert labels == ["xavier_normal: 1 of 2 seeds", "kaiming_normal: 0 of 2 seeds", "zeros: 0 of 2 seeds"]
    assert view.progress.text() == "1 of 6 runs" and "1 of 6 runs done" in view.status.text()
    for _ in range(3):  # the others' first seeds, then the first scheme's second
        gate.step(qtbot, view)
    assert [(e.config_index, len(e.run.seeds)) for e in events[:4]] == [(0, 1), (1, 1), (2, 1), (0, 2)]
    for slot, event in ((0, events[3]), (1, events[1]), (2, events[2])):
        _assert_draws(view, slot, event)
    labels = [label.text for _, label in view.legend.items]
    assert labels[:2] == ["xavier_normal", "kaiming_normal: 1 of 2 seeds"]
    assert labels[2].startswith("zeros: 1 of 2 seeds (activation std 0")
    assert view.activation_plot.listDataItems() == curves  # updated, not made anew
    gate.open()
    view.runner.resume()
    qtbot.waitUntil(lambda: not view.running and view.result is not None, timeout=TIMEOUT_MS)
    for slot, event in enumerate(events[-4:-1]):  # the last round: every scheme over both seeds
        _assert_draws(view, slot, event)
    assert [label.text for _, label in view.legend.items][:2] == SCHEMES[:2]
    assert view.status.text().startswith("Done: 3 schemes \u00d7 2 seeds")


def test_stop_keeps_the_runs_drawn_and_says_how_many_seeds_each_scheme_has(qtbot, make_window, monkeypatch):
    view, gate, events = _start_gated_comparison(qtbot, make_window, monkeypatch)
    gate.step(qtbot, view)
    view.stop()
    assert not view.running and not view.runner.busy
    assert view.status.text().startswith("Stopped after 2 of 6 runs")
    for slot in (0, 1):
        _assert_draws(view, slot, events[slot])
    assert _draws_nothing(view.bands["activation_std"][2].median)
    assert [label.text for _, label in view.legend.items] == [
        "xavier_normal: 1 of 2 seeds", "kaiming_normal: 1 of 2 seeds", "zeros: 0 of 2 seeds"]


def test_a_control_change_cancels_the_comparison_and_keeps_its_runs_drawn(qtbot, make_window, monkeypatch):
    view, gate, events = _start_gated_comparison(qtbot, make_window, monkeypatch)
    view.window().findChild(QAbstractSpinBox, "layers").setValue(SMALL.layers + 1)
    assert not view.running and view.start_button.isEnabled() and not view.runner.busy
    status = view.status.text()
    assert "controls changed" in status and "earlier network (5 \u00d7 16 tanh" in status
    _assert_draws(view, 0, events[0])
    assert view.progress.value() == 1


def test_compare_puts_a_plain_network_beside_residual_blocks(qtbot, make_window):
    window = make_window(RESIDUAL)
    view = window.compare
    window.tabs.setCurrentWidget(view)
    view.compare(["kaiming_normal (plain)", "kaiming_normal"], seeds=2)
    assert view.plain_toggles[0].isChecked() and not view.plain_toggles[1].isChecked()
    assert view.picked() == ["kaiming_normal (plain)", "kaiming_normal"]
    qtbot.waitUntil(lambda: not view.running and view.result is not None, timeout=TIMEOUT_MS)
    plain, blocks = (run.config for run in view.result.runs)
    assert (plain.residual, plain.norm) == ("none", "none") and plain.layers == RESIDUAL.layers
    assert blocks == RESIDUAL.validated().replace(seed=blocks.seed)
    labels = [label.text for _, label in view.legend.items]
    assert labels == ["kaiming_normal (plain)", "kaiming_normal"]
    with pytest.raises(ConfigError):
        view.compare(["no_such_scheme (plain)"])
