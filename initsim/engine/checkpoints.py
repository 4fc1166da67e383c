"""Checkpoint files read one tensor at a time: safetensors, .npz, .npy and HDF5 (Keras' .weights.h5).

The format is sniffed from the file's first bytes, not its name. Listing a checkpoint reads only its
headers (safetensors' JSON header, the zip directory and each member's .npy header, the .npy header,
HDF5's dataset metadata); ``read(name)`` loads that one tensor and checks it against its header, so a
checkpoint of gigabytes is inspected in the memory of its largest tensor.

Pickles (PyTorch's .pt/.pth/.bin/.ckpt, and any .pkl) are refused without being opened by a pickle
loader: loading a pickle runs whatever code it names. Every problem with a file is one
CheckpointError, whose one-line message names the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol

import numpy as np

from .userfiles import UnreadableFile, open_regular

FORMATS = ("safetensors", "npz", "npy", "h5")
# PyTorch stores a Linear weight as (out, in); numpy and Keras as (in, out).
DEFAULT_LAYOUTS = {"safetensors": "torch", "npz": "numpy", "npy": "numpy", "h5": "numpy"}

PICKLE_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
CONVERT = ("python -c \"import torch; from safetensors.torch import save_file; "
           "save_file(torch.load('m.pt', weights_only=True), 'm.safetensors')\"")
INSTALL = 'pip install "initsim[checkpoints]"'

_NPY_MAGIC = b"\x93NUMPY"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a member first; an empty archive's end record
NUMERIC_KINDS = "biufc"  # numpy's kinds of tensors: bool, integers, floats, complex; not text or records
_PICKLE_PROTO = 0x80  # pickle protocol 2 and later (and PyTorch's legacy format) start with PROTO

# safetensors refuses headers over 100 MB (its MAX_HEADER_SIZE); so do we, before reading one.
MAX_SAFETENSORS_HEADER = 100_000_000
# DEFLATE expands at most 1032:1, so a compressed .npz member that says it holds more than this
# many bytes per compressed byte lies, and is refused before any memory is set aside for it.
_MAX_DEFLATE_RATIO = 1100

# safetensors' dtype codes: the numpy dtype each is read as ('<': the format is little-endian).
_SAFETENSORS_DTYPES = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "U32": "<u4", "I32": "<i4",
    "U64": "<u8", "I64": "<i8", "F16": "<f2", "F32": "<f4", "F64": "<f8", "C64": "<c8",
}
# Those numpy has no dtype for, read from their raw bytes and widened exactly: (name, raw bytes'
# dtype, widening).
_WIDENED: dict[str, tuple[str, str, Callable[[np.ndarray], np.ndarray]]] = {}


def _bf16(raw: np.ndarray) -> np.ndarray:
    # bfloat16 is float32's upper half: shifting its bits up is float32's exact value, NaNs and
    # infinities included.
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _e5m2(raw: np.ndarray) -> np.ndarray:
    # float8 e5m2 is float16's upper byte (same exponent bias 15): exact, as for bfloat16.
    return (raw.astype(np.uint16) << 8).view(np.float16)


def _e4m3_table() -> np.ndarray:
    """The float16 value of each of float8 e4m3fn's 256 codes (bias 7, no infinities, S.1111.111
    is NaN); every one of them is a float16 exactly."""
    code = np.arange(256)
    sign = np.where(code >> 7, -1.0, 1.0)
    exponent, mantissa = (code >> 3) & 15, code & 7
    magnitude = np.where(exponent == 0, mantissa / 8 * 2.0**-6, (1 + mantissa / 8) * 2.0 ** (exponent - 7))
    value = sign * magnitude
    value[(code & 0x7F) == 0x7F] = np.nan
    return value.astype(np.float16)


_E4M3 = _e4m3_table()
_WIDENED.update({
    "BF16": ("bfloat16", "<u2", _bf16),
    "F8_E5M2": ("float8_e5m2", "|u1", _e5m2),
    "F8_E4M3": ("float8_e4m3fn", "|u1", lambda raw: _E4M3[raw]),
})


class CheckpointError(ValueError):
    """A checkpoint cannot be read; the one-line message names the file and what is wrong."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as its file's header describes it. ``dtype`` is numpy's name, or for a dtype numpy
    lacks ("bfloat16", "float8_e4m3fn", "float8_e5m2") the format's, read widened exactly to float32
    (bfloat16) or float16 (float8)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key putting "layers.2" before "layers.10": runs of ASCII digits compare as numbers
    (re.split alternates text and digits, so texts meet texts and numbers numbers), then the name
    itself breaks ties ("a01" and "a1")."""
    parts = re.split(r"([0-9]+)", name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)) + (name,)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _pickle_refusal(path: Path, why: str) -> CheckpointError:
    return CheckpointError(path, f"{why}: loading a pickle runs arbitrary code, so initsim does not; "
                                 f"convert it to safetensors first, e.g. {CONVERT}")


class _Reader(Protocol):
    infos: list[TensorInfo]

    def read(self, info: TensorInfo) -> np.ndarray: ...

    def close(self) -> None: ...


class Checkpoint:
    """An open checkpoint: its tensors' headers, and ``read(name)`` for one tensor's values. A
    context manager; ``close()`` releases the file."""

    def __init__(self, path: Path, format: str, reader: _Reader) -> None:
        self.path = path
        self.format = format
        self.default_layout = DEFAULT_LAYOUTS[format]
        self._reader: _Reader | None = reader
        infos = sorted(reader.infos, key=lambda info: natural_key(info.name))
        self.tensors: tuple[TensorInfo, ...] = tuple(infos)
        self._by_name = {info.name: info for info in infos}

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name``, loaded now (and only it), of its header's shape."""
        if self._reader is None:
            raise CheckpointError(self.path, "the checkpoint is closed")
        info = self._by_name.get(name)
        if info is None:
            raise CheckpointError(self.path, f"no tensor named {name!r}")
        try:
            array = self._reader.read(info)
        except CheckpointError:
            raise
        except MemoryError:
            raise CheckpointError(self.path, f"tensor {name!r} ({info.nbytes:,} bytes) does not fit in "
                                             "memory") from None
        except Exception as exc:  # the format's libraries' own errors, whatever their kind
            raise CheckpointError(self.path, f"tensor {name!r}: {_first_line(exc)}") from None
        if tuple(array.shape) != info.shape:
            raise CheckpointError(self.path, f"tensor {name!r} has shape {tuple(array.shape)}, its header "
                                             f"says {info.shape}")
        return array

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, {self.format}, {len(self.tensors)} tensors)"


