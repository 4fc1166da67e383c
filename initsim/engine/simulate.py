"""The simulation: a forward pass, then a backward pass, streamed one layer at a time.

Layer l computes h = x W + b (W of shape (fan_in, fan_out)), optionally normalizes h over the batch
or over the layer, and applies the activation: x_l = phi(u_l), u_l = norm(h_l).

The backward pass injects a unit-normal gradient dL/dx_L ~ N(0, 1) at the network's output, i.e. the
loss is L = sum(G * x_L) for a fixed random G. This isolates the network's own Jacobian from any
loss function: the measured gradient std is how the network transforms a unit-size signal on its
way back. Per layer it reports the gradient w.r.t. the layer's linear output h (before the
normalization, when there is one) and w.r.t. the weights.

Memory: the backward pass needs, per layer, the weights and one batch-by-width array. Where the
activation's derivative can be had from its output (relu, tanh, sigmoid, ...) and there is no
normalization, that array is the output itself, which the next layer's weight gradient needs anyway;
otherwise it is the activation's input u_l, and the output is recomputed when needed.

Randomness: one numpy SeedSequence per config seed, spawned into independent streams for the input,
for each layer's weights and bias, and for the output gradient; a layer's weights thus depend only on
the seed, the layer's index and its shape, and `initial_weights` returns the very same matrices.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .activations import Activation, get_activation
from .config import SimConfig
from .schemes import BiasInit, Scheme, get_bias_init, get_scheme
from .stats import Stats, std_of, summarize
from .theory import TheoryPrediction, predict

NORM_EPS = 1e-5
LSUV_TOLERANCE = 0.1
LSUV_MAX_ROUNDS = 10


@dataclass(frozen=True)
class ForwardEvent:
    index: int  # 1-based layer
    layers: int
    pre: Stats  # the activation's input u (after the normalization, if any)
    post: Stats  # the activation's output
    dead_fraction: float  # units whose gradient is zero for every sample of the batch
    saturated_fraction: float  # outputs in the activation's flat tails
    weight_std: float  # of the sampled (and, for LSUV, rescaled) weights
    theory_pre_std: float

    @property
    def step(self) -> int:
        return self.index


@dataclass(frozen=True)
class BackwardEvent:
    index: int
    layers: int
    grad: Stats  # dL/dh, the gradient w.r.t. the layer's linear output
    weight_grad_std: float  # std of dL/dW
    theory_grad_std: float | None

    @property
    def step(self) -> int:
        return 2 * self.layers - self.index + 1


LayerEvent = ForwardEvent | BackwardEvent


@dataclass(frozen=True)
class SimResult:
    config: SimConfig
    forward: tuple[ForwardEvent, ...]
    backward: tuple[BackwardEvent, ...]  # ordered by layer, 1 first
    theory: TheoryPrediction
    seconds: float

    def layer_records(self) -> list[dict]:
        """One JSON-able dict per layer, the keys the CLI's --json documents."""
        records = []
        for f, b in zip(self.forward, self.backward):
            records.append({
                "index": f.index,
                "pre_mean": f.pre.mean, "pre_std": f.pre.std, "pre_min": f.pre.min, "pre_max": f.pre.max,
                "post_mean": f.post.mean, "post_std": f.post.std, "post_min": f.post.min,
                "post_max": f.post.max,
                "grad_std": b.grad.std, "weight_grad_std": b.weight_grad_std,
                "weight_std": f.weight_std,
                "dead_fraction": f.dead_fraction, "saturated_fraction": f.saturated_fraction,
                "nonfinite": f.pre.nonfinite + f.post.nonfinite,
                "grad_nonfinite": b.grad.nonfinite,
                "theory_pre_std": f.theory_pre_std, "theory_grad_std": b.theory_grad_std,
                "histogram": f.post.histogram.to_dict(),
                "pre_histogram": f.pre.histogram.to_dict(),
                "grad_histogram": b.grad.histogram.to_dict(),
            })
        return records


@dataclass(frozen=True)
class _Parts:
    """A validated config's registry entries, looked up once."""

    config: SimConfig
    scheme: Scheme
    bias: BiasInit
    act: Activation
    dtype: np.dtype

    @classmethod
    def of(cls, config: SimConfig) -> _Parts:
        config = config.validated()
        return cls(config, get_scheme(config.init), get_bias_init(config.bias_init),
                   get_activation(config.activation), np.dtype(config.dtype))


