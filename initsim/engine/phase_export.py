"""The phase diagram of a network's activation, with numpy alone (no Qt): its axes, which start at 0
and widen to hold the network's point; its CSV; and its PNG's pixels and text chunks (the figure
itself is drawn by the window's plotting, see initsim.app.views.phase_plot, for `initsim phase`)."""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .theory import PhaseDiagram, phase_axes

# A point beyond the axes (or within this factor of their end) widens them to a round number at
# least this far beyond it: the point is never drawn on the edge.
WIDENING_MARGIN = 1.15


@dataclass(frozen=True)
class MarkedPoint:
    """A network's (sigma_w^2, sigma_b^2) on the diagram, and what its marker says."""

    sigma_w2: float
    sigma_b2: float
    label: str


def zero_weights_label(name: str, sigma_w2: float) -> str:
    """A point's label: ``name``, and for zero weights what they do (the point sits in the
    diagram's corner, where the theory's colour, chi_1 = 0, says only "ordered")."""
    return f"{name}: zero weights, no signal" if sigma_w2 == 0 else name


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7.5 times a power of ten at or above ``value`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    return next(power * m for m in (1, 1.5, 2, 3, 5, 7.5, 10) if power * m >= value * (1 - 1e-12))


def default_extent(act: Activation, params: dict, sigma_w2_max: float | None = None,
                   sigma_b2_max: float | None = None) -> tuple[float, float]:
    """The axes' ends (sigma_w^2 max, sigma_b^2 max) that put the critical line in view (see
    phase_axes), or those given."""
    sigma_w2, sigma_b2 = phase_axes(act, params, 2, sigma_w2_max, sigma_b2_max)
    return float(sigma_w2[-1]), float(sigma_b2[-1])


def extent_holding(default: tuple[float, float], point: tuple[float, float]) -> tuple[float, float]:
    """The axes' ends: ``default``, each widened as far as ``point`` needs (see WIDENING_MARGIN).
    A coordinate that is not a finite number leaves its end as it is: no axis holds it."""
    def end(default_end: float, value: float) -> float:
        wanted = WIDENING_MARGIN * value
        return nice_ceiling(wanted) if math.isfinite(wanted) and wanted > default_end else default_end
    return end(default[0], point[0]), end(default[1], point[1])


def axes_from_zero(extent: tuple[float, float], grid: int) -> tuple[np.ndarray, np.ndarray]:
    """``grid`` points from 0 to each end of ``extent``: zero weights and no bias (0, 0) is a point
    of the diagram (chi_1 = 0 there), not one beyond its edge."""
    return np.linspace(0.0, extent[0], grid), np.linspace(0.0, extent[1], grid)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(rgb: np.ndarray, text: Mapping[str, str] | None = None) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (rows, columns, 3), with ``text`` as tEXt chunks (Latin-1)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    rows, columns, _ = rgb.shape
    header = struct.pack(">IIBBBBB", columns, rows, 8, 2, 0, 0, 0)  # 8-bit truecolour
    scanlines = np.concatenate([np.zeros((rows, 1), np.uint8), rgb.reshape(rows, -1)], axis=1)  # filter 0
    notes = b"".join(_chunk(b"tEXt", f"{key}\0{value}".encode("latin-1")) for key, value in (text or {}).items())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + notes
            + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 9)) + _chunk(b"IEND", b""))


def phase_notes(diagram: PhaseDiagram, point: MarkedPoint | None) -> dict[str, str]:
    """What a PNG of the diagram says in its text chunks: its axes, its colours, the point."""
    notes = {
        "Title": f"order/chaos phase diagram, {diagram.activation}",
        "x axis": f"sigma_w^2 from {diagram.sigma_w2[0]:.6g} to {diagram.sigma_w2[-1]:.6g}, left to right",
        "y axis": f"sigma_b^2 from {diagram.sigma_b2[0]:.6g} to {diagram.sigma_b2[-1]:.6g}, bottom to top",
        "Comment": "colour: chi_1 on a log scale, blue ordered (chi_1 < 1, gradients vanish), white "
                   "critical, red chaotic (chi_1 > 1, gradients explode); dashed line: chi_1 = 1",
    }
    if point is not None:
        notes["Network"] = f"{point.label} at sigma_w^2 = {point.sigma_w2:.6g}, sigma_b^2 = {point.sigma_b2:.6g}"
    return notes


def phase_csv(diagram: PhaseDiagram) -> str:
    """One row per grid point: sigma_w2, sigma_b2, q_star, chi1, depth_scale (inf and nan as such)."""
    sigma_w2, sigma_b2 = np.meshgrid(diagram.sigma_w2, diagram.sigma_b2)
    columns = (sigma_w2, sigma_b2, diagram.q_star, diagram.chi1, diagram.depth_scale)
    out = io.StringIO()
    np.savetxt(out, np.column_stack([c.ravel() for c in columns]), fmt="%.10g", delimiter=",",
               header="sigma_w2,sigma_b2,q_star,chi1,depth_scale", comments="")
    return out.getvalue()