# --- opening: a regular file, its format from its bytes ----------------------------------------

def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (userfiles.open_regular)."""
    try:
        fd = open_regular(path, "a checkpoint file")
    except UnreadableFile as exc:
        raise CheckpointError(path, str(exc)) from None
    # Unbuffered: a read at an offset reads the file as it is now, not a buffer of it.
    return os.fdopen(fd, "rb", buffering=0)


def open_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at ``path``: its format sniffed from its first bytes, its tensors listed from
    its headers in natural name order. Pickles are refused; every problem is a CheckpointError."""
    path = Path(path)
    if path.name.lower().endswith(PICKLE_EXTENSIONS):
        raise _pickle_refusal(path, f"{path.suffix} files are pickles (torch.save)")
    file = _open_regular(path)
    try:
        try:
            size = os.fstat(file.fileno()).st_size
            head = _pread(file, 0, 16)
        except OSError as exc:
            raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
        if not head:
            raise CheckpointError(path, "empty file, not a checkpoint")
        # safetensors before pickles: its header's length can start with 0x80 too (a 128-byte
        # header), while no pickle has '{' at byte 8 (protocol 4's frame length, or a module name).
        if len(head) >= 9 and head[8:9] == b"{":
            return _opened(path, "safetensors", lambda: _SafetensorsReader(path, file, size))
        if head[0] == _PICKLE_PROTO:
            raise _pickle_refusal(path, "this file is a pickle (it starts with pickle's protocol byte 0x80)")
        if head.startswith(_NPY_MAGIC):
            return _opened(path, "npy", lambda: _NpyReader(path, file, size))
        if head.startswith(_ZIP_MAGICS):
            return _opened(path, "npz", lambda: _NpzReader(path, file, size))
        if head.startswith(_HDF5_MAGIC):
            file.close()
            return _opened(path, "h5", lambda: _H5Reader(path))
        raise CheckpointError(path, f"not a safetensors, .npz, .npy or HDF5 file (it starts with bytes "
                                    f"{head[:8].hex(' ')})")
    except BaseException:
        file.close()
        raise


