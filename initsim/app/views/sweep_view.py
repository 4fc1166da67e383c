"""The Sweep view: the network simulated over a grid of (sigma_w^2, sigma_b^2), each point a task
on a process pool, its measured depth scale filling in beside mean-field theory's."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from initsim.engine import ConfigError, SimConfig, get_activation
from initsim.engine.sweep import SweepResult, grid, local_pool, sweep
from initsim.engine.theory import PhaseDiagram, critical_line, phase_axes, phase_diagram

from ..model.runstate import RunState
from ..preferences import memory_limit
from ..runtime.controller import StreamRunner
from ..runtime.pools import LazyPool, core_count
from ..widgets import ProgressBar, named, note_label
from .phase_plot import PhasePlot, color_bar, levels, set_color_mode

GRID_SIZES = (4, 8, 12, 16, 24)  # points a side
DEFAULT_GRID = 12
CRITICAL_POINTS = 120  # the critical line is drawn through this many sigma_b^2 values
MODE = "depth"


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep covers, and the theory on the same grid: sent before the first result."""

    config: SimConfig  # the network swept (its own weights and bias replaced at each point)
    diagram: PhaseDiagram  # rows sigma_b^2, columns sigma_w^2: the grid's points
    critical_sigma_w2: np.ndarray  # the critical line through ...
    critical_sigma_b2: np.ndarray  # ... these sigma_b^2, finer than the grid's


def sweep_configs(config: SimConfig, diagram: PhaseDiagram) -> list[SimConfig]:
    """One config per grid point, in the diagram's C order: result i is row i // n, column i % n."""
    return grid(config, {"sigma_b2": diagram.sigma_b2, "sigma_w2": diagram.sigma_w2})


def sweep_job(config: SimConfig, size: int, executor: cf.Executor):
    """The plan, then each point's result as its task finishes."""
    limit = memory_limit()

    def events(should_stop) -> Iterator[object]:
        act, params = get_activation(config.activation), dict(config.activation_params)
        sigma_w2, sigma_b2 = phase_axes(act, params, size)
        diagram = phase_diagram(act, params, sigma_w2, sigma_b2)
        fine_b2 = np.linspace(sigma_b2[0], sigma_b2[-1], CRITICAL_POINTS)
        yield SweepPlan(config, diagram, critical_line(act, params, fine_b2), fine_b2)
        yield from sweep(sweep_configs(config, diagram), executor, should_stop=should_stop, memory_limit=limit)
    return events


def network_words(config: SimConfig) -> str:
    return (f"{config.layers} \u00d7 {config.width} {config.activation}, batch {config.batch}, "
            f"{config.dtype}, seed {config.seed}")


