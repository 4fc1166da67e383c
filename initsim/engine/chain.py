"""A checkpoint's own MLP (issue 14): the dense layers of a file whose shapes chain, as the network of
the `checkpoint` scheme, so that a simulation shows what these very weights do to a signal.

Chain detection (`find_chain`) reads the headers only (`Checkpoint.tensors`): the 2-D weights in the
file's natural order (embeddings aside), each with its bias when a 1-D tensor of its fan_out shares
its name (``fc1.weight`` / ``fc1.bias``; Keras ``dense/kernel`` / ``dense/bias`` and Keras 3's
``vars/0`` / ``vars/1``; ``W1`` / ``b1`` as ``initsim weights`` writes them). Its longest run of
weights in which each layer's fan_out is the next one's fan_in is the network; a conv kernel (not 2-D)
ends a run, as does any weight whose fans do not chain.

The weights are read one layer at a time (`Chain.read`) when the simulation reaches the layer, in
numpy's (fan_in, fan_out) layout (a torch-layout weight transposed) and the config's dtype. A
config holds the file's path and the layout, never the arrays; a chain is found once per file
state (`load_chain` caches it by path, modification time, size and layout).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoints import CheckpointError, TensorInfo, open_checkpoint
from .errors import ConfigError, shown
from .layouts import as_matrix, fans

FIELD = "init checkpoint.file"  # the parameter a chain's errors name, as the scheme's own checks do
# Words that mark a 2-D tensor as a lookup table, not a layer that multiplies a signal.
EMBEDDING_WORDS = ("embed", "wte", "wpe")
SHAPES_SHOWN = 6  # weights an error message lists before "..."
CACHED_CHAINS = 16
CHUNK = 1 << 20  # entries squared in float64 at a time by the theory's measurement


class ChainError(ValueError):
    """A checkpoint has no two dense layers that chain (one line, naming their shapes)."""


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer of a chain: its tensors' names and its fans."""

    weight: str
    bias: str | None  # None: the layer has no bias in the file (zeros are used)
    fan_in: int
    fan_out: int
    nbytes: int  # the stored weight's


def _bias_names(name: str) -> tuple[str, ...]:
    """The names a weight's bias would have: ``x.weight`` -> ``x.bias``, ``d/kernel`` -> ``d/bias``
    (Keras 2's ``d/kernel:0`` -> ``d/bias:0``), Keras 3's ``d/vars/0`` -> ``d/vars/1``, ``W1`` -> ``b1``."""
    head, tail = re.fullmatch(r"(.*[./])?([^./]*)", name).groups()
    head = head or ""
    weight = re.fullmatch(r"(?:weight|kernel|w)(:\d+)?", tail, re.IGNORECASE)  # Keras 2's kernel:0
    if weight:
        suffix = weight.group(1) or ""
        return head + "bias" + suffix, head + "b" + suffix
    if tail == "0" and head.endswith("vars/"):
        return (head + "1",)
    numbered = re.fullmatch(r"[Ww](\d+)", tail)
    return (f"{head}b{numbered.group(1)}",) if numbered else ()


def _shapes(tensors: Sequence[TensorInfo]) -> str:
    listed = [f"{t.name} {tuple(t.shape)}" for t in tensors[:SHAPES_SHOWN]]
    return ", ".join(listed) + (", ..." if len(tensors) > SHAPES_SHOWN else "") if listed else "no tensors"


def find_chain(tensors: Sequence[TensorInfo], layout: str) -> tuple[DenseLayer, ...]:
    """The longest run of consecutive dense layers whose fans chain (the first, of runs as long),
    from the tensors' headers in ``layout`` ("torch" or "numpy"); a ChainError if no two chain."""
    vectors = {t.name: t.shape[0] for t in tensors if len(t.shape) == 1}
    dense = [t for t in tensors if len(t.shape) == 2 and min(t.shape) > 0
             and not any(word in t.name.lower() for word in EMBEDDING_WORDS)]
    best: list[DenseLayer] = []
    run: list[DenseLayer] = []
    for tensor in dense:
        fan_in, fan_out = fans(tuple(tensor.shape), layout)
        bias = next((b for b in _bias_names(tensor.name) if vectors.get(b) == fan_out), None)
        layer = DenseLayer(tensor.name, bias, fan_in, fan_out, tensor.nbytes)
        run = run + [layer] if run and run[-1].fan_out == fan_in else [layer]
        if len(run) > len(best):
            best = run
    if len(best) < 2:
        raise ChainError(f"no two dense layers chain ({layout} layout): shapes "
                         + _shapes(dense or list(tensors)))
    return tuple(best)


