"""Training: mini-batch SGD (momentum) or Adam on a built-in task, streamed one step at a time.

The network: input (the task's dimension) -> the config's L hidden layers (its width, activation,
init, bias init and normalization) -> an output layer with one unit per class (softmax
cross-entropy) or one unit (mean squared error). The hidden layers are sampled exactly as the
simulation samples them for the same config with the task's dimension as input width
(`initial_weights` returns the same matrices); the output layer is drawn from the same scheme, from a
stream of its own. A data-dependent scheme (LSUV) is calibrated on the whole training set, output
layer included. The forward and backward passes are `network.py`'s, the simulation's own.

Each step yields a `StepEvent`: the mini-batch's loss and accuracy (before the step's update) and,
per weight matrix, the gradient norm, the grad:data ratio std(dL/dW) / std(W) and the update:data
ratio log10(std(lr * update) / std(W)) (Karpathy's makemore part 3: about -3 is healthy; much lower,
the layer barely learns; much higher, it thrashes). Every ``record_every`` steps a `Probe` measures
the whole training set after the update. A non-finite loss ends the run with a `Diverged` event.
`verdict_of` says how a run stands from its losses so far, against the task's chance level
(`chance_of`): diverged, not learning (the loss stays at chance), flat (it does not move, elsewhere),
healthy (it has clearly fallen below chance) or too early to tell.
Normalization uses the statistics of the batch it is given, in training and in the probe; the
decision regions use the training set's.

A residual network (config.residual pre or post, issue 13) trains as a `ResidualModel`: the input
projection when the task's dimension differs from the width, the blocks as the simulation samples
them (`initial_blocks`), one branch scale alpha per block (learned exactly for branch scale 0,
ReZero / SkipInit) and the output layer on the last stream; forward and backward are network.py's
`block_forward` and `block_backward` (with its parameter gradients). Its StepEvents report, per
block, W1's ratios (as the simulation's weight statistics), the output layer last, and the
learned alphas; a probe's activation std is that of each block's stream x_l.

For a worker thread: `Setup.of(config, training)` validates (ConfigError) and generates the data
(`setup.data`: the points, and the `extent` the decision regions cover), then `run(setup,
should_stop)` yields the events, each freshly allocated. `train_stream` does both; `train` collects
a whole run into a `TrainResult`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal

import numpy as np

from .checks import integer_in, number_in
from . import memory
from .config import SimConfig
from .memory import DEFAULT_MEMORY_LIMIT
from .errors import ConfigError, lookup, unknown_name
from .network import (Block, BlockCache, BlockPass, BlockWeights, Layer, Network, NormStats, backward, block_backward,
                      block_forward, hidden_forward)
from .products import linear, matmul
from .stats import std_of
from .tasks import Dataset, get_task, make_dataset

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

TRAIN_RANGES: dict[str, tuple[int, int]] = {
    "samples": (4, 100_000),
    "task_dim": (1, 4096),
    "data_seed": (0, 2**63 - 1),
    "steps": (1, 1_000_000),
    "train_batch": (1, 8192),
    "record_every": (1, 1_000_000),
    "flat_steps": (4, 1_000_000),
    "region_grid": (0, 512),
}
# Inclusive (low, high) of the real-valued fields; None: no value given, the default applies.
TRAIN_REAL_RANGES: dict[str, tuple[float, float]] = {
    "lr": (1e-8, 100.0),
    "momentum": (0.0, 0.999),
    "noise": (0.0, 10.0),
}


@dataclass(frozen=True)
class TrainConfig:
    """What to learn and how; the network itself is a `SimConfig` (its ``seed`` seeds the weights
    and the batch order, ``data_seed`` the data, so that runs of a comparison share their data)."""

    task: str = "spirals"
    samples: int = 1000
    noise: float | None = None  # None: the task's default
    task_dim: int | None = None  # None: the task's default (the 2-D tasks take only 2)
    data_seed: int = 0
    optimizer: str = "sgd"  # sgd (with momentum) or adam
    lr: float | None = None  # None: the optimizer's default
    momentum: float = 0.9  # SGD's
    steps: int = 1000
    train_batch: int = 128
    record_every: int = 10  # a Probe after step 1, every this many steps and after the last
    flat_steps: int = 100  # how long a loss must not move to be reported flat
    region_grid: int = 0  # a 2-D task's decision regions on this many points a side (0: none)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def validated(self) -> TrainConfig:
        """This config with canonical names and every default resolved, or a ConfigError."""
        task = get_task(self.task)
        optimizer = lookup("optimizer", self.optimizer, OPTIMIZERS)
        changes: dict[str, Any] = {"task": task.name, "optimizer": optimizer.name}
        for name, (low, high) in TRAIN_RANGES.items():
            value = getattr(self, name)
            if value is None and name == "task_dim":
                value = task.default_dim
            changes[name] = integer_in(name, value, low, high)
        for name, (low, high) in TRAIN_REAL_RANGES.items():
            value = getattr(self, name)
            if value is None:
                value = optimizer.default_lr if name == "lr" else task.default_noise
            changes[name] = number_in(name, value, low, high)
        if task.fixed_dim and changes["task_dim"] != task.default_dim:
            raise ConfigError("task_dim", f"{task.name} is {task.default_dim}-D; got {changes['task_dim']}")
        return self.replace(**changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise unknown_name("train", key, known)
        return cls(**data)


# --- losses ----------------------------------------------------------------------------------

Loss = Callable[[np.ndarray, np.ndarray, bool], tuple[float, float | None, np.ndarray | None]]


def cross_entropy(logits: np.ndarray, labels: np.ndarray, gradient: bool = True
                  ) -> tuple[float, float | None, np.ndarray | None]:
    """(mean softmax cross-entropy, accuracy, dL/dlogits or None)."""
    rows = np.arange(len(labels))
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -float(np.mean(log_p[rows, labels], dtype=np.float64))
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    if not gradient:
        return loss, accuracy, None
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    grad /= len(labels)
    return loss, accuracy, grad


def mean_squared_error(predictions: np.ndarray, targets: np.ndarray, gradient: bool = True
                       ) -> tuple[float, float | None, np.ndarray | None]:
    """(mean squared error, None (no accuracy), dL/dpredictions or None)."""
    diff = predictions - targets
    loss = float(np.mean(np.square(diff, dtype=np.float64)))
    return loss, None, diff * diff.dtype.type(2 / diff.size) if gradient else None


def loss_of(data: Dataset) -> Loss:
    return cross_entropy if data.is_classification else mean_squared_error


# --- one batch, forward and backward --------------------------------------------------------

@dataclass(frozen=True)
class BatchPass:
    loss: float
    accuracy: float | None
    # (dL/dW, dL/db) per layer, the output layer last (a residual network's: its gradients in a
    # ResidualModel); None if the loss is not finite
    grads: list[Layer] | ResidualModel | None
    nonfinite_layer: int | None  # when the loss is not finite: the first layer (1-based, the output
    # layer L + 1) with a non-finite value in its output (or its kept activation input); of a
    # residual network, the first block with one in its stream x_l or its branch's hidden activation


def loss_and_gradients(layers: Sequence[Layer], block: Block, loss: Loss, x: np.ndarray,
                       targets: np.ndarray) -> BatchPass:
    """The loss of the network ``layers`` (hidden, then the output layer) on a batch, and its
    gradient w.r.t. every weight and bias, by the shared backward pass."""
    hidden, (w_out, b_out) = layers[:-1], layers[-1]
    cache, inv_stds = [], []
    with np.errstate(all="ignore"):
        y = x
        for y, kept, stats in hidden_forward(x, hidden, block):
            cache.append(kept)
            if stats is not None:
                inv_stds.append(stats[1])
        logits = linear(y, w_out, b_out, flush=block.flush)
        value, accuracy, grad_out = loss(logits, targets, True)
        if not math.isfinite(value):
            first = next((i for i, a in enumerate(cache, 1) if not np.isfinite(a).all()), len(layers))
            return BatchPass(value, accuracy, None, first)
        grads: list[Layer] = [(matmul(y.T, grad_out, flush=block.flush), grad_out.sum(axis=0))]
        scratch = np.empty_like(cache[-1])
        for _, grad_h, x_in, _ in backward(matmul(grad_out, w_out.T, flush=block.flush), cache, inv_stds,
                                           [w for w, _ in hidden], block, x, scratch):
            grads.append((matmul(x_in.T, grad_h, flush=block.flush), grad_h.sum(axis=0)))
    return BatchPass(value, accuracy, grads[::-1], None)


# --- residual networks ------------------------------------------------------------------------

@dataclass(frozen=True)
class ResidualModel:
    """A residual network's parameters in training (or their gradients, in the same shapes): the
    input projection (P, b) when the task's dimension differs from the width, the blocks' W1, b1,
    W2, b2, the branch scales alpha (one per block) and the output layer. Training updates the
    arrays in place.

    alpha is learned exactly when the config's branch scale is 0 (ReZero / SkipInit): a fixed 0
    would keep every branch out of the stream (and W2 from any gradient) for good, so a branch
    that starts at 0 only makes sense learned; a nonzero scale (a number, 1/sqrt(L), 1/sqrt(2L)) is
    the fixed scaling of its recipe (GPT-2's is not a parameter)."""

    projection: Layer | None
    blocks: tuple[BlockWeights, ...]
    alpha: np.ndarray  # (L,), of the network's dtype
    learn_alpha: bool
    output: Layer

    def arrays(self) -> list[np.ndarray]:
        """Every trained array in a fixed order: P, b, then W1, b1, W2, b2 per block, alpha (when
        learned), then the output layer's W and b; a gradient's line up with its model's."""
        head = list(self.projection) if self.projection is not None else []
        body = [array for w in self.blocks for array in (w.w1, w.b1, w.w2, w.b2)]
        return [*head, *body, *([self.alpha] if self.learn_alpha else []), *self.output]

    def reported(self) -> list[int]:
        """Indices in `arrays` of the matrices a StepEvent reports: each block's W1 (as the
        simulation's weight statistics), then the output layer's W."""
        first = 2 if self.projection is not None else 0
        return [first + 4 * block for block in range(len(self.blocks))] + [len(self.arrays()) - 2]


def initial_model(setup: Setup, streams: Sequence[np.random.Generator]) -> ResidualModel:
    """A residual network's parameters as the simulation samples them (`initial_blocks` of the
    config with the task's dimension as input width): the projection from its own stream, block l
    from stream l; then the output layer from stream L + 2, as a plain network's. Fixup's output
    layer starts at 0, as in Zhang et al. 2019 (its first step then trains the output layer alone)."""
    net, data = setup.net, setup.data
    c = net.config
    projection = net.sample_projection() if net.has_projection else None
    blocks = tuple(net.sample_block(streams[block]) for block in range(1, c.layers + 1))
    output = net.sample_layer((c.width, data.outputs), streams[c.layers + 2])
    if c.fixup:
        output = (np.zeros_like(output[0]), output[1])
    alpha = np.full(c.layers, c.branch_alpha, net.dtype)
    return ResidualModel(projection, blocks, alpha, c.branch_scale == "0", output)


@dataclass
class _BlockBuffers:
    """A residual network's working arrays for one batch size, reused by every block and step."""

    hidden: np.ndarray  # (batch, E width): the hidden activation, forward and recomputed backward
    branch: np.ndarray  # (batch, width): alpha F(u)
    grad_hidden: np.ndarray  # (batch, E width): dL/dz
    grad_stream: np.ndarray  # (batch, width): post-norm's dL/ds
    grad_in: tuple[np.ndarray, np.ndarray]  # (batch, width): dL/dx_{l-1}, alternating by block

    @classmethod
    def of(cls, net: Network, batch: int) -> _BlockBuffers:
        c, dtype = net.config, net.dtype
        hidden, stream = (batch, c.hidden_width), (batch, c.width)
        return cls(np.empty(hidden, dtype), np.empty(stream, dtype), np.empty(hidden, dtype),
                   np.empty(stream, dtype), (np.empty(stream, dtype), np.empty(stream, dtype)))


def _forward_buffers(net: Network, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """`_residual_forward`'s working buffers for ``batch`` samples (a probe's: no backward pass)."""
    c = net.config
    return np.empty((batch, c.hidden_width), net.dtype), np.empty((batch, c.width), net.dtype)


def _residual_forward(model: ResidualModel, net: Network, x: np.ndarray, hidden: np.ndarray, branch: np.ndarray,
                      population: Sequence[NormStats | None] | None = None) -> Iterator[BlockPass]:
    """Run ``x`` through the projection and the blocks; yield each block's network.BlockPass (its
    out is the stream x_l, a fresh array). ``hidden`` (batch, E width) and ``branch`` (batch,
    width): `block_forward`'s working buffers, reused by every block."""
    norm = net.block
    stream = x
    if model.projection is not None:
        stream = linear(x, *model.projection, flush=norm.flush)
        norm.flushed(stream)
    for index, weights in enumerate(model.blocks):
        step = block_forward(stream, weights, norm, net.branch, net.config.residual, float(model.alpha[index]),
                             None, hidden, branch, population[index] if population else None)
        stream = step.out
        yield step
        del step  # a probe keeps no block's pass: it is gone before the next is made


def residual_loss_and_gradients(model: ResidualModel, net: Network, loss: Loss, x: np.ndarray,
                                targets: np.ndarray, buffers: _BlockBuffers | None = None) -> BatchPass:
    """`loss_and_gradients` of a residual network: the loss on a batch and the gradient of every
    parameter of ``model`` (a ResidualModel of them), by network.py's exact block backward pass."""
    norm, branch, flush = net.block, net.branch, net.block.flush
    buffers = buffers or _BlockBuffers.of(net, len(x))
    caches: list[BlockCache] = []
    with np.errstate(all="ignore"):
        stream = x
        for step in _residual_forward(model, net, x, buffers.hidden, buffers.branch):
            caches.append(step.cache)
            stream = step.out
        w_out, b_out = model.output
        logits = linear(stream, w_out, b_out, flush=flush)
        value, accuracy, grad_out = loss(logits, targets, True)
        if not math.isfinite(value):
            # block l's stream x_l is block l + 1's branch input (or its normalized copy), the last the output
            streams = [cache.branch_in for cache in caches[1:]] + [stream]
            first = next((block for block, (cache, out) in enumerate(zip(caches, streams), 1)
                          if not (np.isfinite(cache.hidden).all() and np.isfinite(out).all())), len(caches) + 1)
            return BatchPass(value, accuracy, None, first)
        output = (matmul(stream.T, grad_out, flush=flush), grad_out.sum(axis=0))
        grad = matmul(grad_out, w_out.T, flush=flush)
        del stream, logits
        blocks: list[BlockWeights] = []
        alphas = np.zeros_like(model.alpha)
        for index in range(len(model.blocks) - 1, -1, -1):
            back = block_backward(grad, caches.pop(), model.blocks[index], norm, branch, float(model.alpha[index]),
                                  buffers.grad_stream, buffers.grad_hidden, buffers.grad_in[index % 2],
                                  buffers.hidden, model.learn_alpha)
            assert back.parameters is not None
            blocks.append(back.parameters)
            if back.alpha is not None:
                alphas[index] = back.alpha
            grad = back.grad_in
        projection = None
        if model.projection is not None:
            projection = (matmul(x.T, grad, flush=flush), grad.sum(axis=0))
    grads = ResidualModel(projection, tuple(blocks[::-1]), alphas, model.learn_alpha, output)
    return BatchPass(value, accuracy, grads, None)


def residual_probe(model: ResidualModel, net: Network, data: Dataset, grid: int = 0) -> Probe:
    """`probe` of a residual network: per block the std of its stream x_l; the decision regions with
    batch norm's statistics of the training set, as a plain network's."""
    stds, population = [], []
    with np.errstate(all="ignore"):
        stream = data.inputs
        for step in _residual_forward(model, net, data.inputs, *_forward_buffers(net, len(stream))):
            stream = step.out
            stds.append(std_of(stream))
            population.append(step.stats)
            del step  # see _residual_forward
        value, accuracy, _ = loss_of(data)(linear(stream, *model.output, flush=net.block.flush), data.targets, False)
        del stream
        regions = None
        if grid and data.dim == 2:
            points = data.grid(grid)
            stream = points
            for step in _residual_forward(model, net, points, *_forward_buffers(net, grid * grid), population):
                stream = step.out
                del step
            out = linear(stream, *model.output, flush=net.block.flush)
            regions = (out.argmax(axis=1).astype(np.int8) if data.is_classification
                       else out[:, 0].copy()).reshape(grid, grid)
    return Probe(value, accuracy, tuple(stds), regions)


# --- optimizers ------------------------------------------------------------------------------

class Optimizer(ABC):
    """Updates the parameters (a flat list of arrays) in place; `step` returns std(lr * update) of
    the arrays it is asked to report (the weight matrices)."""

    name: ClassVar[str]
    default_lr: ClassVar[float]

    def __init__(self, params: Sequence[np.ndarray], training: TrainConfig) -> None:
        self.lr = float(training.lr)
        self.training = training

    @abstractmethod
    def delta(self, index: int, grad: np.ndarray) -> np.ndarray:
        """The change to subtract from parameter ``index`` (W1, b1, W2, ...), lr included."""

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], reported: Sequence[int]
             ) -> list[float]:
        stds = {}
        wanted = set(reported)
        for index, (param, grad) in enumerate(zip(params, grads)):
            delta = self.delta(index, grad)
            param -= delta
            if index in wanted:
                stds[index] = std_of(delta)
        return [stds[index] for index in reported]


