"""Data exports of a run: per-layer statistics (CSV, JSON), histograms (NPZ), initial weights (NPZ).

Every file carries the full config, so the run can be reproduced: JSON and NPZ inside the file
(key ``config`` / array ``config_json``), CSV in a sidecar ``NAME.config.json``. Writes are all or
nothing: every file initsim writes goes through atomic_write_all (a temporary file beside each,
renamed into place once all are complete), so a failed export leaves nothing behind, and a CSV never
goes without its sidecar. Files get the permissions of any file the user saves (0o666 less the
umask). Exports check that their folder takes files before they render (check_writable).
"""

from __future__ import annotations

import csv
import io
import json
import contextlib
import math
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .checks import number_in
from .config import SimConfig
from .diagnosis import diagnose
from .memory import DEFAULT_MEMORY_LIMIT
from .simulate import SimResult, initial_blocks, initial_weights

DATA_FORMATS = {".csv": "per-layer statistics", ".json": "per-layer statistics and histograms",
                ".npz": "histograms"}
# Image pixels per layout pixel that an export takes (2: the same layout twice as sharp).
IMAGE_SCALES = (0.25, 4.0)
# What a file's contents are given as: the bytes, or a function that writes them to the open file.
Contents = bytes | Callable[[IO[bytes]], None]


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


def _new_file_beside(path: Path) -> tuple[int, Path]:
    """A new empty file (open for writing) in ``path``'s folder, named after it (its first 100
    characters: a name near the system's limit stays within it). Created with mode 0o666, which
    the system reduces by the user's umask as for any saved file (mkstemp's 0o600 would make every
    export private)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = path.with_name(f".{path.name[:100]}.{secrets.token_hex(4)}.tmp")
        with contextlib.suppress(FileExistsError):
            return os.open(temporary, flags, 0o666), temporary


def atomic_write_all(files: Mapping[str | Path, Contents]) -> list[Path]:
    """Write every file of ``files`` or none: each through a temporary file beside it, renamed into
    place once all are complete. On a failure the temporaries go, and so do the files already
    renamed that did not exist before; a file that existed keeps its old contents unless it was
    already replaced (only a rename failing between two renames can do that). Raises ExportError
    naming the file."""
    temporaries: list[tuple[Path, Path]] = []
    renamed: list[Path] = []
    current = Path()
    try:
        for name, contents in files.items():
            current = Path(name)
            fd, temporary = _new_file_beside(current)
            temporaries.append((current, temporary))
            with os.fdopen(fd, "wb") as file:
                if isinstance(contents, bytes):
                    file.write(contents)
                else:
                    contents(file)
        new = [not path.exists() for path, _ in temporaries]
        for (current, temporary), is_new in zip(temporaries, new):
            os.replace(temporary, current)
            if is_new:
                renamed.append(current)
    except BaseException as exc:
        for path in [temporary for _, temporary in temporaries] + renamed:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ExportError(f"cannot write {current}: {exc.strerror or exc}") from None
        raise
    return [path for path, _ in temporaries]


def atomic_write(path: str | Path, contents: Contents) -> Path:
    """One file written as atomic_write_all writes them."""
    return atomic_write_all({path: contents})[0]


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, text.encode("utf-8"))


def write_into_folder(folder: str | Path, files: Mapping[str, Contents]) -> list[Path]:
    """``files`` (by name) written all or nothing into ``folder``, made if needed (and removed
    again, with the parents made for it, if the files cannot be written)."""
    folder = Path(folder)
    made = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create {folder}: {exc.strerror or exc}") from None
        return atomic_write_all({folder / name: contents for name, contents in files.items()})
    except BaseException:
        for path in made:  # the deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def check_writable(path: str | Path, folder: bool = False) -> None:
    """An ExportError now, before anything is rendered, unless file ``path`` can be written (or,
    with ``folder``, files can be written into folder ``path``, made where the nearest existing
    folder above it is): a file is made in that folder and removed."""
    path = Path(path)
    where = next((p for p in (path, *path.parents) if p.exists()), path) if folder else path.parent
    try:
        fd, probe = _new_file_beside(where / "initsim-probe")
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None


def image_scale(value: float, field: str = "scale") -> float:
    """An image scale in IMAGE_SCALES, or a ConfigError naming ``field``."""
    return number_in(field, value, *IMAGE_SCALES)


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


def result_record(result: SimResult) -> dict:
    """A run as one JSON-able dict: its config, the theory's summary, the diagnosis (`diagnose`)
    and the per-layer records; the keys the CLI's --json documents."""
    theory = result.theory
    return {
        "config": result.config.to_dict(),
        "theory": {"q_star": theory.q_star, "chi1": theory.chi1, "depth_scale": theory.depth_scale,
                   "sigma_w2": theory.sigma_w2, "sigma_b2": theory.sigma_b2},
        "diagnosis": [f.to_dict() for f in diagnose(result.config, result.forward, result.backward)],
        "layers": result.layer_records(),
    }


def stats_json(result: SimResult) -> str:
    return json.dumps(json_safe(result_record(result)), indent=1, allow_nan=False)


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
        return atomic_write_all({path: stats_csv(result).encode("utf-8"),
                                 sidecar: json.dumps(json_safe(result.config.to_dict()), indent=1).encode("utf-8")})
    if suffix == ".json":
        return [write_text(path, stats_json(result))]
    if suffix == ".npz":
        return [atomic_write(path, lambda f: np.savez_compressed(f, **histogram_arrays(result)))]
    raise ExportError(f"cannot export data as {suffix or 'a file without a suffix'}: use one of "
                      + ", ".join(f"{s} ({what})" for s, what in DATA_FORMATS.items()))


def export_weights(config: SimConfig, path: str | Path, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Path:
    """The initial weights of every layer, ``W1, b1, ..., WL, bL`` (W: (fan_in, fan_out)), and the
    config; refused (ConfigError) if sampling them needs more than ``memory_limit`` bytes.

    A residual network's are per block, ``block1.W1, block1.b1, block1.W2, block1.b2, ...``, after
    ``projection.W, projection.b`` when its input is projected to its width."""
    arrays: dict[str, np.ndarray] = {}
    if config.validated().residual != "none":
        weights = initial_blocks(config, memory_limit)
        if weights.projection is not None:
            arrays["projection.W"], arrays["projection.b"] = weights.projection
        for index, block in enumerate(weights.blocks, 1):
            arrays.update({f"block{index}.W1": block.w1, f"block{index}.b1": block.b1,
                           f"block{index}.W2": block.w2, f"block{index}.b2": block.b2})
    else:
        for index, (w, b) in enumerate(initial_weights(config, memory_limit), 1):
            arrays[f"W{index}"], arrays[f"b{index}"] = w, b
    arrays["config_json"] = np.array(config_json(config.validated()))
    return atomic_write(path, lambda f: np.savez(f, **arrays))