@dataclass(frozen=True)
class Chain:
    """A checkpoint's chained dense layers, as found in its headers, and how to read them."""

    path: Path  # absolute
    layout: str  # "torch" or "numpy", as resolved
    layers: tuple[DenseLayer, ...]
    stamp: tuple[int, int]  # the file's modification time (ns) and size when its headers were read

    @property
    def fans(self) -> tuple[tuple[int, int], ...]:
        """(fan_in, fan_out) of each layer."""
        return tuple((layer.fan_in, layer.fan_out) for layer in self.layers)

    def _arrays(self, layer: DenseLayer) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's weight and bias (None when it has none) as stored; a ConfigError if the file
        changed since its headers were read, or is unreadable."""
        if _stamp(self.path) != self.stamp:
            raise ConfigError(FIELD, f"{self.path.name} changed since its layers were read: choose it again")
        try:
            with open_checkpoint(self.path) as checkpoint:
                w = checkpoint.read(layer.weight)
                b = None if layer.bias is None else checkpoint.read(layer.bias)
        except (CheckpointError, OSError) as exc:
            raise ConfigError(FIELD, _one_line(exc)) from None
        if fans(w.shape, self.layout) != (layer.fan_in, layer.fan_out):  # the reader checks its header
            raise ConfigError(FIELD, f"{self.path.name}: {layer.weight} has the shape {w.shape}, not its "
                              "header's")
        return w, b

    def read(self, index: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """1-based layer ``index``'s (W, b): W of shape (fan_in, fan_out), C-contiguous, and b of
        shape (fan_out,), both in ``dtype`` (zeros for a layer without a bias). Values beyond the
        dtype's range become infinite, as a scheme's would; the run reports them."""
        layer = self.layers[index - 1]
        stored, b = self._arrays(layer)
        w = as_matrix(stored, self.layout)
        with np.errstate(over="ignore"):
            w = np.ascontiguousarray(w, dtype=dtype)
            b = np.zeros(layer.fan_out, dtype) if b is None else np.ascontiguousarray(b.reshape(-1), dtype=dtype)
        return w, b

    def sigmas(self) -> tuple[tuple[float, float], ...]:
        """Each layer's (sigma_w^2, sigma_b^2) = (fan_in mean(W^2), mean(b^2)) of the weights as
        stored, in float64: what mean-field theory takes for measured weights. Read once per chain."""
        key = _key(self)
        with _LOCK:
            known = _SIGMAS.get(key)
        if known is None:
            known = tuple(_layer_sigmas(layer.fan_in, *self._arrays(layer)) for layer in self.layers)
            with _LOCK:
                _SIGMAS[key] = known
        return known


def _mean_square(array: np.ndarray) -> float:
    """mean(array^2) in float64, a CHUNK of entries at a time: a large tensor gets no float64 copy."""
    flat = array.reshape(-1)  # the array as stored (C order): a view
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, CHUNK):
            block = flat[start:start + CHUNK].astype(np.float64)
            total += float(np.square(block, out=block).sum())
    return total / flat.size if flat.size else 0.0


def _layer_sigmas(fan_in: int, w: np.ndarray, b: np.ndarray | None) -> tuple[float, float]:
    return fan_in * _mean_square(w), 0.0 if b is None else _mean_square(b)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size


def _key(chain: Chain) -> tuple:
    return str(chain.path), chain.stamp, chain.layout


_LOCK = threading.Lock()
_CHAINS: dict[tuple, Chain] = {}  # by (path, stamp, layout asked for), the oldest first
_SIGMAS: dict[tuple, tuple[tuple[float, float], ...]] = {}


def load_chain(file: str | os.PathLike, layout: str = "auto") -> Chain:
    """The chain of the checkpoint at ``file`` in ``layout`` ("torch", "numpy", or "auto": the
    format's default), from its headers; cached per (path, modification time, size, layout), so
    that validating a config again reads nothing. A one-line ConfigError naming the file if it is
    missing, unreadable, not a checkpoint, or has no two dense layers that chain."""
    path = Path(file).expanduser()
    try:
        path = path.resolve()
        stamp = _stamp(path)
    except (OSError, RuntimeError, ValueError):
        raise ConfigError(FIELD, f"no such file: {shown(str(file))}") from None
    if not path.is_file():
        raise ConfigError(FIELD, f"not a file: {shown(str(file))}")
    key = (str(path), stamp, layout)
    with _LOCK:
        chain = _CHAINS.get(key)
    if chain is not None:
        return chain
    try:
        with open_checkpoint(path) as checkpoint:
            resolved = checkpoint.default_layout if layout == "auto" else layout
            layers = find_chain(checkpoint.tensors, resolved)
    except ChainError as exc:
        raise ConfigError(FIELD, f"{path.name}: {exc}") from None
    except (CheckpointError, OSError) as exc:
        raise ConfigError(FIELD, _one_line(exc)) from None
    chain = Chain(path, resolved, layers, stamp)
    with _LOCK:
        _CHAINS[key] = chain
        while len(_CHAINS) > CACHED_CHAINS:
            old = _CHAINS.pop(next(iter(_CHAINS)))
            _SIGMAS.pop(_key(old), None)
    return chain


def widest(chain_fans: Sequence[tuple[int, int]]) -> int:
    """The widest layer's fan_out: a checkpoint config's ``width``."""
    return max(fan_out for _, fan_out in chain_fans)