def _flat(layers: Sequence[Layer]) -> list[np.ndarray]:
    return [array for layer in layers for array in layer]


class Sgd(Optimizer):
    """SGD with momentum, PyTorch's form: v <- momentum v + g; p <- p - lr v."""

    name = "sgd"
    default_lr = 0.01

    def __init__(self, params: Sequence[np.ndarray], training: TrainConfig) -> None:
        super().__init__(params, training)
        self.velocity = [np.zeros_like(a) for a in params]

    def delta(self, index: int, grad: np.ndarray) -> np.ndarray:
        v = self.velocity[index]
        v *= v.dtype.type(self.training.momentum)
        v += grad
        return v * v.dtype.type(self.lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, betas (0.9, 0.999), eps 1e-8."""

    name = "adam"
    default_lr = 0.001

    def __init__(self, params: Sequence[np.ndarray], training: TrainConfig) -> None:
        super().__init__(params, training)
        self.moments = [(np.zeros_like(a), np.zeros_like(a)) for a in params]
        self.steps = 0

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], reported: Sequence[int]
             ) -> list[float]:
        self.steps += 1
        return super().step(params, grads, reported)

    def delta(self, index: int, grad: np.ndarray) -> np.ndarray:
        (b1, b2), t = ADAM_BETAS, self.steps
        m, v = self.moments[index]
        m *= m.dtype.type(b1)
        m += m.dtype.type(1 - b1) * grad
        v *= v.dtype.type(b2)
        v += v.dtype.type(1 - b2) * grad * grad
        denominator = np.sqrt(v * v.dtype.type(1 / (1 - b2**t)))
        denominator += v.dtype.type(ADAM_EPS)
        return m * m.dtype.type(self.lr / (1 - b1**t)) / denominator


OPTIMIZERS: dict[str, type[Optimizer]] = {o.name: o for o in (Sgd, Adam)}


# --- events and results ----------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """The whole training set, measured after a step's update."""

    loss: float
    accuracy: float | None
    activation_std: tuple[float, ...]  # per hidden layer
    regions: np.ndarray | None  # (grid, grid) over Dataset.extent, row i at the i-th y: the predicted
    # class (int8) or value (regression); 2-D tasks with region_grid > 0 only

    def record(self) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "activation_std": list(self.activation_std)}


