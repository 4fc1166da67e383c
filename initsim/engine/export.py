"""Data exports of a run: per-layer statistics (CSV, JSON), histograms (NPZ), initial weights (NPZ).

Every file carries the full config, so the run can be reproduced: JSON and NPZ inside the file
(key ``config`` / array ``config_json``), CSV in a sidecar ``NAME.config.json``. Writes are atomic:
a temporary file in the same folder renamed into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from .config import SimConfig
from .simulate import SimResult, initial_weights

DATA_FORMATS = {".csv": "per-layer statistics", ".json": "per-layer statistics and histograms",
                ".npz": "histograms"}


class ExportError(Exception):
    """A file could not be written; the message names it and says why."""


def json_safe(value: Any) -> Any:
    """Plain JSON values: non-finite floats become null (JSON has no NaN or Infinity)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def config_json(config: SimConfig) -> str:
    return json.dumps(json_safe(config.to_dict()), sort_keys=True)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a temporary file in the target's folder, renamed into place when complete."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def scalar_records(result: SimResult) -> list[dict]:
    """The per-layer records without their histograms: one flat row per layer."""
    return [{k: v for k, v in row.items() if not k.endswith("histogram")} for row in result.layer_records()]


def stats_csv(result: SimResult) -> str:
    rows = scalar_records(result)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def stats_json(result: SimResult) -> str:
    theory = result.theory
    return json.dumps(json_safe({
        "config": result.config.to_dict(),
        "theory": {"q_star": theory.q_star, "chi1": theory.chi1, "depth_scale": theory.depth_scale,
                   "sigma_w2": theory.sigma_w2, "sigma_b2": theory.sigma_b2},
        "layers": result.layer_records(),
    }), indent=1, allow_nan=False)


def histogram_arrays(result: SimResult) -> dict[str, np.ndarray]:
    """(L, bins + 1) edges and (L, bins) counts for pre-activations, activations and gradients."""
    arrays: dict[str, np.ndarray] = {}
    for name, stats in (("pre", [f.pre for f in result.forward]), ("post", [f.post for f in result.forward]),
                        ("grad", [b.grad for b in result.backward])):
        arrays[f"{name}_edges"] = np.stack([s.histogram.edges for s in stats])
        arrays[f"{name}_counts"] = np.stack([s.histogram.counts for s in stats])
    arrays["config_json"] = np.array(config_json(result.config))
    return arrays


def export_data(result: SimResult, path: str | Path) -> list[Path]:
    """Write the run's data in the format the suffix names (see DATA_FORMATS); returns the files."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        sidecar = path.with_name(path.stem + ".config.json")
        return [write_text(path, stats_csv(result)),
                write_text(sidecar, json.dumps(json_safe(result.config.to_dict()), indent=1))]
    if suffix == ".json":
        return [write_text(path, stats_json(result))]
    if suffix == ".npz":
        return [atomic_write(path, lambda f: np.savez_compressed(f, **histogram_arrays(result)))]
    raise ExportError(f"cannot export data as {suffix or 'a file without a suffix'}: use one of "
                      + ", ".join(f"{s} ({what})" for s, what in DATA_FORMATS.items()))


def export_weights(config: SimConfig, path: str | Path) -> Path:
    """The initial weights of every layer, ``W1, b1, ..., WL, bL`` (W: (fan_in, fan_out)), and the config."""
    arrays: dict[str, np.ndarray] = {}
    for index, (w, b) in enumerate(initial_weights(config), 1):
        arrays[f"W{index}"], arrays[f"b{index}"] = w, b
    arrays["config_json"] = np.array(config_json(config.validated()))
    return atomic_write(path, lambda f: np.savez(f, **arrays))
