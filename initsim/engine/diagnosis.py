"""What went wrong in a simulation, and where, in plain words: one diagnosis for the window, the
command line and the exports.

A finding has a kind, the layer where it shows and a message. Warnings are faults of the init:

- ``nonfinite``: inf or NaN in the forward or backward pass;
- ``symmetric``: every unit of a layer computes the same value for each sample (identical weights,
  a zeros or constant init); their gradients are equal too, so training cannot make them differ;
- ``exploded`` / ``vanished``: a std past 1e6 or below 1e-6, or changing by more than 100x from
  the first layer to the last (forward) or from the last layer back to the first (gradients);
- ``dead``: ReLU-like units that give 0 for every sample, more than the batch's correlation explains;
- ``saturated``: tanh- or sigmoid-like outputs in their flat tails.

Information, not a fault:

- ``collapsed``: the batch's samples have become nearly the same vector (mean correlation >= 0.99);
  mean-field theory predicts it at depth for many healthy inits (c* = 1), and it is why a deep
  ReLU net's units end up on or off for all samples alike;
- ``underflow``: values below the dtype's smallest normal, and what became of them.

Every function takes the layers' events as they arrived (None where one has not), so a partial run
is diagnosed from what it has.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import SimConfig
from .gauss import gauss_expectation
from .simulate import BackwardEvent, ForwardEvent

VANISHED_STD = 1e-6  # an activation or gradient std below this has vanished
EXPLODED_STD = 1e6
DRIFT_RATIO = 100.0  # a std changing by more than this from the first layer to the last drifts
REPORTED_FRACTION = 0.25  # dead or saturated units worth a warning
# A layer's units within this spread of each other (`SampleGeometry.unit_spread`) are identical:
# float32 rounding leaves identical columns ~1e-7 apart, independent units are ~1 apart.
SYMMETRIC_SPREAD = 1e-3
COLLAPSED_CORRELATION = 0.99
# Dead units beyond what the batch's correlation explains (`expected_dead_fraction`): this margin
# plus 4 binomial standard deviations over the layer's units. The batch's pairs are not exactly
# equicorrelated, which leaves a few percent more dead units than the model (measured: He + ReLU,
# 50 layers of 256).
DEAD_MARGIN = 0.05

WARNING_KINDS = ("nonfinite", "symmetric", "exploded", "vanished", "dead", "saturated")
INFORMATION_KINDS = ("collapsed", "underflow")


@dataclass(frozen=True)
class Finding:
    kind: str  # one of WARNING_KINDS or INFORMATION_KINDS
    layer: int  # 1-based, where it shows first (or, for a drift, the end it reached)
    message: str

    @property
    def is_warning(self) -> bool:
        return self.kind in WARNING_KINDS

    def to_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "message": self.message}


# What a run without warnings has shown, in the same plain words.
ALL_CLEAR = (f"every value finite, activation and gradient std within {DRIFT_RATIO:g}x of where they "
             f"start, no dead or saturated units beyond {REPORTED_FRACTION:.0%}, no identical units")


def diagnose(config: SimConfig, forward: Sequence[ForwardEvent | None],
             backward: Sequence[BackwardEvent | None]) -> list[Finding]:
    """The findings of a (validated) config's run from the events so far, warnings first, the most
    serious first. ``forward[l - 1]`` and ``backward[l - 1]`` are layer l's events or None."""
    arrived = [f for f in forward if f is not None]
    found = [*_forward_findings(arrived, config.part), *_unit_findings(config, arrived),
             *_gradient_findings(config, [b for b in reversed(backward) if b is not None]),
             *_collapse_findings(config, arrived), *_underflow_findings(config, forward, backward)]
    return sorted(found, key=lambda f: not f.is_warning)  # stable: the order above within each group


def percent(fraction: float) -> str:
    """A fraction as a whole percentage, rounded down: 100% only when it is all."""
    return f"{math.floor(fraction * 100)}%" if fraction < 1 else "100%"