@dataclass(frozen=True)
class StepEvent:
    step: int  # 1-based
    steps: int
    loss: float  # the mini-batch's, before this step's update
    accuracy: float | None  # the mini-batch's; None for regression
    # Per weight matrix, the hidden layers 1..L then the output layer:
    grad_norm: tuple[float, ...]  # Frobenius norm of dL/dW
    grad_data: tuple[float, ...]  # std(dL/dW) / std(W)
    update_data: tuple[float, ...]  # log10(std(lr * update) / std(W))
    flat: bool  # the loss has not moved over the last flat_steps steps
    probe: Probe | None
    # A residual network's learned branch scales (ReZero / SkipInit: branch scale 0), per block,
    # after this step's update; None where alpha is fixed (and for plain networks)
    alpha: tuple[float, ...] | None = None

    def record(self) -> dict[str, Any]:
        """JSON-able, the keys `initsim train --json` documents."""
        out = {"step": self.step, "loss": self.loss, "accuracy": self.accuracy,
               "grad_norm": list(self.grad_norm), "grad_data": list(self.grad_data),
               "update_data": list(self.update_data), "flat": self.flat}
        if self.alpha is not None:
            out["alpha"] = list(self.alpha)
        if self.probe is not None:
            out["probe"] = self.probe.record()
        return out


