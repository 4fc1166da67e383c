"""The simulation: a forward pass, then a backward pass, streamed one layer at a time.

Layer l computes h = x W + b (W of shape (fan_in, fan_out)), optionally normalizes h over the batch
or over the layer, and applies the activation: x_l = phi(u_l), u_l = norm(h_l).

The backward pass injects a unit-normal gradient dL/dx_L ~ N(0, 1) at the network's output, i.e. the
loss is L = sum(G * x_L) for a fixed random G. This isolates the network's own Jacobian from any
loss function: the measured gradient std is how the network transforms a unit-size signal on its
way back. Per layer it reports the gradient w.r.t. the layer's linear output h (before the
normalization, when there is one) and w.r.t. the weights.

The layers' forward and backward passes, their memory discipline and the seeding of their
weights are in `network.py`, shared with training. A checkpoint's layers (init checkpoint, issue 14)
are read from its file instead of drawn, each at its own widths (`chain.py`); the input and the
output gradient are drawn as for any config.

A residual network's run (`_run_residual`) streams its blocks the same way: per block, pre is the
branch's hidden pre-activation u W1 + b1, post the stream x_l, branch_std the std of alpha F, grad
dL/dx_l, and the weight statistics are W1's. `initial_blocks` gives its weights.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from threadpoolctl import threadpool_info

from . import memory
from .config import SimConfig
from .memory import DEFAULT_MEMORY_LIMIT
from .errors import ConfigError
from .network import BlockPass, BlockWeights, Layer, Network, backward, block_backward, block_forward, reused
from .products import linear, scaled_matmul
from .stats import SampleGeometry, Stats, sample_geometry, std_of, summarize
from .theory import TheoryPrediction, config_prediction

T = TypeVar("T")


@dataclass(frozen=True)
class ForwardEvent:
    """A layer's forward statistics; of a residual network's block l (config.residual pre or post),
    pre is the branch's hidden pre-activation u W1 + b1, post the stream x_l, the fractions of its
    hidden activation, weight_std of W1."""

    index: int  # 1-based layer
    layers: int
    pre: Stats  # the activation's input u (after the normalization, if any)
    post: Stats  # the activation's output
    dead_fraction: float  # units whose gradient is zero for every sample of the batch
    saturated_fraction: float  # outputs in the activation's flat tails
    weight_std: float  # of the sampled (and, for LSUV, rescaled) weights
    theory_pre_std: float | None  # None where the theory has no prediction
    subnormal: int  # values of pre and post below the smallest normal, counted before any flush
    geometry: SampleGeometry  # of pre: the samples' mean correlation, the units' spread
    theory_sample_correlation: float | None  # mean-field c^l (None where the theory has none)
    # A residual block's: std of alpha F, what the branch adds to the stream (None for a plain layer)
    branch_std: float | None = None
    # The theory's std of post (a residual block's stream x_l; None for a plain layer's output, whose
    # activation's mean the theory does not track) and of alpha F (None for a plain layer)
    theory_post_std: float | None = None
    theory_branch_std: float | None = None

    @property
    def step(self) -> int:
        return self.index


@dataclass(frozen=True)
class BackwardEvent:
    """A layer's backward statistics; of a residual network's block l, grad is dL/dx_l (the stream's
    gradient), weight_grad_std that of dL/dW1."""

    index: int
    layers: int
    grad: Stats  # dL/dh, the gradient w.r.t. the layer's linear output
    weight_grad_std: float  # std of dL/dW
    theory_grad_std: float | None
    subnormal: int  # values of dL/dh below the smallest normal, counted before any flush

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
        residual = self.config.residual != "none"
        for f, b in zip(self.forward, self.backward):
            records.append({
                "index": f.index,
                "pre_mean": f.pre.mean, "pre_std": f.pre.std, "pre_min": f.pre.min, "pre_max": f.pre.max,
                "post_mean": f.post.mean, "post_std": f.post.std, "post_min": f.post.min,
                "post_max": f.post.max,
                # a residual block's, after the stream's; a plain layer has no branch
                **({"branch_std": _finite_or_none(f.branch_std), "theory_branch_std": f.theory_branch_std}
                   if residual else {}),
                "grad_std": b.grad.std, "weight_grad_std": b.weight_grad_std,
                "weight_std": f.weight_std,
                "dead_fraction": f.dead_fraction, "saturated_fraction": f.saturated_fraction,
                # None where undefined (a layer of zeros, a non-finite value), as JSON's null
                "sample_correlation": _finite_or_none(f.geometry.correlation),
                "theory_sample_correlation": f.theory_sample_correlation,
                "unit_spread": _finite_or_none(f.geometry.unit_spread),
                "nonfinite": f.pre.nonfinite + f.post.nonfinite,
                "grad_nonfinite": b.grad.nonfinite,
                "subnormal": f.subnormal, "grad_subnormal": b.subnormal,
                "theory_pre_std": f.theory_pre_std, "theory_grad_std": b.theory_grad_std,
                "theory_post_std": f.theory_post_std,
                "histogram": f.post.histogram.to_dict(),
                "pre_histogram": f.pre.histogram.to_dict(),
                "grad_histogram": b.grad.histogram.to_dict(),
            })
        return records


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _input(config: SimConfig, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    shape = (config.batch, config.fan_in_first)
    if config.input_dist == "uniform":  # U(-sqrt 3, sqrt 3) has unit variance
        x = rng.uniform(-math.sqrt(3), math.sqrt(3), shape)
    else:
        x = rng.standard_normal(shape)
    return x.astype(dtype)  # drawn in float64: the same input in float32 and float64


def _fractions(net: Network, y: np.ndarray) -> tuple[float, float]:
    act, p = net.block.act, net.config.activation_params
    dead = 0.0
    if act.can_die(p):  # phi' = 0 exactly where the output is <= 0
        dead = float(np.count_nonzero(y.max(axis=0) <= 0)) / y.shape[1]
    saturated = 0.0
    if act.saturation is not None:
        low, high = act.saturation
        saturated = float(np.count_nonzero((y < low) | (y > high))) / y.size
    return dead, saturated


def checked_network(config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Network:
    """The validated config's network, or ConfigError if it is invalid or its simulation needs
    more than ``memory_limit`` bytes."""
    net = Network.of(config)
    memory.check(memory.simulation(net.config), memory_limit, "layers, width or batch")
    return net


def simulate_stream(config: SimConfig, should_stop: Callable[[], bool] | None = None,
                    memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Iterator[LayerEvent]:
    """Yield a ForwardEvent per layer (1..L), then a BackwardEvent per layer (L..1).

    Stops early, cleanly, when the caller stops iterating or ``should_stop()`` turns true.
    Raises ConfigError (when iterated, before anything is allocated) for an invalid config or
    one that needs more than ``memory_limit`` bytes.
    """
    net = checked_network(config, memory_limit)
    yield from _run(net, should_stop or (lambda: False), _RunOutputs())


def simulate(config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT,
             on_event: Callable[[LayerEvent], None] | None = None) -> SimResult:
    """Run the whole simulation and collect its events; ``on_event`` sees each as it comes (a
    progress report)."""
    net = checked_network(config, memory_limit)
    started = time.perf_counter()
    outputs = _RunOutputs()
    events = []
    for event in _run(net, lambda: False, outputs):
        events.append(event)
        if on_event is not None:
            on_event(event)
    return _collect(net.config, events, outputs.theory, time.perf_counter() - started)


def result_from_events(config: SimConfig, events: Iterable[LayerEvent], seconds: float,
                       memory_limit: int = DEFAULT_MEMORY_LIMIT) -> SimResult:
    """The SimResult of a complete run whose events a consumer of `simulate_stream` kept (the
    window's, for its data exports), without running it again; raises ValueError if a layer is
    missing. Only a data-dependent scheme's theory needs its weights, and so its forward pass."""
    net = Network.of(config)
    weights = [w for w, _ in initial_weights(config, memory_limit)] if net.scheme.data_dependent else None
    result = _collect(net.config, list(events), config_prediction(net.config, weights), seconds)
    if [e.index for e in result.forward] != list(range(1, net.config.layers + 1)) or \
            [e.index for e in result.backward] != list(range(1, net.config.layers + 1)):
        raise ValueError("not every layer of the run has its forward and backward event")
    return result


def _collect(config: SimConfig, events: list[LayerEvent], theory: TheoryPrediction,
             seconds: float) -> SimResult:
    forward = tuple(sorted((e for e in events if isinstance(e, ForwardEvent)), key=lambda e: e.index))
    backward = tuple(sorted((e for e in events if isinstance(e, BackwardEvent)), key=lambda e: e.index))
    return SimResult(config, forward, backward, theory, seconds)


def initial_weights(config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> list[Layer]:
    """The (W, b) of every layer exactly as `simulate` uses them (W: (fan_in, fan_out)).

    Data-dependent schemes (LSUV) run the forward pass on the config's input batch. Checked
    against ``memory_limit`` as the simulation is.
    """
    net = checked_network(config, memory_limit)
    c = net.config
    if c.residual != "none":
        raise ConfigError("residual", "a residual network's weights are per block (W1, b1, W2, b2): "
                          "use initial_blocks")
    if not net.scheme.data_dependent:
        streams = net.streams()
        return [net.layer_weights(layer, streams[layer]) for layer in range(1, c.layers + 1)]
    outputs = _RunOutputs()
    for event in _run(net, lambda: False, outputs):
        if event.index == c.layers:  # the forward pass is done; the backward pass is not needed
            break
    return outputs.layers


@dataclass(frozen=True)
class ResidualWeights:
    """A residual network's weights: the input projection (P, b) when the input's width differs
    from the stream's (else None), and each block's W1, b1, W2, b2."""

    projection: Layer | None
    blocks: tuple[BlockWeights, ...]


def initial_blocks(config: SimConfig, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> ResidualWeights:
    """A residual network's weights exactly as `simulate` uses them; checked against
    ``memory_limit`` as the simulation is. ConfigError for a plain network (`initial_weights`)."""
    net = checked_network(config, memory_limit)
    if net.config.residual == "none":
        raise ConfigError("residual", "a plain network has layers, not blocks: use initial_weights")
    streams = net.streams()
    return ResidualWeights(net.sample_projection() if net.has_projection else None,
                           tuple(net.sample_block(streams[block]) for block in range(1, net.config.layers + 1)))


def _blas_leaves_a_core() -> bool:
    """Whether the BLAS that multiplies runs on fewer threads than this process has cores: then the
    side thread draws the next layer's weights during a layer's matrix multiply, on the core BLAS
    leaves; else it draws after the multiply, which it would slow down by as much."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return matmul_threads() < cores


def matmul_threads() -> int:
    """The threads of the BLAS that numpy's matrix multiply calls. Numpy's wheels bring their own
    OpenBLAS and so do scipy's: a run that imports scipy (the theory does) loads a second one,
    which no multiply of the simulation uses; counted, its default threads made every draw wait
    for its layer's multiply. Where numpy brings none, the most threads of any BLAS loaded."""
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    numpy_dir = os.path.dirname(os.path.realpath(np.__file__))
    own = [pool for pool in pools
           if os.path.realpath(pool["filepath"]).startswith((numpy_dir + os.sep, numpy_dir + ".libs" + os.sep))]
    return max((pool["num_threads"] for pool in own or pools), default=1)


def _quietly(function: Callable[..., T], *args) -> T:
    """``function(*args)`` with numpy's warnings off, as the simulation's arithmetic (for a side
    thread, which does not inherit the caller's error state)."""
    with np.errstate(all="ignore"):
        return function(*args)


@dataclass
class _RunOutputs:
    """What a run finds besides its events, filled in as it goes."""

    layers: list[Layer] = field(default_factory=list)  # (W, b) per layer, as drawn (and rescaled)
    theory: TheoryPrediction | None = None  # known once the forward pass is done
    # A residual network's: its input projection (None when the input has the stream's width), its blocks
    projection: Layer | None = None
    blocks: list[BlockWeights] = field(default_factory=list)


def _run(net: Network, should_stop: Callable[[], bool], outputs: _RunOutputs) -> Iterator[LayerEvent]:
    """The simulation; ``outputs`` receives the layers and the theory as they are known.

    Overflow in a diverging net is expected, so numpy's warnings are off for the arithmetic, but
    never across a yield: numpy's error state is a context variable that the consumer would inherit.

    A side thread draws each layer's weights while this one works: numpy releases the GIL for the
    draws, the multiplies and the statistics. Each layer has its own stream, so the values do not
    depend on when they are drawn. Where BLAS leaves a core free (`_blas_leaves_a_core`), the side
    thread draws the next layer's weights and makes the previous layer's event (its statistics)
    during a layer's matrix multiply, so an event is yielded one multiply late; else it draws after
    the multiply, while this thread makes the event, taking no core from a multi-threaded BLAS.
    The thread is joined when the run ends, is stopped, or the consumer closes the stream.
    """
    if net.config.residual != "none":
        yield from _run_residual(net, should_stop, outputs)
        return
    c, block, dtype = net.config, net.block, net.dtype
    streams = net.streams()
    x0 = _input(c, streams[0], dtype)
    theory = config_prediction(net.config)
    layers = outputs.layers
    cache, inv_stds = [], []
    # Two working buffers hold, for a layer and the next, what the layer's event reads that the run
    # does not keep: the copy of the activation input that the activation overwrites or, where the
    # backward pass keeps u, the output; a buffer is made anew only for a layer of another width (a
    # checkpoint's), the old one left to the event that reads it. A third is the side thread's
    # scratch, as long as the widest layer's arrays.
    buffers = [np.empty((c.batch, c.width), dtype), np.empty((c.batch, c.width), dtype)]
    side_scratch = np.empty(c.batch * c.width, dtype)
    drawn: list[Future[Layer]] = []  # each layer's (W, b), drawn on the side thread

    core_left = _blas_leaves_a_core()

    def draw_next(layer: int) -> None:
        if layer < c.layers:
            drawn.append(pool.submit(_quietly, net.layer_weights, layer + 1, streams[layer + 1]))

    def beside_multiplies(function: Callable[..., T], *args) -> Future[T]:
        """``function(*args)``, a layer's event, on the side thread while this one multiplies where
        BLAS leaves a core; else here, now, while the side thread draws the next layer's weights
        (a third busy thread would slow a BLAS that takes every core)."""
        if core_left:
            return pool.submit(_quietly, function, *args)
        made: Future[T] = Future()
        made.set_result(_quietly(function, *args))
        return made

    def multiply(layer: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The layer's h = x W + b (normalized, if the block normalizes) and its W."""
        w, b = drawn[layer - 1].result()
        if core_left:
            draw_next(layer)
        h = linear(x, w, b, np.empty((c.batch, w.shape[1]), dtype), block.flush)
        net.scheme.fit(x, w, b, h, block.flush)
        if not core_left:  # the layer's multiplies are done
            draw_next(layer)
        stats = block.normalize(h)
        if stats is not None:
            inv_stds.append(stats[1])
        layers.append((w, b))
        return h, w

    def activate(layer: int, h: np.ndarray, w: np.ndarray) -> tuple[Future[ForwardEvent], np.ndarray]:
        """The layer's output, and its event (`beside_multiplies`: on the side thread, while the
        next layer multiplies). What the event reads stays as it is until the next layer's
        `multiply` has returned: the output, which the next layer only reads, and a copy of u in a
        working buffer that only the layer after next writes."""
        for index in (layer % 2, (layer + 1) % 2):
            buffers[index] = reused(buffers[index], h.shape, dtype)
        work, spare = buffers[layer % 2], buffers[(layer + 1) % 2]
        subnormal = block.flushed(h)
        u = spare if block.keeps_output else h  # a copy of u when the activation overwrites it
        if u is spare:
            np.copyto(spare, h)
        y, kept, post_subnormal = block.activate(h, work)
        cache.append(kept)
        return beside_multiplies(forward_event, layer, u, y, w, subnormal + post_subnormal), y

    def forward_event(layer: int, u: np.ndarray, y: np.ndarray, w: np.ndarray, subnormal: int) -> ForwardEvent:
        dead, saturated = _fractions(net, y)
        scratch = side_scratch[:u.size]
        return ForwardEvent(layer, c.layers, summarize(u, c.bins, scratch), summarize(y, c.bins, scratch),
                            dead, saturated, std_of(w), theory.pre_std[layer - 1], subnormal, sample_geometry(u),
                            theory.sample_correlation[layer - 1], theory_post_std=theory.post_std[layer - 1])

    def backward_event(layer: int, grad_h: np.ndarray, weight_grad: np.ndarray, exponent: int,
                       subnormal: int) -> BackwardEvent:
        """``weight_grad`` is dL/dW * 2**-exponent (`scaled_matmul`)."""
        return BackwardEvent(layer, c.layers, summarize(grad_h, c.bins, side_scratch[:grad_h.size]),
                             math.ldexp(std_of(weight_grad), exponent), theory.grad_std[layer - 1], subnormal)

    if should_stop():  # asked once before the run, then once after each event
        return
    x = x0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="initsim-side")
    try:
        drawn.append(pool.submit(_quietly, net.layer_weights, 1, streams[1]))
        event: Future | None = None  # the previous layer's, under way on the side thread
        for layer in range(1, c.layers + 1):
            with np.errstate(all="ignore"):
                h, w = multiply(layer, x)
            if event is not None:
                yield event.result()
                if should_stop():
                    return
            with np.errstate(all="ignore"):
                event, x = activate(layer, h, w)
        yield event.result()
        drawn.clear()
        theory = config_prediction(net.config, [w for w, _ in layers])  # LSUV's: from the fitted weights
        outputs.theory = theory

        # What a layer's event reads, dL/dh and dL/dW, stays as it is until the weight gradient of
        # the layer below is due: its event is awaited then.
        # float64 draw, as the input; of the last layer's width
        grad = streams[-1].standard_normal((c.batch, c.fans(c.layers)[1])).astype(dtype)
        steps = backward(grad, cache, inv_stds, [w for w, _ in layers], block, x0, buffers[1])
        weight_grad = None  # dL/dW, one buffer for the layers of one shape
        event = None
        while not should_stop():
            with np.errstate(all="ignore"):
                step = next(steps, None)
            if event is not None:
                yield event.result()
            if step is None:
                return
            layer, grad_h, x_in, subnormal = step
            with np.errstate(all="ignore"):
                weight_grad = reused(weight_grad, (x_in.shape[1], grad_h.shape[1]), dtype)
                # Only its std is reported: it is taken on the product in its scale.
                weight_grad, exponent = scaled_matmul(x_in.T, grad_h, weight_grad, block.flush)
            event = beside_multiplies(backward_event, layer, grad_h, weight_grad, exponent, subnormal)
    finally:
        pool.shutdown(cancel_futures=True)  # waits for the task under way
        drawn.clear()


def _run_residual(net: Network, should_stop: Callable[[], bool], outputs: _RunOutputs) -> Iterator[LayerEvent]:
    """`_run` for a residual network: a ForwardEvent per block (1..L), then a BackwardEvent per block
    (L..1), with the plain run's side thread (`_run`'s docstring): it draws the next block's weights
    and makes the previous block's event while this thread computes the block, where BLAS leaves a
    core; else the events are made here between blocks.

    The stream x_l and what the backward pass keeps (`network.BlockCache`) are fresh arrays per block;
    what an event reads besides them (the copy of the hidden pre-activation that the activation
    overwrites, or the hidden activation, and alpha F) lives in working buffers that alternate by
    block, so that block l + 1 never writes what block l's event reads. Backward, dL/dx_l rotates
    through three buffers: block l writes dL/dx_{l-1} while the events of blocks l + 1 (under way)
    and l (next) read theirs.
    """
    c, dtype, norm, branch = net.config, net.dtype, net.block, net.branch
    alpha = c.branch_alpha
    streams = net.streams()
    x0 = _input(c, streams[0], dtype)
    theory = config_prediction(c)
    outputs.theory = theory
    hidden_shape, stream_shape = (c.batch, c.hidden_width), (c.batch, c.width)
    pre_buffers = (np.empty(hidden_shape, dtype), np.empty(hidden_shape, dtype))
    hidden_buffers = (np.empty(hidden_shape, dtype), np.empty(hidden_shape, dtype))
    branch_buffers = (np.empty(stream_shape, dtype), np.empty(stream_shape, dtype))
    hidden_scratch, stream_scratch = np.empty(hidden_shape, dtype), np.empty(stream_shape, dtype)
    drawn: list[Future[BlockWeights]] = []
    caches = []
    core_left = _blas_leaves_a_core()

    def draw(block: int) -> None:
        if block <= c.layers:
            drawn.append(pool.submit(_quietly, net.sample_block, streams[block]))

    def beside_blocks(function: Callable[..., T], *args) -> Future[T]:
        """As `_run`'s beside_multiplies: on the side thread where BLAS leaves a core, else here."""
        if core_left:
            return pool.submit(_quietly, function, *args)
        made: Future[T] = Future()
        made.set_result(_quietly(function, *args))
        return made

    def forward_event(block: int, step: BlockPass, w1: np.ndarray) -> ForwardEvent:
        dead, saturated = _fractions(net, step.hidden)
        return ForwardEvent(block, c.layers, summarize(step.pre, c.bins, hidden_scratch),
                            summarize(step.out, c.bins, stream_scratch), dead, saturated, std_of(w1),
                            theory.pre_std[block - 1], step.subnormal, sample_geometry(step.pre),
                            theory.sample_correlation[block - 1], std_of(step.branch),
                            theory.post_std[block - 1], theory.branch_std[block - 1])

    def backward_event(block: int, grad: np.ndarray, weight_grad: np.ndarray, exponent: int,
                       subnormal: int) -> BackwardEvent:
        return BackwardEvent(block, c.layers, summarize(grad, c.bins, stream_scratch),
                             math.ldexp(std_of(weight_grad), exponent), theory.grad_std[block - 1], subnormal)

    if should_stop():
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="initsim-side")
    try:
        with np.errstate(all="ignore"):
            x = x0
            if net.has_projection:
                outputs.projection = net.sample_projection()
                x = linear(x0, *outputs.projection, flush=norm.flush)
                norm.flushed(x)
        draw(1)
        event: Future | None = None
        for block in range(1, c.layers + 1):
            weights = drawn[block - 1].result()
            if core_left:
                draw(block + 1)
            with np.errstate(all="ignore"):
                parity = block % 2
                step = block_forward(x, weights, norm, branch, c.residual, alpha, pre_buffers[parity],
                                     hidden_buffers[parity], branch_buffers[parity])
            if not core_left:
                draw(block + 1)
            outputs.blocks.append(weights)
            caches.append(step.cache)
            x = step.out
            if event is not None:
                yield event.result()
                if should_stop():
                    return
            event = beside_blocks(forward_event, block, step, weights.w1)
        yield event.result()
        drawn.clear()

        grad = streams[-1].standard_normal(stream_shape).astype(dtype)  # float64 draw, as the input
        grad_buffers = [np.empty(stream_shape, dtype) for _ in range(3)]
        grad_stream, grad_hidden = np.empty(stream_shape, dtype), np.empty(hidden_shape, dtype)
        weight_grads = [np.empty((c.width, c.hidden_width), dtype) for _ in range(2)]
        subnormal = 0  # of dL/dx_L, drawn
        event = None
        for block in range(c.layers, 0, -1):
            if should_stop():
                return
            weights, cache = outputs.blocks[block - 1], caches.pop()
            with np.errstate(all="ignore"):
                back = block_backward(grad, cache, weights, norm, branch, alpha, grad_stream, grad_hidden,
                                      grad_buffers[block % 3])
                weight_grad, exponent = scaled_matmul(back.branch_in.T, back.grad_pre, weight_grads[block % 2],
                                                      norm.flush)
            del cache
            if event is not None:
                yield event.result()
            event = beside_blocks(backward_event, block, grad, weight_grad, exponent, subnormal)
            grad, subnormal = back.grad_in, back.subnormal
        yield event.result()
    finally:
        pool.shutdown(cancel_futures=True)
        drawn.clear()