def _first(mask: np.ndarray) -> int | None:
    """The 0-based index of the first true entry, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _forward_findings(arrived: list[ForwardEvent], part: str) -> list[Finding]:
    if not arrived:
        return []
    found = []
    nonfinite = _first(np.array([f.pre.nonfinite + f.post.nonfinite > 0 for f in arrived]))
    if nonfinite is not None:
        return [Finding("nonfinite", arrived[nonfinite].index,
                        f"exploded: non-finite values (inf or NaN) at {part} {arrived[nonfinite].index}")]
    # Identical units from identical weights (std 0: every weight of the layer is the same), not
    # from an input that no longer varies (dead or vanished units below, found as such).
    symmetric = _first(np.array([f.weight_std == 0 and f.geometry.unit_spread < SYMMETRIC_SPREAD
                                 for f in arrived]))
    if symmetric is not None:
        layer = arrived[symmetric].index
        found.append(Finding("symmetric", layer, (
            f"symmetric: from {part} {layer} every unit computes the same value for each sample (identical "
            "weights, as a zeros or constant init gives); their gradients are identical too, so training "
            "cannot make them differ")))
    std = np.array([f.post.std for f in arrived])
    exploding = _first(std > EXPLODED_STD)
    if exploding is not None:
        layer = arrived[exploding].index
        return [*found, Finding("exploded", layer,
                                f"exploding: activation std above {EXPLODED_STD:.0e} from {part} {layer}")]
    vanished = _first(std < VANISHED_STD)
    if vanished is not None:
        layer = arrived[vanished].index
        return [*found, Finding("vanished", layer,
                                f"signal vanished: activation std < {VANISHED_STD:.0e} from {part} {layer}")]
    return [*found, *_drift("activation std", std, [1, arrived[-1].index], "shrinking", "growing", part)]


def _drift(what: str, std: np.ndarray, layers: list[int], shrinks: str, grows: str, part: str) -> list[Finding]:
    """A finding when ``std`` changes by more than DRIFT_RATIO from its first entry to its last;
    ``layers`` are the entries' layers, in the direction the signal travels."""
    if len(std) < 2 or not std[0] > 0:
        return []
    ratio = std[-1] / std[0]
    if 1 / DRIFT_RATIO <= ratio <= DRIFT_RATIO:
        return []
    return [Finding("vanished" if ratio < 1 else "exploded", layers[-1],
                    f"{what} {shrinks if ratio < 1 else grows}: {std[0]:.3g} at {part} {layers[0]}, "
                    f"{std[-1]:.3g} at {part} {layers[-1]}")]


_erfc = np.vectorize(math.erfc, otypes=[float])


@functools.lru_cache(maxsize=4096)  # asked again for the same layers at every update of a run
def expected_dead_fraction(correlation: float, batch: int) -> float:
    """The fraction of ReLU-like units negative for all ``batch`` samples when the samples'
    pre-activations are jointly normal with mean 0 and pairwise ``correlation`` (mean-field's, over
    the weights): h_a = sqrt(c) z_0 + sqrt(1 - c) z_a, so P = E_z0[Phi(-sqrt(c / (1 - c)) z_0)^batch].
    Independent samples leave none dead (2^-batch); identical ones half."""
    c = min(max(correlation, 0.0), 1.0) if math.isfinite(correlation) else 0.0
    if c >= 1.0:
        return 0.5
    slope = math.sqrt(c / (1 - c))

    def all_negative(z: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):  # Phi = 0 far out: log -inf, exp 0
            return np.exp(batch * np.log(0.5 * _erfc(slope * z / math.sqrt(2))))

    return float(gauss_expectation(all_negative, 1.0))


def _worst(fractions: np.ndarray) -> tuple[float, int]:
    """The largest fraction and its 0-based position (the first, on a tie)."""
    if not fractions.size or np.all(np.isnan(fractions)):
        return 0.0, 0
    at = int(np.nanargmax(fractions))
    return float(fractions[at]), at


def _unexplained_dead(config: SimConfig, event: ForwardEvent) -> float:
    """How many more of the layer's units are dead than the batch's correlation explains."""
    expected = expected_dead_fraction(event.geometry.correlation, config.batch)
    units = config.fans(event.index)[1]  # a checkpoint's layers differ in width
    noise = 4 * math.sqrt(max(expected * (1 - expected), 1e-12) / units)
    return event.dead_fraction - expected - DEAD_MARGIN - noise


