"""The network's layers, forward and backward, shared by the simulation and training.

A hidden layer computes h = x W + b (W of shape (fan_in, fan_out)), optionally normalizes h over the
batch or over the layer (without the affine part), and applies the activation: y = phi(u), u = norm(h).
The normalizations: batch, u = (h - mean) / sqrt(var + eps), each unit over the batch; layer, the same
for each sample over its units; rms (RMSNorm, as in Llama), u = h / sqrt(mean(h^2) + eps), each
sample over its units, with no mean subtracted. eps = NORM_EPS for all three.

Backpropagation is written once, in `backward`: the simulation drives it with a random gradient at
the network's output, training with the gradient of its loss.

Memory: the backward pass needs, per layer, the weights and one batch-by-width array. Where the
activation's derivative can be had from its output (relu, tanh, sigmoid, ...) and there is no
normalization, that array is the output itself, which the next layer's weight gradient needs anyway;
otherwise it is the activation's input u, and the output is recomputed when needed.

Subnormals: a signal that vanishes passes below the dtype's smallest normal, where many CPUs
compute at a fraction of their speed. Unless the config keeps IEEE's gradual underflow
(``subnormals = "keep"``), each array that the next matrix multiply reads (a layer's activation input
and output, the gradient w.r.t. its linear output) has its subnormal values set to a zero of the same
sign once its elementwise work is done, so that a subnormal lives for at most one elementwise pass and
never reaches a GEMM: flush-to-zero in numpy, on any CPU. That is not enough: normal values whose
products fall below the smallest normal (a vanishing signal times a vanishing gradient, in every
weight gradient of a vanishing net) slow a multiply down as much on many CPUs. So each matrix
multiply whose products could underflow is done on its operands scaled by powers of two
(`scaled_matmul`): none of its products is lost, where a CPU's flush-to-zero would lose them all.
Values at or above the smallest normal, and so every run that does not underflow, are untouched bit
for bit.

Randomness: one numpy SeedSequence per config seed, spawned into independent streams: the input, each
layer's weights and bias, the output gradient, then whatever else a caller asks for (training's output
layer and batch order). A SeedSequence's k-th child does not depend on how many are spawned, so a
layer's weights depend only on the seed, the layer's index and its shape, in the simulation and in
training alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .activations import Activation, get_activation
from .config import SimConfig
from .products import linear, matmul
from .schemes import BiasInit, Scheme, get_bias_init, get_scheme

NORM_EPS = 1e-5  # added to the variance (mean square for rms) before its root, as PyTorch's default

Layer = tuple[np.ndarray, np.ndarray]  # (W, b)
# (mean, inverse std) of a normalization: for rms the mean is 0 (none is subtracted) and the inverse
# std is 1 / sqrt(mean(h^2) + eps)
NormStats = tuple[np.ndarray | float, np.ndarray]


def reused(buffer: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``buffer`` if it has that shape and dtype, else a new empty array: a working array
    allocated once for every layer of the same shape."""
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        return np.empty(shape, dtype)
    return buffer


BLOCK_VALUES = 1 << 16  # values an elementwise pass looks at a time


