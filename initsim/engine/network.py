"""The network's layers, forward and backward, shared by the simulation and training.

A hidden layer computes h = x W + b (W of shape (fan_in, fan_out)), optionally normalizes h over the
batch or over the layer (without the affine part), and applies the activation: y = phi(u), u = norm(h).
The normalizations: batch, u = (h - mean) / sqrt(var + eps), each unit over the batch; layer, the same
for each sample over its units; rms (RMSNorm, as in Llama), u = h / sqrt(mean(h^2) + eps), each
sample over its units, with no mean subtracted. eps = NORM_EPS for all three.

Backpropagation is written once, in `backward`: the simulation drives it with a random gradient at
the network's output, training with the gradient of its loss.

A residual network (config.residual pre or post, issue 13) is made of blocks instead: pre-norm
x_l = x_{l-1} + alpha F(norm(x_{l-1})), post-norm x_l = norm(x_{l-1} + alpha F(x_{l-1})), with the
branch F(u) = phi(u W1 + b1) W2 + b2 (`block_forward`, `block_backward`, exact for every norm).
Block l draws W1, b1, W2, b2 in that order from plain layer l's stream; an input projection, when the
input's width differs from the stream's, has a stream of its own (`Network.projection_stream`).

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
from dataclasses import dataclass, replace

import numpy as np

from .activations import Activation, get_activation
from .chain import FIELD, Chain, load_chain
from .config import SimConfig
from .errors import ConfigError
from .products import linear, matmul
from .schemes import CHECKPOINT, BiasInit, Scheme, get_bias_init, get_scheme

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
    chain: Chain | None = None  # the checkpoint scheme's layers, read from its file instead of drawn

    @property
    def branch(self) -> Block:
        """The block of a residual branch's hidden layer phi(u W1 + b1): the activation without a
        norm (a residual network normalizes its stream, see `block_forward`)."""
        return replace(self.block, norm="none")

    @classmethod
    def of(cls, config: SimConfig) -> Network:
        config = config.validated()
        block = Block(get_activation(config.activation), config.activation_params, config.norm,
                      config.subnormals == "flush")
        chain = None
        if config.init == CHECKPOINT:
            chain = load_chain(config.init_params["file"], config.init_params["layout"])
            if chain.fans != tuple(map(config.fans, range(1, config.layers + 1))):
                raise ConfigError(FIELD, f"{chain.path.name} changed since the config was made: choose it again")
        return cls(config, get_scheme(config.init), get_bias_init(config.bias_init), block,
                   np.dtype(config.dtype), chain)

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

    def layer_weights(self, layer: int, rng: np.random.Generator) -> Layer:
        """1-based plain layer ``layer``'s (W, b): drawn from ``rng`` at the layer's fans, or, for a
        checkpoint, read from its file (``rng`` unused, so that the other streams stay the same)."""
        if self.chain is not None:
            return self.chain.read(layer, self.dtype)
        return self.sample_layer(self.config.fans(layer), rng)

    # --- residual networks (config.residual pre or post) ---

    @property
    def has_projection(self) -> bool:
        """Whether a residual network's input is projected to its width (its input width differs)."""
        return self.config.residual != "none" and self.config.fan_in_first != self.config.width

    def projection_stream(self) -> np.random.Generator:
        """The input projection's own stream: the first child of the input's SeedSequence, so that
        neither the input nor any block depends on whether there is a projection."""
        return np.random.default_rng(np.random.SeedSequence(self.config.seed, spawn_key=(0, 0)))

    def sample_projection(self) -> Layer:
        """The plain dense layer (P, b) of shape (input width, width) that a residual network's input
        goes through when its width differs: x_0 = input P + b, no activation, no norm."""
        return self.sample_layer((self.config.fan_in_first, self.config.width), self.projection_stream())

    def sample_block(self, rng: np.random.Generator) -> BlockWeights:
        """A residual block's W1, b1, W2, b2, drawn in that order from the block's stream, each matrix
        from the scheme at its own fans: W1 (width, E width), W2 (E width, width). Fixup: W2 = 0
        (not drawn) and W1 scaled by L^(-1/2), L the number of blocks (Zhang et al. 2019's
        L^(-1/(2m-2)) for m = 2 layers in a branch)."""
        c = self.config
        w1, b1 = self.sample_layer((c.width, c.hidden_width), rng)
        if not c.fixup:
            w2, b2 = self.sample_layer((c.hidden_width, c.width), rng)
            return BlockWeights(w1, b1, w2, b2)
        w1 *= self.dtype.type(c.layers ** -0.5)
        w2 = np.zeros((c.hidden_width, c.width), self.dtype)
        b2 = self.bias.sample(c.hidden_width, c.width, rng, self.dtype, c.bias_params)
        return BlockWeights(w1, b1, w2, b2)


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
        if layer > 1 and not block.keeps_output:  # a new scratch only where a layer's width differs
            scratch = reused(scratch, cache[-1].shape, cache[-1].dtype)
        x_in = x0 if layer == 1 else block.output_of(cache[-1], scratch)
        yield layer, grad, x_in, subnormal
        if layer > 1:
            w = weights[layer - 1]
            spare = matmul(grad, w.T, reused(spare, (grad.shape[0], w.shape[0]), grad.dtype), block.flush)
            grad, spare = spare, grad


