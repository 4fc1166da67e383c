"""What the window knows of one run: the events received so far, by layer. No Qt here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from initsim.engine import BackwardEvent, ForwardEvent, LayerEvent, SimConfig, Stats
from initsim.engine.diagnosis import Finding, diagnose

# The three quantities a histogram can show, as (key, label).
QUANTITIES = (("pre", "Pre-activations"), ("post", "Activations"), ("grad", "Gradients"))


@dataclass
class RunState:
    """The events of run ``run_id`` of ``config`` (validated), folded in as they arrive."""

    config: SimConfig
    run_id: int
    forward: list[ForwardEvent | None] = field(init=False)
    backward: list[BackwardEvent | None] = field(init=False)
    # Every event in the order it arrived: a view that keeps what it drew (the depth heatmap)
    # reads on from where it stopped, rather than every layer at every paint.
    arrived: list[LayerEvent] = field(init=False, repr=False)
    received: int = 0  # events folded in so far
    started: float = field(default_factory=time.perf_counter)
    seconds: float | None = None  # the engine's time, once the run is done
    stopped: bool = False  # cancelled before its end (Stop)
    error: str | None = None

    _series: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.forward = [None] * self.config.layers
        self.backward = [None] * self.config.layers
        self.arrived = []
        # Filled in as the events arrive: the window reads every series at every paint, and a
        # loop over a deep net's layers there costs the GUI thread milliseconds.
        self._series = {name: np.full(self.layers, np.nan) for name in _SERIES}

    @property
    def layers(self) -> int:
        return self.config.layers

    @property
    def total(self) -> int:
        return 2 * self.config.layers

    @property
    def complete(self) -> bool:
        return self.received == self.total

    def add(self, event: LayerEvent) -> None:
        side = self.forward if isinstance(event, ForwardEvent) else self.backward
        side[event.index - 1] = event
        self.arrived.append(event)
        self.received += 1
        i = event.index - 1
        for name, value_of in _SERIES.items():
            value = value_of(self.forward[i], self.backward[i])
            if value is not None:
                self._series[name][i] = value

    def stats(self, quantity: str, layer: int) -> Stats | None:
        """The Stats of ``quantity`` ("pre", "post" or "grad") at 1-based ``layer``, if it arrived."""
        if quantity == "grad":
            event = self.backward[layer - 1]
            return None if event is None else event.grad
        event = self.forward[layer - 1]
        return None if event is None else getattr(event, quantity)

    def series(self, name: str) -> np.ndarray:
        """One value per layer, NaN where the layer has not arrived (or has no such value).

        Names: pre_std, post_std, grad_std (measured), theory_pre_std, theory_post_std (a residual
        stream's; NaN for a plain network), theory_grad_std,
        dead_fraction, saturated_fraction, sample_correlation (measured),
        theory_sample_correlation.
        """
        return self._series[name].copy()

    def diagnosis(self) -> list[Finding]:
        """The engine's findings from the layers received so far."""
        return diagnose(self.config, self.forward, self.backward)

    def progress_text(self) -> str:
        """Where the run is, in words: "forward pass, layer 7 of 20" or "backward pass, layer 12"."""
        if self.received < self.layers:
            return f"forward pass, layer {self.received} of {self.layers}"
        if self.received < self.total:
            return f"backward pass, layer {self.total - self.received + 1} of {self.layers}"
        return f"{self.layers} layers forward and back"


_SERIES = {
    "pre_std": lambda f, b: None if f is None else f.pre.std,
    "post_std": lambda f, b: None if f is None else f.post.std,
    "grad_std": lambda f, b: None if b is None else b.grad.std,
    "theory_pre_std": lambda f, b: None if f is None else f.theory_pre_std,
    "theory_post_std": lambda f, b: None if f is None else f.theory_post_std,
    "theory_grad_std": lambda f, b: None if b is None else b.theory_grad_std,
    "dead_fraction": lambda f, b: None if f is None else f.dead_fraction,
    "saturated_fraction": lambda f, b: None if f is None else f.saturated_fraction,
    "sample_correlation": lambda f, b: None if f is None else f.geometry.correlation,
    "theory_sample_correlation": lambda f, b: None if f is None else f.theory_sample_correlation,
}