def _opened(path: Path, format: str, reader: Callable[[], _Reader]) -> Checkpoint:
    """The checkpoint ``reader()`` lists. Each reader names the problems it checks for; whatever
    else its libraries raise on a damaged file (zipfile's NotImplementedError for a version byte
    gone wrong, struct's error...) is one CheckpointError too."""
    try:
        return Checkpoint(path, format, reader())
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(path, f"damaged {format} file: {type(exc).__name__}: {_first_line(exc)}") from None


# --- safetensors ---------------------------------------------------------------------------

def _count(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _valid_shape(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not all(type(n) is int and n >= 0 for n in value):
        return None
    return tuple(value)


class _SafetensorsReader:
    """The header parsed and checked here (so listing needs no more than its bytes, and a lie is
    found before any tensor is read); the values read by the safetensors package's numpy API, one
    tensor at a time from its memory map, or from their raw bytes for the dtypes numpy lacks."""

    def __init__(self, path: Path, file: BinaryIO, size: int) -> None:
        self.path, self.file = path, file
        length = struct.unpack("<Q", _pread(file, 0, 8))[0]
        if length > size - 8:
            raise CheckpointError(path, f"truncated or not safetensors: the header says it is {length:,} "
                                        f"bytes long, the file has {size:,}")
        if length > MAX_SAFETENSORS_HEADER:
            raise CheckpointError(path, f"safetensors header of {length:,} bytes (at most "
                                        f"{MAX_SAFETENSORS_HEADER:,})")
        try:
            header = json.loads(_pread(file, 8, length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CheckpointError(path, f"safetensors header is not JSON: {_first_line(exc)}") from None
        if not isinstance(header, dict):
            raise CheckpointError(path, "safetensors header is not a JSON object")
        self.start, data_size = 8 + length, size - 8 - length
        self.infos: list[TensorInfo] = []
        self.codes: dict[str, str] = {}
        self.offsets: dict[str, int] = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            self._add(name, entry, data_size)
        try:
            from safetensors import safe_open
        except ImportError:
            raise CheckpointError(path, f"reading safetensors needs the safetensors package: {INSTALL}") from None
        self.safe_open = safe_open
        try:
            with safe_open(str(path), framework="numpy"):  # the library's own checks of the file
                pass
        except Exception as exc:  # SafetensorError and the OS's
            raise CheckpointError(path, f"not a valid safetensors file: {_first_line(exc)}") from None

    def _add(self, name: str, entry: Any, data_size: int) -> None:
        path = self.path
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise CheckpointError(path, f"tensor {name!r}: header entry is not {{dtype, shape, data_offsets}}")
        code, shape, offsets = entry["dtype"], _valid_shape(entry["shape"]), entry["data_offsets"]
        if shape is None:
            raise CheckpointError(path, f"tensor {name!r}: shape {str(entry['shape'])[:60]} is not a list of "
                                        "sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(path, f"tensor {name!r}: data_offsets {str(offsets)[:60]} are not "
                                        "[begin, end]")
        if offsets[1] > data_size:
            raise CheckpointError(path, f"truncated: tensor {name!r} ends at byte {offsets[1]:,} of the data, "
                                        f"which has {data_size:,}")
        if code in _SAFETENSORS_DTYPES:
            dtype = np.dtype(_SAFETENSORS_DTYPES[code])
            dtype_name = dtype.name
        elif code in _WIDENED:
            dtype_name, raw, _ = _WIDENED[code]
            dtype = np.dtype(raw)
        else:
            raise CheckpointError(path, f"tensor {name!r}: dtype {str(code)[:20]!r} cannot be read "
                                        "(none of numpy's, bfloat16 or float8)")
        nbytes = _count(shape) * dtype.itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise CheckpointError(path, f"tensor {name!r}: shape {shape} of {dtype_name} is {nbytes:,} bytes, "
                                        f"its data_offsets span {offsets[1] - offsets[0]:,}")
        self.infos.append(TensorInfo(name, shape, dtype_name, nbytes))
        self.codes[name], self.offsets[name] = code, offsets[0]

    def read(self, info: TensorInfo) -> np.ndarray:
        code = self.codes[info.name]
        if code in _WIDENED:
            _, raw, widen = _WIDENED[code]
            data = _pread(self.file, self.start + self.offsets[info.name], info.nbytes)
            if len(data) != info.nbytes:
                raise CheckpointError(self.path, f"truncated: tensor {info.name!r} is cut short")
            return widen(np.frombuffer(data, dtype=raw)).reshape(info.shape)
        # Opened for each tensor: the library maps the whole file, and every page a read touched stays
        # in the process's resident memory while the map lives (a 1 GB file read tensor by tensor
        # reached 1.1 GB); closed after each read, the process holds one tensor.
        try:
            with self.safe_open(str(self.path), framework="numpy") as handle:
                array = handle.get_tensor(info.name)
        except Exception as exc:  # SafetensorError and the OS's: the file changed since it was listed
            raise CheckpointError(self.path, f"tensor {info.name!r} cannot be read: {_first_line(exc)}") from None
        if array.dtype.name != info.dtype:
            raise CheckpointError(self.path, f"tensor {info.name!r} read as {array.dtype}, its header says "
                                             f"{info.dtype}")
        return array

    def close(self) -> None:
        self.file.close()


def _pread(file: BinaryIO, offset: int, count: int) -> bytes:
    """``count`` bytes from ``offset`` (fewer at the end of the file): an unbuffered read may return
    less than asked (Linux reads at most 2 GiB at once), so it reads on to the end."""
    file.seek(offset)
    parts, left = [], count
    while left > 0:
        part = file.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


# --- npy and npz ---------------------------------------------------------------------------

def _npy_header(path: Path, stream: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """The shape, dtype and Fortran order of the .npy whose header ``stream`` starts with (only the
    header is read). Object arrays, which only a pickle can hold, are refused."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream)
        else:  # (2, 0) or (3, 0); anything else is refused by the reader
            shape, fortran, dtype = fmt.read_array_header_2_0(stream)
    except Exception as exc:  # numpy's ValueError on a bad header, EOFError on a short one
        raise CheckpointError(path, f"{where}bad .npy header: {_first_line(exc)}") from None
    if dtype.hasobject:
        raise _pickle_refusal(path, f"{where}this .npy holds Python objects (a pickle)")
    return tuple(shape), dtype, fortran


class _NpyReader:
    """One tensor named after the file's stem, memory-mapped so only ``read`` brings it in."""

    def __init__(self, path: Path, file: BinaryIO, size: int) -> None:
        self.path, self.file = path, file
        file.seek(0)
        shape, self.dtype, self.fortran = _npy_header(path, file, "")
        self.offset = file.tell()
        nbytes = _count(shape) * self.dtype.itemsize
        if self.offset + nbytes != size:
            raise CheckpointError(path, f"{'truncated' if self.offset + nbytes > size else 'not a .npy'}: the "
                                        f"header says {nbytes:,} bytes of data, the file holds "
                                        f"{size - self.offset:,}")
        if self.dtype.kind not in NUMERIC_KINDS:
            raise CheckpointError(path, f"holds {self.dtype} (not numbers), not a tensor")
        self.infos = [TensorInfo(path.stem, shape, self.dtype.name, nbytes)]

    def read(self, info: TensorInfo) -> np.ndarray:
        if info.nbytes == 0:  # mmap cannot map nothing
            return np.empty(info.shape, self.dtype, order="F" if self.fortran else "C")
        mapped = np.memmap(self.file, dtype=self.dtype, mode="r", offset=self.offset, shape=info.shape,
                           order="F" if self.fortran else "C")
        return np.array(mapped)  # a copy: the map goes with ``mapped``, the array outlives the file

    def close(self) -> None:
        self.file.close()


class _NpzReader:
    """The zip's directory and each member's .npy header listed (members of text, as the
    config_json of `initsim weights`, are no tensors); one member decompressed on read."""

    def __init__(self, path: Path, file: BinaryIO, size: int) -> None:
        self.path, self.file = path, file
        try:
            file.seek(0)
            self.zip = zipfile.ZipFile(file)
        except Exception as exc:  # BadZipFile, and NotImplementedError, OverflowError... on bad bytes
            raise CheckpointError(path, f"truncated or not a zip (.npz): {_first_line(exc)}") from None
        members = self.zip.infolist()
        pickled = next((m.filename for m in members if m.filename.lower().endswith((".pkl", ".pickle"))), None)
        if pickled is not None:
            raise _pickle_refusal(path, f"a PyTorch checkpoint (this zip holds the pickle {pickled[:80]!r})")
        self.infos: list[TensorInfo] = []
        self.members: dict[str, zipfile.ZipInfo] = {}
        for member in members:
            if member.is_dir():
                continue
            if not member.filename.endswith(".npy"):
                raise CheckpointError(path, f"not an .npz: member {member.filename[:80]!r} is not a .npy")
            name = member.filename[:-4]
            where = f"member {member.filename[:80]!r}: "
            try:
                with self.zip.open(member) as stream:
                    shape, dtype, _ = _npy_header(path, stream, where)  # type: ignore[arg-type]
                    header = stream.tell()
            except CheckpointError:
                raise
            except Exception as exc:  # zipfile's on a damaged member, zlib's on bad compressed data
                raise CheckpointError(path, f"{where}{_first_line(exc)}") from None
            nbytes = _count(shape) * dtype.itemsize
            if header + nbytes != member.file_size:
                raise CheckpointError(path, f"{where}its header says {nbytes:,} bytes of data, the member holds "
                                            f"{member.file_size - header:,}")
            stored = member.compress_type == zipfile.ZIP_STORED
            if (member.compress_size < member.file_size if stored
                    else member.file_size > _MAX_DEFLATE_RATIO * member.compress_size + 2**20):
                raise CheckpointError(path, f"{where}says it holds {member.file_size:,} bytes in "
                                            f"{member.compress_size:,}, more than compression allows")
            if member.header_offset + member.compress_size > size:
                raise CheckpointError(path, f"truncated: {where}ends past the end of the file")
            if dtype.kind not in NUMERIC_KINDS:  # text, as `initsim weights`' config_json: no tensor
                continue
            self.infos.append(TensorInfo(name, shape, dtype.name, nbytes))
            self.members[name] = member

    def read(self, info: TensorInfo) -> np.ndarray:
        with self.zip.open(self.members[info.name]) as stream:
            # read_array fills an array of the header's size chunk by chunk: no second copy.
            return np.lib.format.read_array(stream, allow_pickle=False)  # type: ignore[arg-type]

    def close(self) -> None:
        self.zip.close()
        self.file.close()


# --- HDF5 (Keras) --------------------------------------------------------------------------

class _H5Reader:
    """Every dataset of numbers, named by its HDF5 path ("layers/dense/vars/0"); h5py reads one on
    demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            import h5py
        except ImportError:
            raise CheckpointError(path, f"reading HDF5 (.h5) needs the h5py package: {INSTALL}") from None
        try:
            self.h5 = h5py.File(path, "r")
        except Exception as exc:  # OSError for a damaged file, whatever HDF5 says
            raise CheckpointError(path, f"not a readable HDF5 file: {_first_line(exc)}") from None
        self.infos: list[TensorInfo] = []

        def visit(name: str, item: Any) -> None:
            # Strings and compound records (Keras' metadata) are not tensors.
            if isinstance(item, h5py.Dataset) and item.dtype.kind in NUMERIC_KINDS and item.shape is not None:
                shape = tuple(int(n) for n in item.shape)
                self.infos.append(TensorInfo(name, shape, item.dtype.name, _count(shape) * item.dtype.itemsize))

        try:
            self.h5.visititems(visit)
        except Exception as exc:
            self.h5.close()
            raise CheckpointError(path, f"damaged HDF5 file: {_first_line(exc)}") from None

    def read(self, info: TensorInfo) -> np.ndarray:
        return np.asarray(self.h5[info.name][()])

    def close(self) -> None:
        self.h5.close()