# --- residual blocks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockWeights:
    """A residual block's branch F(u) = phi(u W1 + b1) W2 + b2: W1 of shape (width, E width), W2 of
    shape (E width, width)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray


@dataclass(frozen=True)
class BlockCache:
    """What a block's backward pass needs from its forward pass."""

    branch_in: np.ndarray  # u, the branch's input: norm(x_{l-1}) for pre-norm with a norm, else x_{l-1}
    in_inv_std: np.ndarray | None  # pre-norm's norm statistics (None without)
    hidden: np.ndarray  # what the branch's activation keeps (`Block.activate`)
    out: np.ndarray | None  # post-norm's output x_l, the norm's u, with a norm (else None)
    out_inv_std: np.ndarray | None


@dataclass(frozen=True)
class BlockPass:
    """A block's forward pass: the stream's next value and what the simulation reports of it."""

    out: np.ndarray  # x_l, a new array
    cache: BlockCache
    pre: np.ndarray  # the hidden pre-activation u W1 + b1 (in ``pre_copy`` when the activation overwrote it)
    hidden: np.ndarray  # phi(u W1 + b1)
    branch: np.ndarray  # alpha F(u), in ``branch_out``
    subnormal: int  # of the pre-activation and of x_l, counted before any flush
    stats: NormStats | None = None  # the stream's norm's (mean, inv_std): a probe's population for batch norm


def block_forward(x: np.ndarray, weights: BlockWeights, norm: Block, branch: Block, form: str, alpha: float,
                  pre_copy: np.ndarray | None, hidden_work: np.ndarray, branch_out: np.ndarray,
                  population: NormStats | None = None) -> BlockPass:
    """One residual block on the stream ``x`` (left as it is):
    pre-norm (``form`` "pre") x_l = x + alpha F(norm(x)); post-norm x_l = norm(x + alpha F(x));
    F(u) = phi(u W1 + b1) W2 + b2. ``norm`` is the network's block (its norm is the stream's),
    ``branch`` the activation without a norm (`Network.branch`). ``pre_copy`` and ``hidden_work``
    (batch, E width) and ``branch_out`` (batch, width) are working buffers that the result's pre,
    hidden and branch may live in; ``pre_copy`` None: no copy of the pre-activation is made (training
    reads no statistics of it), and the result's pre is then overwritten by the activation where
    that keeps its output. ``population``: batch norm's statistics from another batch (see
    `Block.normalize`), for a probe's decision regions."""
    flush = branch.flush
    u, in_stats = x, None
    if form == "pre" and norm.norm != "none":
        u = x.copy()
        in_stats = norm.normalize(u, population)
        norm.flushed(u)
    a = linear(u, weights.w1, weights.b1, flush=flush)
    subnormal = branch.flushed(a)
    pre = a
    if branch.keeps_output and pre_copy is not None:  # the activation overwrites a: the statistics read a copy
        pre = pre_copy
        np.copyto(pre, a)
    hidden, kept, _ = branch.activate(a, hidden_work)
    f = linear(hidden, weights.w2, weights.b2, branch_out, flush)
    if alpha != 1:
        f *= f.dtype.type(alpha)
    out = np.add(x, f)
    out_stats = None
    if form == "post" and norm.norm != "none":
        out_stats = norm.normalize(out, population)
    subnormal += norm.flushed(out)
    cache = BlockCache(u, None if in_stats is None else in_stats[1], kept,
                       out if out_stats is not None else None, None if out_stats is None else out_stats[1])
    return BlockPass(out, cache, pre, hidden, f, subnormal, in_stats if out_stats is None else out_stats)


