"""How much memory and time a run needs, estimated from its shapes before anything is allocated.

Every entry that allocates (a simulation, training, a comparison, a sweep, the weights of a network
or of one matrix) builds its `Estimate` here and passes it to `check` with the limit its caller
chose: the limit is the user's setting (the CLI's ``--memory-limit-gib``, the window's
preference), never part of a config.

What is counted is what the code holds at its peak, array by array (the comments name them); the
random draws are made in float64 whatever the dtype, so each draw holds a float64 copy of its matrix
for a moment. A test holds measured peak RSS within 15% of these numbers.

glibc raises its mmap threshold to the size of the last large block freed, after which multi-MiB
temporaries come from the heap and leave holes between the arrays that stay (measured: a
20 x 1024 x 1024 run grew 270 MiB where its arrays take 184 MiB). `steady_heap` fixes the
threshold, so a freed array goes back to the system and RSS follows the arrays alive (188 MiB).
Every array of 1 MiB or more is then fresh pages from the system, which the engine pays for only
where it keeps the array: its per-layer work goes into buffers it reuses, or a block of rows at a
time (network.row_blocks). That work's small temporaries come from the heap, whose top glibc would
give back to the system (and fault in again) whenever 128 KiB are free there; `steady_heap` lets
it keep TRIM_THRESHOLD (a 50 x 512 x 1024 run: 217,000 page faults before both, 95,000 after).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError
from .schemes import CHECKPOINT, get_scheme

if TYPE_CHECKING:
    from .config import SimConfig
    from .train import TrainConfig

GIB = 1024**3
MIB = 1024**2
DEFAULT_MEMORY_LIMIT = 2 * GIB
DRAW_BYTES = 8  # random numbers are drawn in float64
# Conservative rates (a shared two-core machine measured 33-57 GFLOP/s on float32 runs and draws
# ~100 million normals a second): the time shown is an "about", and errs long.
FLOP_RATE = 2.5e10  # multiply-adds count two
DRAW_RATE = 5e7  # random numbers a second
# Python objects a result keeps, measured with tracemalloc: a simulated layer's two events (three
# summaries with their histograms: 5.2 KB), a training step's event (with 10 layers: 1.4 KB), a
# sweep point's task, config and result (with 100 layers: 14.5 KB); the per-layer tuples of floats
# counted apart. A sweep's worker process (the interpreter with numpy and the engine) measured 83 MiB.
LAYER_RESULT_BYTES = 6 * 1024
STEP_RESULT_BYTES = 512
SWEEP_POINT_BYTES = 4 * 1024
FLOAT_BYTES = 32  # a Python float in a tuple: the object and its pointer
WORKER_BYTES = 96 * MIB
# A run shorter than this and smaller than SHOWN_BYTES needs no estimate shown before it starts.
SHOWN_SECONDS = 5.0
SHOWN_BYTES = 256 * MIB
QR_SCHEMES = ("orthogonal", "lsuv")  # sampled through a QR decomposition (about 4 n^3 flops)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers
MMAP_THRESHOLD = 1 * MIB
TRIM_THRESHOLD = 8 * MIB


@dataclass(frozen=True)
class Estimate:
    """Peak bytes and work of a run; ``shape`` says what runs, for people."""

    bytes: int
    flops: float  # floating-point operations, multiply-adds as two
    draws: float  # random numbers drawn
    shape: str

    @property
    def seconds(self) -> float:
        return self.flops / FLOP_RATE + self.draws / DRAW_RATE

    @property
    def worth_showing(self) -> bool:
        """Long or large enough that the user should see it before the run starts."""
        return self.seconds > SHOWN_SECONDS or self.bytes > SHOWN_BYTES

    def text(self) -> str:
        """"about 3.2 GiB and ~40 s (1000 layers x 4096 x 512)"."""
        return f"about {size_text(self.bytes)} and ~{duration_text(self.seconds)} ({self.shape})"


def size_text(size: float) -> str:
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size / MIB:,.0f} MiB"


def duration_text(seconds: float) -> str:
    if seconds < 1:
        return "1 s"
    for unit, length in (("h", 3600), ("min", 60)):
        if seconds >= 2 * length:
            return f"{seconds / length:,.0f} {unit}"
    return f"{seconds:.0f} s"


def check(estimate: Estimate, limit: int, reduce: str) -> Estimate:
    """``estimate`` if it fits in ``limit`` bytes, else ConfigError("memory") saying what to reduce."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ConfigError("memory_limit", f"got {limit!r}, expected a positive number of bytes")
    if estimate.bytes > limit:
        raise ConfigError("memory", f"{estimate.shape} needs about {estimate.bytes / GIB:.2f} GiB, over "
                                    f"the limit of {limit / GIB:.2f} GiB (reduce {reduce})")
    return estimate


