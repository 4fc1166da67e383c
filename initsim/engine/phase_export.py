"""The phase diagram as CSV, as an RGB image and as PNG bytes, with numpy and zlib alone (no Qt,
no matplotlib), so that `initsim phase --out FILE.png` works headless.

Colours: ln chi_1 on a diverging scale, blue where ordered (chi_1 < 1, gradients vanish), white at
the critical line, red where chaotic (gradients explode); the line chi_1 = 1 itself is drawn black.
Row 0 of the image is the largest sigma_b^2, so sigma_b^2 grows upwards as on a plot.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping

import numpy as np

from .theory import PhaseDiagram

ORDERED_RGB = (33, 102, 172)
CHAOTIC_RGB = (178, 24, 43)
CRITICAL_RGB = (0, 0, 0)
UNDEFINED_RGB = (128, 128, 128)  # chi_1 not a number


def phase_rgb(diagram: PhaseDiagram, log_limit: float = 0.5) -> np.ndarray:
    """(rows, columns, 3) uint8: full colour at |ln chi_1| >= log_limit."""
    log_chi = diagram.log_chi1
    t = np.clip(np.nan_to_num(log_chi / log_limit, nan=0.0), -1, 1)[..., None]
    white = np.full(3, 255.0)
    colour = np.where(t < 0, white + (np.array(ORDERED_RGB) - white) * -t,
                      white + (np.array(CHAOTIC_RGB) - white) * t)
    chaotic = log_chi > 0
    # The boundary: cells whose right or lower neighbour lies in the other phase.
    edge = np.zeros(chaotic.shape, bool)
    edge[:, :-1] |= chaotic[:, :-1] != chaotic[:, 1:]
    edge[:-1, :] |= chaotic[:-1, :] != chaotic[1:, :]
    colour[edge] = CRITICAL_RGB
    colour[np.isnan(log_chi)] = UNDEFINED_RGB
    return np.round(colour[::-1]).astype(np.uint8)


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


def phase_png(diagram: PhaseDiagram) -> bytes:
    """The diagram as a PNG whose text chunks carry its axes and colour key."""
    return png_bytes(phase_rgb(diagram), {
        "Title": f"order/chaos phase diagram, {diagram.activation}",
        "x axis": f"sigma_w^2 from {diagram.sigma_w2[0]:.6g} to {diagram.sigma_w2[-1]:.6g}, left to right",
        "y axis": f"sigma_b^2 from {diagram.sigma_b2[0]:.6g} to {diagram.sigma_b2[-1]:.6g}, bottom to top",
        "Comment": "blue: ordered (chi_1 < 1), red: chaotic (chi_1 > 1), black: the critical line "
                   "chi_1 = 1; colour saturates at |ln chi_1| = 0.5",
    })


def phase_csv(diagram: PhaseDiagram) -> str:
    """One row per grid point: sigma_w2, sigma_b2, q_star, chi1, depth_scale (inf and nan as such)."""
    sigma_w2, sigma_b2 = np.meshgrid(diagram.sigma_w2, diagram.sigma_b2)
    columns = (sigma_w2, sigma_b2, diagram.q_star, diagram.chi1, diagram.depth_scale)
    out = io.StringIO()
    np.savetxt(out, np.column_stack([c.ravel() for c in columns]), fmt="%.10g", delimiter=",",
               header="sigma_w2,sigma_b2,q_star,chi1,depth_scale", comments="")
    return out.getvalue()