@dataclass(frozen=True)
class Diverged:
    """The loss became non-finite at ``step``: the run ends here."""

    step: int
    layer: int  # the first layer with non-finite values: 1..L hidden, L + 1 the output layer
    layers: int  # L
    loss: float
    blocks: bool = False  # of a residual network: ``layer`` is a block (its stream or branch), L + 1 the output layer

    @property
    def message(self) -> str:
        if self.blocks:
            where = "the output layer" if self.layer > self.layers else f"block {self.layer}"
        else:
            where = f"layer {self.layer}" + (", the output layer" if self.layer > self.layers else "")
        return f"diverged at step {self.step} (first non-finite values in {where})"


TrainEvent = StepEvent | Diverged


# --- the verdict -----------------------------------------------------------------------------

VerdictKind = Literal["diverged", "not learning", "flat", "too early", "healthy"]

# The verdict reads the mini-batch loss through medians, which a few batches' spikes cannot move: the
# loss at the start is the median of the first START_STEPS steps (about the initialization's loss:
# the optimizer has barely moved yet), the loss now that of the later half of the steps so far, at
# most the last RECENT_MAX (the longer the window, the surer the loss now, and the later it follows
# a change: 200 steps tell a regression net at chance from one 5% off at batch 128).
START_STEPS = 5
RECENT_MAX = 200
# No verdict (but divergence) before this many steps: the later half then starts after 25 steps of
# training, time for most nets that learn at their optimizer's default rate to leave chance level
# (measured on the presets' nets with spirals, blobs and regression). Some nets sit at chance for
# hundreds of steps before they learn: they are called not learning until they do.
VERDICT_STEPS = 50
# Not learning, healthy and flat hold only with this many standard errors to spare (of the loss now:
# the median's, 1.25 sigma / sqrt(steps) with sigma the batch losses' interquartile range / 1.35; for
# flat, of the difference of two means): jitter delays them, too early to tell in the meantime, and
# cannot make one flip to another.
CERTAINTY = 2.0
MEDIAN_ERROR = 1.25 / 1.35
# Not learning: the loss now within this fraction of chance. Nets that learn nothing sit from exactly
# at it (a dead signal) to 4% above it (a chaotic tanh net at batch 16: its noisy outputs cost it).
CHANCE_BAND = 0.05
# Healthy: the loss now at most this fraction of chance (twice the band away from it: the loss of a
# net that learns nothing is never there) and below the start.
HEALTHY_FRACTION = 0.9
# Flat: the means of the two halves of the last `flat_steps` losses surely differ by less than this
# fraction of their size (a dead signal's loss moves by less than 0.1%; a learning net's jitters more).
FLAT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Chance:
    """The loss of a network that has learned nothing from the inputs: the best it can do without
    them."""

    loss: float
    meaning: str  # how that loss comes about, in plain words