def _unit_findings(config: SimConfig, arrived: list[ForwardEvent]) -> list[Finding]:
    if not arrived:
        return []
    name, part, found = config.activation, config.part, []
    candidates = [f for f in arrived if f.dead_fraction >= REPORTED_FRACTION]
    dead = [f for f in candidates if _unexplained_dead(config, f) > 0]
    if dead:
        worst = max(dead, key=lambda f: f.dead_fraction)
        found.append(Finding("dead", worst.index,
                             f"{percent(worst.dead_fraction)} of {name} units dead at {part} {worst.index}"))
    saturated, at = _worst(np.array([f.saturated_fraction for f in arrived]))
    if saturated >= REPORTED_FRACTION:
        layer = arrived[at].index
        found.append(Finding("saturated", layer, f"{name} saturated: {percent(saturated)} of units at {part} {layer}"))
    return found


def _gradient_findings(config: SimConfig, arrived: list[BackwardEvent]) -> list[Finding]:
    """``arrived``: the backward events so far, in the order the backward pass runs (last layer first)."""
    if not arrived:
        return []
    part = config.part
    nonfinite = _first(np.array([b.grad.nonfinite > 0 for b in arrived]))
    if nonfinite is not None:
        layer = arrived[nonfinite].index
        return [Finding("nonfinite", layer, f"gradients exploded: non-finite values at {part} {layer}")]
    std = np.array([b.grad.std for b in arrived])
    vanished = _first(std < VANISHED_STD)
    if vanished is not None:
        layer = arrived[vanished].index
        return [Finding("vanished", layer, f"gradients vanished: gradient std < {VANISHED_STD:.0e} from "
                                           f"{part} {layer} back to {part} 1")]
    if len(arrived) < config.layers:
        return []
    # Both ends have arrived: compare the gradient the first layer gets with the last layer's.
    return _drift("gradients", std, [config.layers, 1], "vanishing", "exploding", part)


def _collapse_findings(config: SimConfig, arrived: list[ForwardEvent]) -> list[Finding]:
    correlation = np.array([f.geometry.correlation for f in arrived])
    with np.errstate(invalid="ignore"):
        first = _first(correlation >= COLLAPSED_CORRELATION)
    if first is None:
        return []
    start, last = arrived[first], arrived[-1]
    part = config.part
    theory = last.theory_sample_correlation
    message = (f"collapsed (information): from {part} {start.index} the batch's samples are nearly the same "
               f"vector (mean correlation {start.geometry.correlation:.3f}; {last.geometry.correlation:.3f} at "
               f"{part} {last.index}" + (f", mean-field theory {theory:.3f})" if theory is not None else ")"))
    explained = [f for f in arrived if f.dead_fraction >= REPORTED_FRACTION and _unexplained_dead(config, f) <= 0]
    if explained:
        worst = max(explained, key=lambda f: f.dead_fraction)
        message += (f"; so units are on or off for all samples alike: {percent(worst.dead_fraction)} of "
                    f"{config.activation} units give 0 for every sample at {part} {worst.index}, as a batch "
                    "this correlated makes them")
    return [Finding("collapsed", start.index, message)]


def _underflow_findings(config: SimConfig, forward: Sequence[ForwardEvent | None],
                        backward: Sequence[BackwardEvent | None]) -> list[Finding]:
    """Where values first fell below the dtype's smallest normal, forward and backward, and what
    became of them (the config's ``subnormals``)."""
    below = f"values below {config.dtype}'s smallest normal ({np.finfo(config.dtype).tiny:.2g})"
    fate = "flushed to zero" if config.subnormals == "flush" else "kept (IEEE, slow on many CPUs)"
    first = next((f.index for f in forward if f is not None and f.subnormal), None)
    back = next((b.index for b in reversed(backward) if b is not None and b.subnormal), None)
    part = config.part
    return [*([Finding("underflow", first, f"underflow: {below} from {part} {first}, {fate}")]
              if first is not None else []),
            *([Finding("underflow", back, f"gradient underflow: {below} from {part} {back} back to {part} 1, {fate}")]
              if back is not None else [])]