def row_blocks(array: np.ndarray) -> list[slice]:
    """Slices of ``array``'s first axis of about BLOCK_VALUES values each (at least one row).
    Done a block at a time, an elementwise pass keeps its temporaries in the CPU's cache, and they
    are too small to be fresh pages from the system (see engine.memory's mmap threshold)."""
    rows = max(1, BLOCK_VALUES * array.shape[0] // max(array.size, 1))
    return [slice(first, first + rows) for first in range(0, array.shape[0], rows)]


def flush_subnormals(array: np.ndarray, flush: bool) -> int:
    """How many values of ``array`` (float32 or float64, at least 1-D) are subnormal (nonzero,
    below the dtype's smallest normal); with ``flush``, each becomes a zero of its sign, in place.

    On the bits, as unsigned integers: with the sign bit shifted out, a subnormal is 2..2 * mantissa
    mask, so one subtraction and one comparison find them (zeros wrap around to the top). Done a
    block of rows at a time, which keeps it a fraction of the matrix multiply it precedes.
    """
    if array.size == 0:
        return 0
    info = np.finfo(array.dtype)
    bits = array.view(np.dtype(f"u{array.dtype.itemsize}"))
    limit = bits.dtype.type(2 * ((1 << info.nmant) - 1) - 1)
    sign = bits.dtype.type(1 << (8 * array.dtype.itemsize - 1))
    blocks = row_blocks(bits)
    shifted = np.empty(bits[blocks[0]].shape, bits.dtype)
    subnormal = np.empty(shifted.shape, bool)
    count = 0
    for rows in blocks:
        block = bits[rows]
        shift, found = shifted[:len(block)], subnormal[:len(block)]
        np.left_shift(block, 1, out=shift)
        shift -= 2
        np.less(shift, limit, out=found)
        block_count = int(np.count_nonzero(found))
        if flush and block_count:
            np.bitwise_and(block, sign, out=block, where=found)
        count += block_count
    return count


def normalize_backward(grad_u: np.ndarray, u: np.ndarray, inv_std: np.ndarray, norm: str) -> np.ndarray:
    """dL/dh from dL/du for u = (h - mean) * inv_std (in place on grad_u), exactly, eps included.

    With r = inv_std = (mean((h - mean)^2) + eps)^(-1/2) over n values, dr/dh_j = -r^3 (h_j - mean) / n,
    so dL/dh = r (g - mean(g) - u mean(g u)); rms subtracts no mean, and its dL/dh = r (g - u mean(g u))
    (the same derivation with mean = 0)."""
    axis = 0 if norm == "batch" else 1
    mean_grad_u = (grad_u * u).mean(axis=axis, keepdims=True)
    if norm != "rms":
        grad_u -= grad_u.mean(axis=axis, keepdims=True)
    grad_u -= u * mean_grad_u
    grad_u *= inv_std
    return grad_u


@dataclass(frozen=True)
class Block:
    """What a hidden layer does after its linear part: the normalization and the activation."""

    act: Activation
    params: dict
    norm: str  # one of config.NORMS
    flush: bool  # subnormals set to zero (see the module's docstring), else IEEE's gradual underflow

    @property
    def keeps_output(self) -> bool:
        """Whether the backward pass keeps the layer's output (else its activation input u)."""
        return self.act.derivative_from_output is not None and self.norm == "none"

    def normalize(self, h: np.ndarray, population: NormStats | None = None) -> NormStats | None:
        """Normalize h in place (batch: each unit over the batch; layer and rms: each sample over its
        units, rms without subtracting the mean).

        ``population``: batch norm's (mean, inv_std) taken from another batch instead of this one
        (evaluating on points that are not a sample of the data). Returns the statistics used.
        """
        if self.norm == "none":
            return None
        if population is not None and self.norm == "batch":
            mean, inv_std = population
            h -= mean
        elif self.norm == "rms":
            mean = 0.0
            inv_std = 1 / np.sqrt(np.mean(h * h, axis=1, keepdims=True) + NORM_EPS)
        else:
            axis = 0 if self.norm == "batch" else 1
            mean = h.mean(axis=axis, keepdims=True)
            h -= mean
            inv_std = 1 / np.sqrt(np.mean(h * h, axis=axis, keepdims=True) + NORM_EPS)
        h *= inv_std
        return mean, inv_std

    def flushed(self, array: np.ndarray) -> int:
        """The count of ``array``'s subnormal values, flushed in place if the block flushes."""
        return flush_subnormals(array, self.flush)

    def activate(self, u: np.ndarray, work: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(y, kept, subnormal): the output y = phi(u), the array the backward pass keeps, and the
        count of y's subnormal values (flushed if the block flushes; u is the caller's to flush,
        after its normalization). When the output is what is kept, y is u overwritten; otherwise
        y is written into ``work``."""
        if self.keeps_output:
            y = self.act.forward(u, self.params)
            return y, y, self.flushed(y)
        np.copyto(work, u)
        y = self.act.forward(work, self.params)
        return y, u, self.flushed(y)

    def output_of(self, kept: np.ndarray, work: np.ndarray) -> np.ndarray:
        """The layer's output from its kept array (recomputed into ``work`` when that is u, and
        flushed as `activate` flushed it)."""
        if self.keeps_output:
            return kept
        np.copyto(work, kept)
        y = self.act.forward(work, self.params)
        self.flushed(y)
        return y

    def backward(self, grad: np.ndarray, kept: np.ndarray, inv_std: np.ndarray | None
                 ) -> tuple[np.ndarray, int]:
        """(dL/dh, subnormal) from dL/dy, in place on ``grad``: subnormal counts the values of dL/dh
        below the smallest normal, flushed as the block says."""
        derivative = self.act.derivative_from_output if self.keeps_output else self.act.derivative
        for rows in row_blocks(grad):
            grad[rows] *= derivative(kept[rows], self.params)
        if self.norm != "none":
            normalize_backward(grad, kept, inv_std, self.norm)
        return grad, self.flushed(grad)


@dataclass(frozen=True)
class Network:
    """A validated config's registry entries, looked up once: how to sample and run its layers."""

    config: SimConfig
    scheme: Scheme
    bias: BiasInit
    block: Block
    dtype: np.dtype

    @classmethod
    def of(cls, config: SimConfig) -> Network:
        config = config.validated()
        block = Block(get_activation(config.activation), config.activation_params, config.norm,
                      config.subnormals == "flush")
        return cls(config, get_scheme(config.init), get_bias_init(config.bias_init), block,
                   np.dtype(config.dtype))

    def streams(self, extra: int = 0) -> list[np.random.Generator]:
        """[input, layer 1, ..., layer L, output gradient], then ``extra`` more streams."""
        seeds = np.random.SeedSequence(self.config.seed).spawn(self.config.layers + 2 + extra)
        return [np.random.default_rng(s) for s in seeds]

    def sample_layer(self, fans: tuple[int, int], rng: np.random.Generator) -> Layer:
        """A fresh (W, b) of shape (fan_in, fan_out) from the config's scheme and bias init."""
        c = self.config
        w = self.scheme.sample(*fans, rng, self.dtype, c.init_params)
        b = self.bias.sample(*fans, rng, self.dtype, c.bias_params)
        return w, b