def gib_limit(gib: float) -> int:
    """A limit given in GiB, as bytes; ConfigError("memory_limit") unless a positive finite number."""
    if isinstance(gib, bool) or not isinstance(gib, (int, float)) or not math.isfinite(gib) or gib <= 0:
        raise ConfigError("memory_limit", f"got {gib!r}, expected a positive number of GiB")
    if gib * GIB > 2**62:
        raise ConfigError("memory_limit", f"got {gib:g}, expected at most {2**62 / GIB:g} GiB")
    return max(1, int(gib * GIB))


def steady_heap() -> None:
    """Fix glibc's mmap and trim thresholds (see the module's docstring); where the C library is
    another, nothing."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):  # no mallopt: not glibc
        pass


steady_heap()


# --- the estimates ----------------------------------------------------------------------------

def draw_bytes(init: str, fan_in: int, fan_out: int, dtype: str) -> int:
    """Bytes held while one (fan_in, fan_out) matrix of scheme ``init`` is sampled: the scheme's
    float64 copies, and the cast to ``dtype``."""
    item = np.dtype(dtype).itemsize
    cast = 0 if item == DRAW_BYTES else item
    return fan_in * fan_out * (get_scheme(init).draw_copies * DRAW_BYTES + cast)


def simulation(config: SimConfig, batch: int | None = None) -> Estimate:
    """A simulation of a validated ``config`` (``batch``: on that many samples instead).

    Held to the end of the forward pass: every layer's W and b, one kept batch x width array per
    layer, the input, three working buffers (two for the layers' outputs, one for the side
    thread's statistics) and the normalization's statistics. On top, at the peak: the last layer's
    draw (made while the layer before it runs), LSUV's float64 variance of h, or the backward pass's float64
    output gradient with its cast, whichever is largest.
    """
    if config.residual != "none":
        return _residual_simulation(config, config.batch if batch is None else batch)
    if config.init == CHECKPOINT:
        return _checkpoint_simulation(config, config.batch if batch is None else batch)
    item = np.dtype(config.dtype).itemsize
    b = config.batch if batch is None else batch
    fan_in, width, layers = config.fan_in_first, config.width, config.layers
    layer_bytes = [item * ((fi + 1) * fo + b * fo) for fi, fo in (config.fans(k) for k in range(1, layers + 1))]
    norm = {"none": 0, "batch": width, "layer": b, "rms": b}[config.norm] * layers * item
    base = item * b * (fan_in + 3 * width) + norm
    held = sum(layer_bytes)
    lsuv = get_scheme(config.init).data_dependent
    peak = max(
        b * fan_in * (DRAW_BYTES + item),  # the input, drawn
        draw_bytes(config.init, fan_in, width, config.dtype) + base,  # layer 1's draw
        held - layer_bytes[-1] + draw_bytes(config.init, width, width, config.dtype) + base,  # the last's
        held + base + b * width * (DRAW_BYTES if lsuv else 0),
        held + base + b * width * (DRAW_BYTES + item),  # the output gradient, drawn
    ) + layers * LAYER_RESULT_BYTES
    matmuls = b * (fan_in * width + (layers - 1) * width * width)
    qr = 4 * (fan_in * width * min(fan_in, width) + (layers - 1) * width**3) if config.init in QR_SCHEMES else 0
    # forward 2, backward 4 flops per multiply-add; LSUV's rescaling rounds add about one forward
    flops = (6 + 2 * lsuv) * matmuls + qr
    draws = fan_in * width + (layers - 1) * width * width + b * (fan_in + width)
    return Estimate(int(peak), float(flops), float(draws), f"{layers} layers x {width} x {b}")


def _checkpoint_simulation(config: SimConfig, b: int) -> Estimate:
    """`simulation` of a checkpoint's layers (init checkpoint), each at its own fans: the working
    buffers are as wide as the widest layer, and a layer is read instead of drawn, holding the
    stored tensor twice (the reader's pages of the file and its copy) and its cast to the dtype
    while it is. Nothing is drawn but the input and the output gradient."""
    from .chain import load_chain  # only for a checkpoint's config

    stored = [layer.nbytes for layer in load_chain(config.init_params["file"], config.init_params["layout"]).layers]
    item = np.dtype(config.dtype).itemsize
    layers = config.layers
    fans = [config.fans(k) for k in range(1, layers + 1)]
    fan_in, last = config.fan_in_first, fans[-1][1]
    layer_bytes = [item * ((fi + 1) * fo + b * fo) for fi, fo in fans]
    norm = item * sum({"none": 0, "batch": fo, "layer": b, "rms": b}[config.norm] for _, fo in fans)
    base = item * b * (fan_in + 3 * config.width) + norm
    held = sum(layer_bytes)

    def read(layer: int) -> int:
        fi, fo = fans[layer]
        return 2 * stored[layer] + fi * fo * item

    peak = max(
        b * fan_in * (DRAW_BYTES + item),  # the input, drawn
        # a layer's read, with the layers before it held (the largest need not be the last's)
        max(sum(layer_bytes[:k]) + read(k) for k in range(layers)) + base,
        held + base + b * last * (DRAW_BYTES + item),  # the output gradient, drawn
    ) + layers * LAYER_RESULT_BYTES
    flops = 6 * b * sum(fi * fo for fi, fo in fans)  # forward 2, backward 4 flops per multiply-add
    widths = " -> ".join(str(fo) for _, fo in fans[:8]) + (" -> ..." if layers > 8 else "")
    return Estimate(int(peak), float(flops), float(b * (fan_in + last)),
                    f"{layers} checkpoint layers {fan_in} -> {widths} x {b}")


def refuse_checkpoint(config: SimConfig, what: str) -> None:
    """A one-line ConfigError if ``config`` simulates a checkpoint's layers, which ``what`` (a
    training run, a sweep) does not take: its depth and widths are the file's."""
    if config.init == CHECKPOINT:
        raise ConfigError("init", f"{what} is not available for a checkpoint's layers (the simulation is)")


def _residual_simulation(config: SimConfig, b: int) -> Estimate:
    """`simulation` of a residual network (simulate.py's `_run_residual`): held to the end of the
    forward pass, each block's W1, b1, W2, b2 and what its backward pass keeps (the stream x_l, the
    hidden pre-activation or activation, pre-norm's normalized copy of the stream, the norms'
    statistics); the input and its projection; the working buffers a run writes (two of the
    hidden's shape, two of the stream's, a scratch of each; the other pair of the hidden's shape is
    allocated and never touched: the copy of the pre-activation or the activation's output, as the
    activation keeps one or the other). On top, at the peak: a block's draw, or the start of the
    backward pass (its float64 output gradient and cast; or the gradient with a buffer of dL/dx, the
    hidden's dL/dz, a dL/dW1 and, for post-norm with a norm, dL/ds), whichever is largest."""
    item = np.dtype(config.dtype).itemsize
    fan_in, width, hidden, layers = config.fan_in_first, config.width, config.hidden_width, config.layers
    projected = fan_in != width
    statistics = {"none": 0, "batch": width, "layer": b, "rms": b}[config.norm]
    normed = config.norm != "none"
    block_bytes = item * (2 * width * hidden + hidden + width + b * (width + hidden)
                          + (config.residual == "pre" and normed) * b * width + statistics)
    base = item * (b * fan_in + projected * ((fan_in + 1) * width + b * width)
                   + 3 * b * hidden + 3 * b * width)
    held = layers * block_bytes
    draw = 2 * draw_bytes(config.init, width, hidden, config.dtype)
    backward = max(b * width * (DRAW_BYTES + item),
                   item * ((2 + (config.residual == "post" and normed)) * b * width + b * hidden + width * hidden))
    peak = max(
        b * fan_in * (DRAW_BYTES + item),  # the input, drawn
        held - block_bytes + draw + base,  # the last block's draw
        held + base + backward,
    ) + layers * LAYER_RESULT_BYTES
    # per block: two multiplies forward, three backward (dL/dz, dL/du, dL/dW1), 2 flops each multiply-add
    flops = 10 * layers * b * width * hidden + 2 * projected * b * fan_in * width
    qr = 8 * layers * width * hidden * min(width, hidden) if config.init in QR_SCHEMES else 0
    draws = 2 * layers * width * hidden + projected * fan_in * width + b * (fan_in + width)
    return Estimate(int(peak), float(flops + qr), float(draws),
                    f"{layers} blocks x {width} (x {config.expansion}) x {b}")


def weights_matrix(init: str, fan_in: int, fan_out: int, dtype: str) -> Estimate:
    """One (fan_in, fan_out) matrix (`initsim weights --fan-in --fan-out`): its draw, or the
    matrix and the deviations its std is taken from."""
    size = fan_in * fan_out
    peak = max(draw_bytes(init, fan_in, fan_out, dtype), 2 * size * np.dtype(dtype).itemsize)
    qr = 4 * size * min(fan_in, fan_out) if get_scheme(init).name in QR_SCHEMES else 0
    return Estimate(peak, float(qr), float(size), f"one {fan_in} x {fan_out} matrix")


def dataset_bytes(samples: int, dim: int, dtype: str) -> tuple[int, int]:
    """(peak while generating, kept): the points are drawn and standardized in float64 (three
    arrays at once: the points, their offsets from the mean and the squares of those), then cast."""
    size = samples * dim
    item = np.dtype(dtype).itemsize
    return 3 * size * DRAW_BYTES + samples * DRAW_BYTES, size * item + samples * DRAW_BYTES


def step_events(steps: int, layers: int) -> int:
    """Bytes of a training run's step events, kept to its end."""
    return steps * (STEP_RESULT_BYTES + 3 * (layers + 1) * FLOAT_BYTES)


def training(config: SimConfig, settings: TrainConfig, data_shared: bool = False) -> Estimate:
    """A training run of a validated ``config`` with validated ``settings`` (the input width is
    the task's dimension). ``data_shared``: the data come from elsewhere (a comparison's) and are
    not counted.

    Held: the data, the parameters, the optimizer's state and every step's event. On top, the
    largest of: the data's generation (before anything else); a mini-batch's pass (the last
    step's gradients, alive until the new ones are made, and the batch's input, kept arrays and
    working buffers; at its end two sets of gradients); the probe of the whole set (two sets x
    width arrays at once, or the region grid's); LSUV's calibration on the whole set (a layer's
    output and its input, and the float64 variance of the output).
    """
    from .tasks import get_task

    refuse_checkpoint(config, "training (its output layer and input are the task's)")
    if config.residual != "none":
        return _residual_training(config, settings, data_shared)
    item = np.dtype(config.dtype).itemsize
    dim, width, layers, samples = settings.task_dim, config.width, config.layers, settings.samples
    outputs = get_task(settings.task).classes or 1
    params = item * ((dim + 1) * width + (layers - 1) * (width + 1) * width + (width + 1) * outputs)
    state = 2 if settings.optimizer == "adam" else 1
    batch = min(settings.train_batch, samples)
    generating, kept = (0, 0) if data_shared else dataset_bytes(samples, dim, config.dtype)
    held = kept + params * (1 + state) + step_events(settings.steps, layers)
    probed = max(samples, settings.region_grid**2 * (dim == 2))
    lsuv = get_scheme(config.init).data_dependent
    peak = max(generating, held + max(
        params + item * batch * (dim + (layers + 4) * width),
        2 * params,
        params + 2 * item * probed * width,
        samples * width * (2 * item + DRAW_BYTES) if lsuv else 0,
    ))
    probes = math.ceil(settings.steps / settings.record_every) + 1
    flops = 6 * settings.steps * batch * params / item + 2 * probes * samples * params / item
    return Estimate(int(peak), float(flops), float(params / item + settings.steps * batch),
                    f"training {layers} layers x {width} on {samples} x {dim} for {settings.steps:,} steps")


def _residual_training(config: SimConfig, settings: TrainConfig, data_shared: bool) -> Estimate:
    """`training` of a residual network (train.py's `residual_loss_and_gradients`, `residual_probe`).

    Parameters: the projection (when the task's dimension differs from the width), per block W1,
    b1, W2, b2 and alpha, the output layer. A mini-batch's forward pass keeps per block what its
    backward pass needs (the branch's input, the stream or its normalized copy, and the hidden
    activation or pre-activation: batch x (width + E width), and the norm's statistics; the projected
    input is block 1's), the batch's input, the last stream and the working buffers (alpha F; the hidden activation, which an
    activation that keeps its output never writes; backward dL/dz, two of dL/dx and post-norm's
    dL/ds); the last step's gradients are alive until the new ones are made, and the peak is at the
    start of the backward pass (a block's new weight gradients and a norm's temporaries on top). A
    probe holds, at a block, the stream in and out, pre-norm's normalized copy, the hidden
    pre-activation, a norm's temporary and its buffers, for the whole set (or the region grid)."""
    from .activations import get_activation
    from .tasks import get_task

    item = np.dtype(config.dtype).itemsize
    dim, width, hidden, layers = settings.task_dim, config.width, config.hidden_width, config.layers
    samples, outputs = settings.samples, get_task(settings.task).classes or 1
    projected, normed = dim != width, config.norm != "none"
    pre_normed = config.residual == "pre" and normed
    keeps = get_activation(config.activation).derivative_from_output is not None  # the hidden buffer unused
    statistics = {"none": 0, "batch": width, "layer": 1, "rms": 1}[config.norm]  # per sample for layer, rms
    params = item * (projected * (dim + 1) * width + layers * (2 * width * hidden + hidden + width + 1)
                     + (width + 1) * outputs)
    state = 2 if settings.optimizer == "adam" else 1
    batch = min(settings.train_batch, samples)
    generating, kept = (0, 0) if data_shared else dataset_bytes(samples, dim, config.dtype)
    alphas = settings.steps * layers * FLOAT_BYTES if config.branch_scale == "0" else 0  # StepEvent.alpha
    held = kept + params * (1 + state) + step_events(settings.steps, layers) + alphas

    def block_statistics(n: int) -> int:
        return statistics * (width if config.norm == "batch" else n)

    buffers = item * batch * (width * (3 + (config.residual == "post" and normed)) + hidden * (2 - keeps))
    # the start of the backward pass: every block's cache, the batch's input, dL/dx_L, the last block's
    # dL/dW1 and dL/dW2 and a norm's backward temporaries (two of the stream's shape)
    backward_start = item * (batch * (dim + (2 + 2 * normed) * width + layers * (width + hidden))
                             + layers * block_statistics(batch) + 2 * width * hidden)

    def probe(n: int) -> int:  # with a norm's temporary of the stream's shape
        return item * n * (width * (3 + pre_normed + normed) + hidden * (2 - keeps))

    probed = max(samples, settings.region_grid**2 * (dim == 2))
    peak = max(generating, held + buffers + max(
        params + backward_start,
        2 * params,
        params + probe(probed),
    ))
    probes = math.ceil(settings.steps / settings.record_every) + 1
    flops = 6 * settings.steps * batch * params / item + 2 * probes * samples * params / item
    return Estimate(int(peak), float(flops), float(params / item + settings.steps * batch),
                    f"training {layers} blocks x {width} (x {config.expansion}) on {samples} x {dim} "
                    f"for {settings.steps:,} steps")


def comparison(configs: Sequence[SimConfig], seeds: int, settings: TrainConfig | None = None) -> Estimate:
    """Every validated config once per seed, one run at a time, the results of each kept to the
    end; with training, the shared data (generated in float64, kept, and cast once per dtype)."""
    runs = [simulation(c) for c in configs]
    kept = sum(seeds * c.layers * LAYER_RESULT_BYTES for c in configs)
    shared = generating = 0
    if settings is not None:
        generating, shared = dataset_bytes(settings.samples, settings.task_dim, "float64")
        shared += sum(dataset_bytes(settings.samples, settings.task_dim, d)[1] for d in {c.dtype for c in configs})
        runs += [training(c.replace(input_width=settings.task_dim), settings, data_shared=True) for c in configs]
        kept += seeds * sum(step_events(settings.steps, c.layers) for c in configs)
    peak = max(generating, shared + kept + max(r.bytes for r in runs))
    shape = f"{len(configs)} configs x {seeds} seeds of {runs[0].shape}"
    return Estimate(int(peak), seeds * sum(r.flops for r in runs), seeds * sum(r.draws for r in runs), shape)


def sweep_points(largest: Estimate, points: int, workers: int, layers: int) -> Estimate:
    """A sweep of ``points`` simulations, none larger than ``largest``, on ``workers`` processes
    at once (at most one per point): each worker's interpreter and run, and every point's task
    and result in this process."""
    workers = max(1, min(workers, points))
    kept = points * (SWEEP_POINT_BYTES + 4 * layers * FLOAT_BYTES)
    peak = workers * (WORKER_BYTES + largest.bytes) + kept
    return Estimate(int(peak), points * largest.flops / workers, points * largest.draws / workers,
                    f"{points:,} points of {largest.shape} on {workers} workers")


def sweep(configs: Sequence[SimConfig], workers: int) -> Estimate:
    """A sweep of validated ``configs`` (see `sweep_points`); a checkpoint's layers are refused
    (a sweep varies the network, whose depth and widths are then the file's)."""
    for config in configs:
        refuse_checkpoint(config, "a sweep")
    runs = [simulation(c) for c in configs]
    largest = max(runs, key=lambda r: r.bytes)
    return sweep_points(largest, len(configs), workers, max(c.layers for c in configs))
