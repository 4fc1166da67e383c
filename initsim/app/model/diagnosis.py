"""Plain-language warnings about a run, each naming the layer where the trouble shows. No Qt."""

from __future__ import annotations

import math

import numpy as np

from .runstate import RunState

VANISHED_STD = 1e-6  # an activation or gradient std below this has vanished
EXPLODED_STD = 1e6
DRIFT_RATIO = 100.0  # a std changing by more than this from the first layer to the last drifts
# Dead or saturated units worth a warning. Not lower: even He-initialized ReLU nets, the healthy case,
# reach ~20% dead units by layer 20 on a fixed batch, as the inputs grow correlated with depth.
REPORTED_FRACTION = 0.25


# What a run without warnings has shown, in the same plain words.
ALL_CLEAR = (f"every value finite, activation and gradient std within {DRIFT_RATIO:g}x of where they "
             f"start, fewer than {REPORTED_FRACTION:.0%} of units dead or saturated")


def diagnose(state: RunState) -> list[str]:
    """Warnings about the layers received so far, most serious first."""
    return [w for w in (*_forward_warnings(state), *_unit_warnings(state), *_gradient_warnings(state),
                        *_underflow_warnings(state)) if w]


def _first(mask: np.ndarray) -> int | None:
    """The 1-based index of the first true entry, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) + 1 if hits.size else None


def _forward_warnings(state: RunState) -> list[str | None]:
    arrived = [f for f in state.forward if f is not None]
    if not arrived:
        return []
    nonfinite = _first(np.array([f.pre.nonfinite + f.post.nonfinite > 0 for f in arrived]))
    if nonfinite is not None:
        return [f"exploded: non-finite values (inf or NaN) at layer {nonfinite}"]
    std = np.array([f.post.std for f in arrived])
    exploding = _first(std > EXPLODED_STD)
    if exploding is not None:
        return [f"exploding: activation std above {EXPLODED_STD:.0e} from layer {exploding}"]
    vanished = _first(std < VANISHED_STD)
    if vanished is not None:
        return [f"signal vanished: activation std < {VANISHED_STD:.0e} from layer {vanished}"]
    return [_drift("activation std", std, [1, len(std)], "shrinking", "growing")]


def _drift(what: str, std: np.ndarray, layers: list[int], shrinks: str, grows: str) -> str | None:
    """A warning when ``std`` changes by more than DRIFT_RATIO from its first entry to its last;
    ``layers`` are the entries' layers, in the direction the signal travels."""
    if len(std) < 2 or not std[0] > 0:
        return None
    ratio = std[-1] / std[0]
    if 1 / DRIFT_RATIO <= ratio <= DRIFT_RATIO:
        return None
    return (f"{what} {shrinks if ratio < 1 else grows}: {std[0]:.3g} at layer {layers[0]}, "
            f"{std[-1]:.3g} at layer {layers[-1]}")


def _unit_warnings(state: RunState) -> list[str | None]:
    if state.forward[0] is None:
        return []
    name = state.config.activation
    dead, dead_layer = _worst(state.series("dead_fraction"))
    saturated, saturated_layer = _worst(state.series("saturated_fraction"))
    return [
        f"{percent(dead)} of {name} units dead at layer {dead_layer}" if dead >= REPORTED_FRACTION else None,
        f"{name} saturated: {percent(saturated)} of units at layer {saturated_layer}"
        if saturated >= REPORTED_FRACTION else None,
    ]


def _worst(fractions: np.ndarray) -> tuple[float, int]:
    """The largest fraction that arrived and its 1-based layer (the first, on a tie)."""
    if np.all(np.isnan(fractions)):
        return 0.0, 0
    layer = int(np.nanargmax(fractions))
    return float(fractions[layer]), layer + 1


def percent(fraction: float) -> str:
    """A fraction as a whole percentage, rounded down: 100% only when it is all."""
    return f"{math.floor(fraction * 100)}%" if fraction < 1 else "100%"


def _gradient_warnings(state: RunState) -> list[str | None]:
    # The backward pass runs from the last layer to the first: look at the layers in that order.
    arrived = [b for b in reversed(state.backward) if b is not None]
    if not arrived:
        return []
    nonfinite = _first(np.array([b.grad.nonfinite > 0 for b in arrived]))
    if nonfinite is not None:
        return [f"gradients exploded: non-finite values at layer {arrived[nonfinite - 1].index}"]
    std = np.array([b.grad.std for b in arrived])
    vanished = _first(std < VANISHED_STD)
    if vanished is not None:
        return [f"gradients vanished: gradient std < {VANISHED_STD:.0e} from layer "
                f"{arrived[vanished - 1].index} back to layer 1"]
    if len(arrived) < state.layers:
        return []
    # Both ends have arrived: compare the gradient the first layer gets with the last layer's.
    return [_drift("gradients", std, [state.layers, 1], "vanishing", "exploding")]


def _underflow_warnings(state: RunState) -> list[str]:
    """Where values first fell below the dtype's smallest normal, forward and backward, and what
    became of them (the config's ``subnormals``)."""
    dtype = state.config.dtype
    below = f"values below {dtype}'s smallest normal ({np.finfo(dtype).tiny:.2g})"
    fate = "flushed to zero" if state.config.subnormals == "flush" else "kept (IEEE, slow on many CPUs)"
    forward = next((f.index for f in state.forward if f is not None and f.subnormal), None)
    backward = next((b.index for b in reversed(state.backward) if b is not None and b.subnormal), None)
    return [*([f"underflow: {below} from layer {forward}, {fate}"] if forward is not None else []),
            *([f"gradient underflow: {below} from layer {backward} back to layer 1, {fate}"]
              if backward is not None else [])]