def chance_of(data: Dataset) -> Chance:
    """The cross-entropy of guessing by the classes' frequencies (ln of the number of classes when
    they are balanced), or the mean squared error of predicting the targets' mean."""
    if data.is_classification:
        frequencies = np.bincount(data.targets, minlength=data.classes) / len(data.targets)
        frequencies = frequencies[frequencies > 0]
        return Chance(float(-np.sum(frequencies * np.log(frequencies))),
                      f"guessing among {data.classes} classes")
    return Chance(float(np.var(data.targets, dtype=np.float64)), "predicting the mean")


@dataclass(frozen=True)
class Verdict:
    """How a run stands, for a status line: its kind, and a message in plain words that starts
    with it."""

    kind: VerdictKind
    message: str


def verdict_of(losses: Sequence[float] | np.ndarray, chance: Chance, flat_steps: int,
               diverged: Diverged | None = None) -> Verdict:
    """The verdict on a run from the mini-batch ``losses`` of its steps so far and, if its loss
    became non-finite, the ``diverged`` event that ended it."""
    if diverged is not None:
        return Verdict("diverged", f"{diverged.message}: the signal exploded")
    values = np.asarray(losses, dtype=np.float64)
    if len(values) < VERDICT_STEPS:
        return Verdict("too early", f"too early to tell: the loss is judged from step {VERDICT_STEPS}")
    recent = values[-min(len(values) // 2, RECENT_MAX):]
    start, now = float(np.median(values[:START_STEPS])), float(np.median(recent))
    low, high = np.percentile(recent, [25, 75])
    error = MEDIAN_ERROR * float(high - low) / math.sqrt(len(recent))
    flat = loss_is_flat(values, flat_steps)
    near_chance = abs(now - chance.loss) <= CHANCE_BAND * chance.loss
    level = f"chance level ({chance.loss:.3g}, {chance.meaning})"
    if near_chance and abs(now - chance.loss) + CERTAINTY * error <= CHANCE_BAND * chance.loss:
        still = f"; it has not moved for {flat_steps} steps: a dead or vanished signal" if flat else ""
        return Verdict("not learning", f"not learning: the loss stays at {level}, {now:.3g} over the last "
                                       f"{len(recent)} steps{still}")
    if now + CERTAINTY * error < min(HEALTHY_FRACTION * chance.loss, start):
        return Verdict("healthy", f"healthy: the loss has fallen from {start:.3g} at the start to {now:.3g} "
                                  f"(chance level {chance.loss:.3g})")
    if flat:
        return Verdict("flat", f"flat: the loss has not moved for {flat_steps} steps, at {now:.3g} "
                               f"(chance level {chance.loss:.3g})")
    where = ("near chance level, its jitter too large to be sure" if near_chance else
             f"{abs(now / chance.loss - 1):.0%} {'below' if now < chance.loss else 'above'} chance level")
    return Verdict("too early", f"too early to tell: the loss, {now:.3g} \u00b1 {error:.2g} over the last "
                                f"{len(recent)} steps, is {where} ({chance.loss:.3g})")


def loss_is_flat(losses: Sequence[float] | np.ndarray, flat_steps: int) -> bool:
    """Whether the loss has surely not moved over its last ``flat_steps`` values: the means of their
    two halves differ by less than FLAT_TOLERANCE of their size, CERTAINTY standard errors of that
    difference to spare (a jittering loss does not surely stand still)."""
    if len(losses) < flat_steps:
        return False
    halves = np.array_split(np.asarray(losses, dtype=np.float64)[-flat_steps:], 2)
    early, late = (float(half.mean()) for half in halves)
    error = math.sqrt(sum(float(half.var()) / len(half) for half in halves))
    return abs(early - late) + CERTAINTY * error < FLAT_TOLERANCE * max(abs(early), abs(late))


@dataclass(frozen=True)
class TrainResult:
    config: SimConfig  # validated; its input width is the task's dimension
    training: TrainConfig  # validated
    data_digest: str  # the training set's fingerprint (`Dataset.digest`)
    chance: Chance  # the training set's (`chance_of`)
    steps: tuple[StepEvent, ...]
    diverged: Diverged | None
    layers: tuple[Layer, ...]  # the final (W, b), hidden layers then the output layer (empty: residual)
    seconds: float
    residual: ResidualModel | None = None  # a residual network's final parameters

    @property
    def verdict(self) -> Verdict:
        return verdict_of([e.loss for e in self.steps], self.chance, self.training.flat_steps, self.diverged)

    @property
    def status(self) -> VerdictKind:
        """The verdict's kind: diverged, not learning, flat, too early or healthy."""
        return self.verdict.kind

    @property
    def last_probe(self) -> Probe | None:
        return next((e.probe for e in reversed(self.steps) if e.probe is not None), None)


# --- the run -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    """A run's validated network (input width: the task's dimension), settings and data, and its
    memory and time estimate (`memory.training`, for showing before it runs)."""

    net: Network
    training: TrainConfig
    data: Dataset
    estimate: memory.Estimate

    @classmethod
    def of(cls, config: SimConfig, training: TrainConfig | None = None, data: Dataset | None = None,
           memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Setup:
        """``data``: use these (for a comparison: the same data in every run) instead of generating
        the task's data from ``training``. ConfigError, before the data are generated, if the run
        needs more than ``memory_limit`` bytes (`memory.training`)."""
        config, training = config.validated(), (training or TrainConfig()).validated()
        if data is not None and data.dim != training.task_dim:
            raise ConfigError("task_dim", f"the data are {data.dim}-D; got {training.task_dim}")
        estimate = memory.training(config, training, data_shared=data is not None)
        memory.check(estimate, memory_limit, "layers, width, batch, samples, task dimension or steps")
        if data is None:
            data = make_dataset(training.task, training.samples, training.noise, training.task_dim,
                                training.data_seed, config.dtype)
        net = Network.of(config.replace(input_width=data.dim, batch=min(training.train_batch, len(data.inputs))))
        return cls(net, training, data, estimate)


def train_stream(config: SimConfig, training: TrainConfig | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Iterator[TrainEvent]:
    """Yield a StepEvent per step; a Diverged event ends a run whose loss became non-finite.

    Stops early, cleanly, when the caller stops iterating or ``should_stop()`` turns true.
    Raises ConfigError (before yielding anything) for an invalid config, or one whose run needs
    more than ``memory_limit`` bytes.
    """
    yield from run(Setup.of(config, training, memory_limit=memory_limit), should_stop)


def train(config: SimConfig, training: TrainConfig | None = None,
          memory_limit: int = DEFAULT_MEMORY_LIMIT) -> TrainResult:
    """Run the whole training and collect its events."""
    setup = Setup.of(config, training, memory_limit=memory_limit)
    started = time.perf_counter()
    layers: list[Layer | ResidualModel] = []
    events = list(run(setup, layers_out=layers))
    diverged = events[-1] if events and isinstance(events[-1], Diverged) else None
    residual = layers[0] if layers and isinstance(layers[0], ResidualModel) else None
    return TrainResult(setup.net.config, setup.training, setup.data.digest, chance_of(setup.data),
                       tuple(e for e in events if isinstance(e, StepEvent)), diverged,
                       () if residual is not None else tuple(layers), time.perf_counter() - started, residual)


def initial_layers(setup: Setup, streams: Sequence[np.random.Generator]) -> list[Layer]:
    """The hidden layers as the simulation samples them, then the output layer (stream L + 2)."""
    net, data = setup.net, setup.data
    c = net.config
    layers = [net.sample_layer(c.fans(layer), streams[layer]) for layer in range(1, c.layers + 1)]
    layers.append(net.sample_layer((c.width, data.outputs), streams[c.layers + 2]))
    if net.scheme.data_dependent:
        y = data.inputs
        for y, _, _ in hidden_forward(data.inputs, layers[:-1], net.block, fitting=net.scheme):
            pass  # rescaling each layer in turn
        net.scheme.fit(y, *layers[-1], linear(y, *layers[-1], flush=net.block.flush), net.block.flush)
    return layers


def run(setup: Setup, should_stop: Callable[[], bool] | None = None,
        layers_out: list[Layer | ResidualModel] | None = None) -> Iterator[TrainEvent]:
    """The training loop of a prepared run (see `train_stream`); ``layers_out`` receives the
    parameters, (W, b) per layer (a residual network's: its ResidualModel), which training then
    updates in place."""
    net, training, data = setup.net, setup.training, setup.data
    should_stop = should_stop or (lambda: False)
    loss = loss_of(data)
    streams = net.streams(extra=2)  # [..., output layer, batch order]
    residual = net.config.residual != "none"
    model = initial_model(setup, streams) if residual else None
    layers = [] if model is not None else initial_layers(setup, streams)
    params = model.arrays() if model is not None else _flat(layers)
    reported = model.reported() if model is not None else list(range(0, len(params), 2))
    if layers_out is not None:
        layers_out.extend([model] if model is not None else layers)
    optimizer = OPTIMIZERS[training.optimizer](params, training)
    batches = _batches(len(data.inputs), training.train_batch, streams[-1])
    buffers = _BlockBuffers.of(net, min(training.train_batch, len(data.inputs))) if residual else None
    recent: deque[float] = deque(maxlen=training.flat_steps)
    for step in range(1, training.steps + 1):
        if should_stop():
            return
        index = next(batches)
        if model is not None:
            batch = residual_loss_and_gradients(model, net, loss, data.inputs[index], data.targets[index], buffers)
        else:
            batch = loss_and_gradients(layers, net.block, loss, data.inputs[index], data.targets[index])
        if batch.grads is None:
            yield Diverged(step, batch.nonfinite_layer, net.config.layers, batch.loss, residual)
            return
        grads = batch.grads.arrays() if isinstance(batch.grads, ResidualModel) else _flat(batch.grads)
        ratios = _update(params, grads, reported, optimizer)
        recent.append(batch.loss)
        probed = step == 1 or step % training.record_every == 0 or step == training.steps
        flat = loss_is_flat(recent, training.flat_steps)
        measured = None
        if probed:
            measured = (residual_probe(model, net, data, training.region_grid) if model is not None
                        else probe(layers, net.block, data, training.region_grid))
        alpha = _floats(model.alpha) if model is not None and model.learn_alpha else None
        yield StepEvent(step, training.steps, batch.loss, batch.accuracy, *ratios, flat, measured, alpha)


def _update(params: list[np.ndarray], grads: list[np.ndarray], reported: Sequence[int], optimizer: Optimizer
            ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Apply the optimizer's step; per reported weight matrix, (gradient norm, grad:data, log10
    update:data)."""
    with np.errstate(all="ignore"):  # an overflowing step shows as the next step's non-finite loss
        weight_std = np.array([std_of(params[i]) for i in reported])
        grad_norm = np.array([math.sqrt(float(np.dot(grads[i].reshape(-1), grads[i].reshape(-1))))
                              for i in reported])
        grad_std = np.array([std_of(grads[i]) for i in reported])
        update_std = np.array(optimizer.step(params, grads, reported))
        return _floats(grad_norm), _floats(grad_std / weight_std), _floats(np.log10(update_std / weight_std))


def probe(layers: Sequence[Layer], block: Block, data: Dataset, grid: int = 0) -> Probe:
    """Loss, accuracy and per-layer activation std on the whole training set, and for a 2-D task
    with ``grid`` > 0 its decision regions (normalized with the training set's statistics)."""
    hidden, output = layers[:-1], layers[-1]
    stds, population = [], []
    with np.errstate(all="ignore"):
        y = data.inputs
        for y, _, stats in hidden_forward(data.inputs, hidden, block):
            stds.append(std_of(y))
            population.append(stats)
        value, accuracy, _ = loss_of(data)(linear(y, *output, flush=block.flush), data.targets, False)
        regions = None
        if grid and data.dim == 2:
            points = data.grid(grid)
            y = points
            for y, _, _ in hidden_forward(points, hidden, block, population=population):
                pass  # only the last layer's output is needed
            out = linear(y, *output, flush=block.flush)
            regions = (out.argmax(axis=1).astype(np.int8) if data.is_classification
                       else out[:, 0].copy()).reshape(grid, grid)
    return Probe(value, accuracy, tuple(stds), regions)


def _batches(samples: int, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of ``size`` samples: a fresh permutation per epoch, its remainder dropped
    (the whole set, in a new order, when ``size`` is at least the number of samples)."""
    while True:
        order = rng.permutation(samples)
        for start in range(0, max(samples - size, 0) + 1, size):
            yield order[start:start + size]


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