def hidden_forward(x: np.ndarray, layers: Sequence[Layer], block: Block, fitting: Scheme | None = None,
                   population: Sequence[NormStats | None] | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, NormStats | None]]:
    """Run ``x`` through the hidden layers; yield each layer's (y, kept, normalization statistics).

    A yielded y may live in a working buffer that the layer after next overwrites: use it before
    then (the last layer's stays valid). ``fitting``: the scheme that fits each W to the data
    (`Scheme.fit`, LSUV's rescaling) before its
    normalization; ``population`` gives batch norm's statistics per layer (see `Block.normalize`).
    """
    buffers = [np.empty((x.shape[0], w.shape[1]), x.dtype) for w, _ in layers[:2]]
    for index, (w, b) in enumerate(layers):
        h = linear(x, w, b, flush=block.flush)
        if fitting is not None:
            fitting.fit(x, w, b, h, block.flush)
        stats = block.normalize(h, population[index] if population else None)
        block.flushed(h)
        x, kept, _ = block.activate(h, buffers[index % 2])
        yield x, kept, stats


def backward(grad: np.ndarray, cache: list[np.ndarray], inv_stds: list[np.ndarray],
             weights: Sequence[np.ndarray], block: Block, x0: np.ndarray, scratch: np.ndarray
             ) -> Iterator[tuple[int, np.ndarray, np.ndarray, int]]:
    """Backpropagate dL/dy of the last hidden layer (``grad``, overwritten) down to layer 1.

    For each layer L..1, yields (layer, dL/dh, x_in, subnormal): the gradient w.r.t. the layer's
    linear output, the layer's input and the count of subnormal values in dL/dh (`Block.backward`), from which dL/dW = x_in.T @ dL/dh and dL/db = the batch sum of dL/dh;
    then hands dL/dx_in = dL/dh @ W.T on to the layer below. ``cache`` (the kept arrays) and
    ``inv_stds`` are popped as it goes, releasing each layer's array once used; x_in may live in
    ``scratch``, which the next layer overwrites, and dL/dh in a buffer that the layer after next
    overwrites.
    """
    spare = None  # where dL/dx_in goes; it and grad swap each layer (no fresh array per layer)
    for layer in range(len(cache), 0, -1):
        kept = cache.pop()
        grad, subnormal = block.backward(grad, kept, inv_stds.pop() if inv_stds else None)
        del kept
        x_in = x0 if layer == 1 else block.output_of(cache[-1], scratch)
        yield layer, grad, x_in, subnormal
        if layer > 1:
            w = weights[layer - 1]
            spare = matmul(grad, w.T, reused(spare, (grad.shape[0], w.shape[0]), grad.dtype), block.flush)
            grad, spare = spare, grad
