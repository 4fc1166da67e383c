"""Built-in training tasks, generated in numpy from a seed (no downloads).

Every task's inputs are standardized (each dimension to mean 0, variance 1, over the data set) so
that the first layer sees what the simulation feeds it: unit-variance inputs. Classification targets
are class indices; the regression target is one standardized real value per sample.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .errors import ConfigError, lookup

Generate = Callable[[int, int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]

BLOB_CLASSES = 4
BLOB_SPREAD = 2.0  # std of the blob centres; each blob's own std is the task's noise
GRID_MARGIN = 0.1  # the region grid extends this fraction of the data's range past it


def _split(samples: int, classes: int) -> np.ndarray:
    """Balanced class labels, 0 0 .. 1 1 .. (the first classes get the remainder)."""
    return np.repeat(np.arange(classes), [samples // classes + (c < samples % classes) for c in range(classes)])


def _spirals(samples: int, dim: int, noise: float, rng: np.random.Generator):
    """Two interleaved spirals of 1.5 turns each."""
    labels = _split(samples, 2)
    t = np.sqrt(rng.random(samples))  # uniform density along the arm's area, not its length
    angle = 3 * math.pi * t + math.pi * labels
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal(x.shape), labels


def _circles(samples: int, dim: int, noise: float, rng: np.random.Generator):
    """An inner circle (class 0, radius 0.5) inside an outer one (class 1, radius 1)."""
    labels = _split(samples, 2)
    angle = 2 * math.pi * rng.random(samples)
    radius = np.where(labels == 0, 0.5, 1.0)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal(x.shape), labels


def _checkerboard(cells: int) -> Generate:
    """Points uniform on the square, labelled by the colour of their cell; noise moves them after."""
    def generate(samples: int, dim: int, noise: float, rng: np.random.Generator):
        x = rng.uniform(-1, 1, (samples, 2))
        cell = np.minimum(np.floor((x + 1) / 2 * cells), cells - 1).astype(np.int64)
        labels = (cell[:, 0] + cell[:, 1]) % 2
        return x + noise * rng.standard_normal(x.shape), labels
    return generate


def _blobs(samples: int, dim: int, noise: float, rng: np.random.Generator):
    """BLOB_CLASSES Gaussian blobs of std ``noise`` around centres drawn N(0, BLOB_SPREAD^2)."""
    labels = _split(samples, BLOB_CLASSES)
    centres = BLOB_SPREAD * rng.standard_normal((BLOB_CLASSES, dim))
    return centres[labels] + noise * rng.standard_normal((samples, dim)), labels


def _regression(samples: int, dim: int, noise: float, rng: np.random.Generator):
    """y = sin(2 x.a) + 0.5 cos(3 x.b) + noise, x ~ N(0, I), a and b random unit directions."""
    directions = rng.standard_normal((2, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    x = rng.standard_normal((samples, dim))
    along = x @ directions.T
    y = np.sin(2 * along[:, 0]) + 0.5 * np.cos(3 * along[:, 1]) + noise * rng.standard_normal(samples)
    return x, y[:, None]


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    generate: Generate  # (samples, dim, noise, rng) -> (inputs, targets), float64
    classes: int  # 0: regression
    default_noise: float
    default_dim: int = 2
    fixed_dim: bool = True  # the 2-D tasks

    @property
    def is_classification(self) -> bool:
        return self.classes > 0


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("spirals", "two interleaved spirals (2-D, 2 classes)", _spirals, 2, 0.02),
        Task("circles", "two concentric circles (2-D, 2 classes)", _circles, 2, 0.05),
        Task("xor", "XOR: a 2 x 2 checkerboard (2-D, 2 classes)", _checkerboard(2), 2, 0.0),
        Task("checkerboard", "a 4 x 4 checkerboard (2-D, 2 classes)", _checkerboard(4), 2, 0.0),
        Task("blobs", f"{BLOB_CLASSES} Gaussian blobs in D dimensions (default 8)", _blobs,
             BLOB_CLASSES, 1.0, default_dim=8, fixed_dim=False),
        Task("regression", "y = sin(2 x.a) + 0.5 cos(3 x.b) in D dimensions (default 2), MSE loss",
             _regression, 0, 0.1, fixed_dim=False),
    )
}

def get_task(name: str) -> Task:
    return lookup("task", name, TASKS)


@dataclass(frozen=True)
class Dataset:
    """A task's generated data: the training set the network learns."""

    task: str
    inputs: np.ndarray  # (samples, dim), standardized, in the network's dtype
    targets: np.ndarray  # (samples,) class indices, or (samples, 1) standardized values
    classes: int  # 0: regression
    noise: float
    seed: int

    @property
    def dim(self) -> int:
        return self.inputs.shape[1]

    @property
    def outputs(self) -> int:
        """The output layer's width: one logit per class, or one value."""
        return self.classes or 1

    @property
    def is_classification(self) -> bool:
        return self.classes > 0

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x min, x max, y min, y max) of the first two input dimensions, with a margin: the
        square that `grid` covers."""
        low, high = self.inputs[:, :2].min(axis=0), self.inputs[:, :2].max(axis=0)
        pad = GRID_MARGIN * (high - low)
        return float(low[0] - pad[0]), float(high[0] + pad[0]), float(low[1] - pad[1]), float(high[1] + pad[1])

    def grid(self, size: int) -> np.ndarray:
        """(size * size, 2) points on a regular grid over `extent`, row by row from the bottom
        (row i has the i-th y value), for a 2-D task's decision regions."""
        x0, x1, y0, y1 = self.extent
        xs, ys = np.meshgrid(np.linspace(x0, x1, size), np.linspace(y0, y1, size))
        return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(self.inputs.dtype)

    def cast(self, dtype: str | np.dtype) -> Dataset:
        """The same data in ``dtype`` (the targets too, for regression)."""
        if self.inputs.dtype == np.dtype(dtype):
            return self
        targets = self.targets if self.is_classification else self.targets.astype(dtype)
        return replace(self, inputs=self.inputs.astype(dtype), targets=targets)

    @property
    def digest(self) -> str:
        """A short fingerprint of the inputs and targets: equal data, equal digest."""
        h = hashlib.sha256(self.inputs.tobytes())
        h.update(self.targets.tobytes())
        return h.hexdigest()[:16]


def make_dataset(task: str, samples: int, noise: float | None = None, dim: int | None = None,
                 seed: int = 0, dtype: str | np.dtype = "float32") -> Dataset:
    """Generate a task's data from ``seed`` (drawn in float64, then cast: the same data in float32
    and float64). ``noise`` and ``dim`` default to the task's; a 2-D task takes no other dim."""
    spec = get_task(task)
    if dim is None:
        dim = spec.default_dim
    if spec.fixed_dim and dim != spec.default_dim:
        raise ConfigError("task_dim", f"{spec.name} is {spec.default_dim}-D; got {dim}")
    noise = spec.default_noise if noise is None else float(noise)
    if spec.is_classification and samples < spec.classes:
        raise ConfigError("samples", f"{spec.name} needs at least {spec.classes} samples; got {samples}")
    x, y = spec.generate(samples, dim, noise, np.random.default_rng(seed))
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    if spec.is_classification:
        targets = y.astype(np.int64)
    else:
        targets = ((y - y.mean()) / max(float(y.std()), 1e-12)).astype(dtype)
    return Dataset(spec.name, x.astype(dtype), targets, spec.classes, noise, seed)