@dataclass(frozen=True)
class BlockGradient:
    """A block's backward pass: dL/dx_{l-1}, and dL/da with the branch's input u, from which
    dL/dW1 = u.T @ dL/da (a = u W1 + b1); training's also every parameter's gradient."""

    grad_in: np.ndarray
    grad_pre: np.ndarray
    branch_in: np.ndarray
    subnormal: int  # values of dL/dx_{l-1} below the smallest normal, counted before any flush
    parameters: BlockWeights | None = None  # dL/dW1, dL/db1, dL/dW2, dL/db2 (fresh arrays), when asked for
    alpha: float | None = None  # dL/dalpha, when asked for (a learned branch scale)


def block_backward(grad: np.ndarray, cache: BlockCache, weights: BlockWeights, norm: Block, branch: Block,
                   alpha: float, grad_stream: np.ndarray, grad_hidden: np.ndarray, grad_in: np.ndarray,
                   hidden_work: np.ndarray | None = None, learn_alpha: bool = False) -> BlockGradient:
    """dL/dx_{l-1} from ``grad`` = dL/dx_l (left as it is), exactly, into ``grad_in``; ``grad_stream``
    (batch, width) and ``grad_hidden`` (batch, E width) are working buffers.

    With s = x_{l-1} + alpha F(u) (x_l = s for pre-norm, norm(s) for post-norm):
    dL/ds = dL/dx_l or norm's backward of it; dL/dz = alpha dL/ds W2^T; dL/da = dL/dz phi'(a);
    dL/du = dL/da W1^T; dL/dx_{l-1} = dL/ds + dL/du, with pre-norm's backward through u = norm(x_{l-1}).

    Training's parameter gradients, when ``hidden_work`` (batch, E width) is given (the hidden
    activation h = phi(a) is recomputed there when the activation kept a): dL/dW2 = alpha h^T dL/ds,
    dL/db2 = alpha sum(dL/ds), dL/dW1 = u^T dL/da, dL/db1 = sum(dL/da); with ``learn_alpha``,
    dL/dalpha = sum(dL/ds * F(u)) = sum(h * dL/ds W2^T) + sum(dL/ds) . b2, from the product dL/ds W2^T
    the input's gradient needs anyway (no second multiply for F, which alpha = 0 would not recover
    from alpha F). Four multiplies of the block's size then, two plain layers' worth with the forward
    pass's two. Without, the simulation's pass, unchanged."""
    flush = branch.flush
    grad_s = grad
    if cache.out is not None:
        grad_s = grad_stream
        np.copyto(grad_s, grad)
        normalize_backward(grad_s, cache.out, cache.out_inv_std, norm.norm)
        norm.flushed(grad_s)  # it goes into a multiply (see the module's docstring on subnormals)
    grad_z = matmul(grad_s, weights.w2.T, grad_hidden, flush)
    parameters = grad_alpha = None
    if hidden_work is not None:
        hidden = branch.output_of(cache.hidden, hidden_work)
        grad_w2 = matmul(hidden.T, grad_s, flush=flush)
        column_sums = grad_s.sum(axis=0)
        if learn_alpha:  # before grad_z is scaled by alpha, which may be 0
            grad_alpha = float(np.vdot(hidden, grad_z)) + float(np.dot(column_sums, weights.b2))
        if alpha != 1:
            grad_w2 *= grad_w2.dtype.type(alpha)
            column_sums *= column_sums.dtype.type(alpha)
        del hidden
    if alpha != 1:
        grad_z *= grad_z.dtype.type(alpha)
    grad_a, _ = branch.backward(grad_z, cache.hidden, None)
    if hidden_work is not None:
        parameters = BlockWeights(matmul(cache.branch_in.T, grad_a, flush=flush), grad_a.sum(axis=0),
                                  grad_w2, column_sums)
    grad_u = matmul(grad_a, weights.w1.T, grad_in, flush)
    if cache.in_inv_std is not None:
        normalize_backward(grad_u, cache.branch_in, cache.in_inv_std, norm.norm)
    grad_u += grad_s
    return BlockGradient(grad_u, grad_a, cache.branch_in, norm.flushed(grad_u), parameters, grad_alpha)