class SweepView(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.config: SimConfig | None = None  # the controls' network, as last painted
        self.run_seconds: float | None = None  # how long one simulation of it took
        self.plan: SweepPlan | None = None
        self.measured_chi1 = np.full((0, 0), np.nan)  # per grid point, NaN until measured
        self.finished = np.zeros((0, 0), bool)
        self.running = False
        self._started = 0.0
        self.workers = core_count()
        # One result per simulation: each is sent as it comes (batched, one could wait for the next).
        self.runner = StreamRunner("sweep", parent=self, batch_seconds=0,
                                   pool=LazyPool(lambda: local_pool(self.workers)))
        self.runner.events.connect(self._on_events)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)

        self.grid_choice = named(QComboBox(), "sweep_grid", "Grid points along \u03c3w\u00b2 and along "
                                 "\u03c3b\u00b2: each point is one simulation of the network")
        for n in GRID_SIZES:
            self.grid_choice.addItem(f"{n} \u00d7 {n}", n)
        self.grid_choice.setCurrentIndex(GRID_SIZES.index(DEFAULT_GRID))
        self.grid_choice.currentIndexChanged.connect(self._describe_next)
        # The run button's tooltip says what it will sweep (set with the config).
        self.run_button = named(QPushButton("Run sweep"), "sweep_run", "")
        self.run_button.clicked.connect(self.run)
        self.stop_button = named(QPushButton("Stop"), "sweep_stop", "Stop the sweep: the tasks not "
                                 "started are cancelled, the points measured stay")
        self.stop_button.clicked.connect(self.stop)
        self._set_running(False)
        self.progress = named(ProgressBar(), "sweep_progress", "Grid points simulated")
        self.progress.setFixedWidth(150)
        self.progress.setFormat("%v / %m")
        self.status = named(QLabel(), "sweep_status", "How the sweep stands: points done, points a "
                            "second, time left")
        # The status takes the room left and never widens the window.
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(6, 4, 6, 0)
        toolbar.addWidget(QLabel("Grid"))
        toolbar.addWidget(self.grid_choice)
        toolbar.addWidget(self.run_button)
        toolbar.addWidget(self.stop_button)
        toolbar.addWidget(self.progress)
        toolbar.addWidget(self.status, 1)
        self.caption = note_label(name="sweep_caption", tooltip="What the sweep covers and measures")
        self.caption.setContentsMargins(6, 0, 6, 0)

        self.plots = pg.GraphicsLayoutWidget()
        self.measured = PhasePlot(self.plots.addPlot(row=0, col=0), "Measured depth scale")
        self.theory = PhasePlot(self.plots.addPlot(row=0, col=1), "Mean-field depth scale")
        self.bar = color_bar([self.measured.image, self.theory.image])
        self.plots.addItem(self.bar, row=0, col=2)
        set_color_mode(self.bar, MODE, levels(MODE, np.ones(1)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.caption)
        layout.addWidget(self.plots, 1)
        self._describe_next()

    # --- the window's calls -------------------------------------------------------------------

    def show_state(self, state: RunState) -> None:
        if state.complete and state.seconds is not None:
            self.run_seconds = state.seconds
        if state.config != self.config:
            self.config = state.config
            self._describe_next()

    def shutdown(self) -> None:
        self.runner.shutdown()
        self.running = False

    # --- running --------------------------------------------------------------------------

    @property
    def grid_size(self) -> int:
        return int(self.grid_choice.currentData())

    def run(self) -> None:
        """Sweep the network the window shows over the chosen grid."""
        if self.config is None:
            return
        self.plan = None
        self.measured_chi1 = np.full((self.grid_size, self.grid_size), np.nan)
        self.finished = np.zeros(self.measured_chi1.shape, bool)
        self.measured.image.clear()
        self._started = time.perf_counter()
        self.runner.start(sweep_job(self.config, self.grid_size, self.runner.pool.get()))
        self._set_running(True)
        self.progress.setRange(0, self.measured_chi1.size)
        self.progress.setValue(0)
        self.status.setText("Starting the workers\u2026" if not self.runner.pool.started else "Running\u2026")

    def stop(self) -> None:
        if self.running:
            self.runner.cancel()
            self._set_running(False)
            self.status.setText(f"Stopped: {self._progress_words()}.")

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.run_button.setEnabled(not running and self.config is not None)
        self.stop_button.setEnabled(running)
        self.grid_choice.setEnabled(not running)

    @Slot(int, object)
    def _on_events(self, run_id: int, events: list) -> None:
        for event in events:
            if isinstance(event, SweepPlan):
                self._show_plan(event)
            else:
                self._fold(event)
        self._show_measured()
        done = int(self.finished.sum())
        self.progress.setValue(done)
        if done:
            seconds = time.perf_counter() - self._started
            left = (self.finished.size - done) * seconds / done
            self.status.setText(f"{self._progress_words()}: {done / seconds:.1f} points/s, about "
                                f"{left:.0f} s left")

    @Slot(int, float)
    def _on_done(self, run_id: int, seconds: float) -> None:
        self._set_running(False)
        self.status.setText(f"Done: {self.finished.size} points in {seconds:.1f} s "
                            f"({self.finished.size / seconds:.1f} points/s).")

    @Slot(int, str)
    def _on_failed(self, run_id: int, message: str) -> None:
        self._set_running(False)
        self.status.setText(f"The sweep failed: {message}")

    def _progress_words(self) -> str:
        return f"{int(self.finished.sum())} of {self.finished.size} points"

    # --- painting -------------------------------------------------------------------------

    def _fold(self, result: SweepResult) -> None:
        row, column = divmod(result.index, self.grid_size)
        self.measured_chi1[row, column] = result.measured_chi1
        self.finished[row, column] = True

    def _show_plan(self, plan: SweepPlan) -> None:
        self.plan = plan
        diagram = plan.diagram
        level_range = levels(MODE, diagram.chi1)
        for phase_plot in (self.measured, self.theory):
            phase_plot.set_grid(diagram.sigma_w2, diagram.sigma_b2)
            phase_plot.set_critical_line(plan.critical_sigma_w2, plan.critical_sigma_b2)
        self.theory.show(MODE, diagram.chi1, level_range)
        self.theory.plot.setTitle(f"Mean-field depth scale: {diagram.activation}", size="10pt")
        self.caption.setText(
            f"Sweeping {network_words(plan.config)}, with Gaussian weights and a normal bias at each point. "
            "Measured: the depth over which the gradient's variance changes by a factor e, fitted over "
            f"the {plan.config.layers} layers (a net cannot tell depth scales much beyond its depth). "
            "Dashed: the critical line."
            + (f" The theory is of the plain network; this one has {plan.config.norm} normalization."
               if plan.config.norm != "none" else ""))
        self.caption.setToolTip("The measured depth scale is 1 / |ln chi|, chi the exp of the slope of a "
                                "straight line through ln Var(dL/dh) over the layers. Points whose gradient "
                                "vanished or overflowed within two layers have no slope: they are drawn "
                                "at the bottom of the scale.")

    def measured_image_chi1(self) -> np.ndarray:
        """The measured chi_1 as drawn: NaN where not measured yet, 0 (no depth at all) where the
        measurement found fewer than two layers with a finite, nonzero gradient."""
        return np.where(self.finished & np.isnan(self.measured_chi1), 0.0, self.measured_chi1)

    def _show_measured(self) -> None:
        if self.plan is None:
            return
        self.measured.show(MODE, self.measured_image_chi1(), levels(MODE, self.plan.diagram.chi1))

    def _describe_next(self) -> None:
        if self.config is None:
            self.run_button.setToolTip("Sweep the network shown (once a run has been painted)")
            return
        try:  # the engine's refusal of this network's grid, if any (residual blocks): one point says it
            grid(self.config, {"sigma_b2": [0.0], "sigma_w2": [1.0]})
        except ConfigError as exc:
            self.run_button.setEnabled(False)
            self.run_button.setToolTip(str(exc))
            self.caption.setText(f"No sweep of this network: {exc}.")
            return
        points = self.grid_size ** 2
        estimate = ""
        if self.run_seconds is not None:
            estimate = (f"; one simulation took {self.run_seconds * 1000:.0f} ms, so about "
                        f"{points * self.run_seconds / self.workers:.0f} s on {self.workers} workers")
        self.run_button.setEnabled(not self.running)
        self.run_button.setToolTip(f"Simulate {network_words(self.config)} at {points} points of "
                                   f"(\u03c3w\u00b2, \u03c3b\u00b2){estimate}")
        if self.plan is None:
            self.caption.setText(f"Run sweeps the network on screen ({network_words(self.config)}) over "
                                 f"{points} points of the phase diagram, one simulation each on a pool of "
                                 "worker processes, and draws the measured depth scale beside the "
                                 "mean-field theory's.")