def _streams(config: SimConfig) -> list[np.random.Generator]:
    """[input, layer 1, ..., layer L, output gradient]."""
    seeds = np.random.SeedSequence(config.seed).spawn(config.layers + 2)
    return [np.random.default_rng(s) for s in seeds]


def _input(config: SimConfig, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    shape = (config.batch, config.fan_in_first)
    if config.input_dist == "uniform":  # U(-sqrt 3, sqrt 3) has unit variance
        x = rng.random(shape, dtype=dtype)
        x *= 2 * math.sqrt(3)
        x -= math.sqrt(3)
        return x
    return rng.standard_normal(shape, dtype=dtype)


def _sample_layer(parts: _Parts, layer: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    c = parts.config
    fan_in, fan_out = c.fans(layer)
    w = parts.scheme.sample(fan_in, fan_out, rng, parts.dtype, c.init_params)
    b = parts.bias.sample(fan_in, fan_out, rng, parts.dtype, c.bias_params)
    return w, b


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.matmul(x, w, out=out)
    if b.any():
        out += b
    return out


def _lsuv_rescale(x, w, b, h) -> None:
    """Mishkin & Matas: divide W by the std of the layer's output until its variance is ~1."""
    for _ in range(LSUV_MAX_ROUNDS):
        var = float(h.var(dtype=np.float64))
        if not math.isfinite(var) or var == 0 or abs(var - 1) < LSUV_TOLERANCE:
            return
        w /= w.dtype.type(math.sqrt(var))
        _linear(x, w, b, h)


def _normalize(h: np.ndarray, norm: str) -> np.ndarray:
    """Normalize h in place (batch: each unit over the batch; layer: each sample over its units),
    without the affine part; returns the inverse std the backward pass needs."""
    axis = 0 if norm == "batch" else 1
    mean = h.mean(axis=axis, keepdims=True)
    h -= mean
    inv_std = 1 / np.sqrt(np.mean(h * h, axis=axis, keepdims=True) + NORM_EPS)
    h *= inv_std
    return inv_std


def _normalize_backward(grad_u: np.ndarray, u: np.ndarray, inv_std: np.ndarray, norm: str) -> np.ndarray:
    """dL/dh from dL/du for u = (h - mean) * inv_std (in place on grad_u)."""
    axis = 0 if norm == "batch" else 1
    mean_grad = grad_u.mean(axis=axis, keepdims=True)
    mean_grad_u = (grad_u * u).mean(axis=axis, keepdims=True)
    grad_u -= mean_grad
    grad_u -= u * mean_grad_u
    grad_u *= inv_std
    return grad_u


def _fractions(parts: _Parts, y: np.ndarray) -> tuple[float, float]:
    p = parts.config.activation_params
    dead = 0.0
    if parts.act.can_die(p):  # phi' = 0 exactly where the output is <= 0
        dead = float(np.count_nonzero(y.max(axis=0) <= 0)) / y.shape[1]
    saturated = 0.0
    if parts.act.saturation is not None:
        low, high = parts.act.saturation
        saturated = float(np.count_nonzero((y < low) | (y > high))) / y.size
    return dead, saturated


def _theory(parts: _Parts, weights: list[np.ndarray] | None) -> TheoryPrediction:
    """The mean-field prediction from the scheme's formula (or, for a data-dependent scheme, from
    the weights it ended up with)."""
    c = parts.config
    sigma_w2, ratio = [], []
    for layer in range(1, c.layers + 1):
        fan_in, fan_out = c.fans(layer)
        if parts.scheme.data_dependent:
            second = float(np.mean(np.square(weights[layer - 1], dtype=np.float64))) if weights else math.nan
        else:
            second = parts.scheme.second_moment(fan_in, fan_out, c.init_params)
        sigma_w2.append(fan_in * second)
        ratio.append(fan_out / fan_in)
    sigma_b2 = parts.bias.second_moment(c.width, c.bias_params)
    return predict(parts.act, c.activation_params, sigma_w2, ratio, sigma_b2,
                   normalized=c.norm != "none",
                   pre_variance=[1.0] * c.layers if parts.scheme.data_dependent else None)


def simulate_stream(config: SimConfig, should_stop: Callable[[], bool] | None = None
                    ) -> Iterator[LayerEvent]:
    """Yield a ForwardEvent per layer (1..L), then a BackwardEvent per layer (L..1).

    Stops early, cleanly, when the caller stops iterating or ``should_stop()`` turns true.
    Raises ConfigError (before yielding anything) for an invalid config.
    """
    parts = _Parts.of(config)
    yield from _run(parts, should_stop or (lambda: False), {})


def simulate(config: SimConfig) -> SimResult:
    """Run the whole simulation and collect its events."""
    parts = _Parts.of(config)
    started = time.perf_counter()
    sink: dict = {}
    events = list(_run(parts, lambda: False, sink))
    forward = tuple(e for e in events if isinstance(e, ForwardEvent))
    backward = tuple(sorted((e for e in events if isinstance(e, BackwardEvent)), key=lambda e: e.index))
    return SimResult(parts.config, forward, backward, sink["theory"], time.perf_counter() - started)


def initial_weights(config: SimConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (W, b) of every layer exactly as `simulate` uses them (W: (fan_in, fan_out)).

    Data-dependent schemes (LSUV) run the forward pass on the config's input batch.
    """
    parts = _Parts.of(config)
    c = parts.config
    if not parts.scheme.data_dependent:
        streams = _streams(c)
        return [_sample_layer(parts, layer, streams[layer]) for layer in range(1, c.layers + 1)]
    sink: dict = {}
    for event in _run(parts, lambda: False, sink):
        if event.index == c.layers:  # the forward pass is done; the backward pass is not needed
            break
    return sink["layers"]


def _run(parts: _Parts, should_stop: Callable[[], bool], sink: dict) -> Iterator[LayerEvent]:
    """The simulation; ``sink`` receives "layers" (the (W, b) pairs) and "theory" as they are known."""
    c = parts.config
    act, p, dtype = parts.act, c.activation_params, parts.dtype
    store_output = act.derivative_from_output is not None and c.norm == "none"
    streams = _streams(c)
    x0 = _input(c, streams[0], dtype)
    theory = _theory(parts, None)
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    sink["layers"] = layers
    cache, inv_stds = [], []
    # Two working buffers: a layer's output goes into one while the other, holding the previous
    # layer's output (dead once h is computed), serves as scratch.
    buffers = (np.empty((c.batch, c.width), dtype), np.empty((c.batch, c.width), dtype))
    x = x0
    with np.errstate(all="ignore"):
        for layer in range(1, c.layers + 1):
            if should_stop():
                return
            work, spare = buffers[layer % 2], buffers[(layer + 1) % 2]
            w, b = _sample_layer(parts, layer, streams[layer])
            h = _linear(x, w, b, np.empty((c.batch, c.width), dtype))
            if parts.scheme.data_dependent:
                _lsuv_rescale(x, w, b, h)
            if c.norm != "none":
                inv_stds.append(_normalize(h, c.norm))
            layers.append((w, b))
            pre = summarize(h, c.bins, spare)
            if store_output:
                y = act.forward(h, p)
            else:
                np.copyto(work, h)
                y = act.forward(work, p)
            cache.append(h)  # h is y itself when store_output
            post = summarize(y, c.bins, spare)
            dead, saturated = _fractions(parts, y)
            yield ForwardEvent(layer, c.layers, pre, post, dead, saturated,
                               std_of(w), theory.pre_std[layer - 1])
            x = y
        if parts.scheme.data_dependent:
            theory = _theory(parts, [w for w, _ in layers])
        sink["theory"] = theory

        grad = streams[-1].standard_normal((c.batch, c.width), dtype=dtype)
        for layer in range(c.layers, 0, -1):
            if should_stop():
                return
            kept = cache.pop()
            if store_output:
                grad *= act.derivative_from_output(kept, p)
            else:
                grad *= act.derivative(kept, p)
            if c.norm != "none":
                _normalize_backward(grad, kept, inv_stds.pop(), c.norm)
            del kept
            grad_stats = summarize(grad, c.bins, buffers[0])
            if layer == 1:
                x_in = x0
            elif store_output:
                x_in = cache[-1]
            else:
                np.copyto(buffers[1], cache[-1])
                x_in = act.forward(buffers[1], p)
            weight_grad_std = std_of(x_in.T @ grad)
            w, _ = layers.pop()
            grad = grad @ w.T
            yield BackwardEvent(layer, c.layers, grad_stats, weight_grad_std,
                                theory.grad_std[layer - 1])
