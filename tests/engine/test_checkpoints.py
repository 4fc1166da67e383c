"""The checkpoint reader: every format round-trips bit-exactly, tensors are listed in natural order
from headers only and read one at a time, pickles are refused unopened, and every malformed file
is one CheckpointError naming it."""

from __future__ import annotations

import json
import os
import pickle
import struct
import threading
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from safetensors.numpy import save_file

from initsim.engine.checkpoints import (FORMATS, CheckpointError, TensorInfo, natural_key,
                                        open_checkpoint)

RNG = np.random.default_rng(14)
# Every dtype the formats share, the shapes a checkpoint holds: a matrix, a conv kernel, a vector,
# a scalar and an empty tensor.
TENSORS = {
    "layers.10.weight": RNG.standard_normal((3, 5)).astype(np.float32),
    "layers.2.weight": RNG.standard_normal((4, 2, 3, 3)).astype(np.float16),
    "layers.2.bias": RNG.standard_normal(4),
    "layers.1.scale": np.array(2.5, dtype=np.float64),
    "step": np.array([7, -3], dtype=np.int64),
    "mask": np.array([True, False, True]),
    "counts": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "empty": np.zeros((0, 4), dtype=np.float32),
}
NATURAL = ["counts", "empty", "layers.1.scale", "layers.2.bias", "layers.2.weight", "layers.10.weight", "mask",
           "step"]


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    save_file(tensors, str(path))


def write_npz(path: Path, tensors: dict[str, np.ndarray]) -> None:
    np.savez(path, **tensors)


def write_npz_compressed(path: Path, tensors: dict[str, np.ndarray]) -> None:
    np.savez_compressed(path, **tensors)


def write_h5(path: Path, tensors: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as file:
        for name, array in tensors.items():
            file.create_dataset(name, data=array)
        file.create_dataset("notes", data="text is no tensor")  # skipped


WRITERS = {"safetensors": (write_safetensors, "m.safetensors"), "npz": (write_npz, "m.npz"),
           "npz compressed": (write_npz_compressed, "m.npz"), "h5": (write_h5, "m.weights.h5")}


def bits(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array).tobytes()


@pytest.mark.parametrize("kind", WRITERS)
def test_every_format_round_trips_bit_exactly(tmp_path, kind):
    write, name = WRITERS[kind]
    path = tmp_path / name
    write(path, TENSORS)
    with open_checkpoint(path) as checkpoint:
        assert checkpoint.format == kind.split()[0]
        assert checkpoint.path == path
        assert [info.name for info in checkpoint.tensors] == NATURAL
        for info in checkpoint.tensors:
            expected = TENSORS[info.name]
            assert info == TensorInfo(info.name, expected.shape, expected.dtype.name, expected.nbytes)
            array = checkpoint.read(info.name)
            assert array.dtype == expected.dtype and array.shape == expected.shape
            assert bits(array) == bits(expected)


def test_npy_is_one_tensor_named_after_the_stem_in_either_order(tmp_path):
    for order in ("C", "F"):
        expected = np.asarray(RNG.standard_normal((6, 4)), order=order)
        path = tmp_path / f"dense_{order}.weights.npy"
        np.save(path, expected)
        with open_checkpoint(path) as checkpoint:
            assert checkpoint.format == "npy"
            (info,) = checkpoint.tensors
            assert info == TensorInfo(f"dense_{order}.weights", (6, 4), "float64", 6 * 4 * 8)
            assert np.array_equal(checkpoint.read(info.name), expected)
    for expected in (np.array(3.0), np.zeros((0, 3), np.int16)):  # a scalar; nothing to map
        np.save(tmp_path / "x.npy", expected)
        with open_checkpoint(tmp_path / "x.npy") as checkpoint:
            array = checkpoint.read("x")
            assert array.shape == expected.shape and array.dtype == expected.dtype
            assert bits(array) == bits(expected)


def test_text_members_are_no_tensors(tmp_path):
    # As `initsim weights --layers` writes: the weights and the config as JSON text.
    np.savez(tmp_path / "net.npz", W1=np.ones((2, 3)), b1=np.zeros(3), config_json=np.array('{"layers": 1}'))
    with open_checkpoint(tmp_path / "net.npz") as checkpoint:
        assert [info.name for info in checkpoint.tensors] == ["W1", "b1"]
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(CheckpointError, match="not numbers"):
        open_checkpoint(tmp_path / "text.npy")


def test_the_format_comes_from_the_bytes_not_the_name(tmp_path):
    path = tmp_path / "weights.safetensors"
    np.savez(path, w=np.ones(3))  # np.savez adds .npz to a name without it
    (tmp_path / "weights.safetensors.npz").rename(path)
    with open_checkpoint(path) as checkpoint:
        assert checkpoint.format == "npz" and checkpoint.default_layout == "numpy"
        assert np.array_equal(checkpoint.read("w"), np.ones(3))


def test_default_layouts(tmp_path):
    layouts = {}
    for kind, (write, name) in WRITERS.items():
        write(tmp_path / name, {"w": np.ones((2, 3), np.float32)})
        with open_checkpoint(tmp_path / name) as checkpoint:
            layouts[checkpoint.format] = checkpoint.default_layout
    np.save(tmp_path / "w.npy", np.ones(2))
    with open_checkpoint(tmp_path / "w.npy") as checkpoint:
        layouts[checkpoint.format] = checkpoint.default_layout
    assert layouts == {"safetensors": "torch", "npz": "numpy", "npy": "numpy", "h5": "numpy"}
    assert set(layouts) == set(FORMATS)


def test_natural_order():
    names = ["layers.10.weight", "layers.2.weight", "layers.2.bias", "layers.1.weight", "head", "layers.01.x",
             "layers.1.x", "block9", "block10", "block1"]
    assert sorted(names, key=natural_key) == ["block1", "block9", "block10", "head", "layers.1.weight",
                                              "layers.01.x", "layers.1.x", "layers.2.bias", "layers.2.weight",
                                              "layers.10.weight"]


# --- safetensors' dtypes numpy lacks -------------------------------------------------------

def raw_safetensors(path: Path, entries: dict[str, tuple[str, list[int], bytes]], header_extra: bytes = b"",
                    cut: int = 0) -> None:
    """A safetensors file written byte by byte: name -> (dtype code, shape, data)."""
    header, data = {}, b""
    for name, (code, shape, raw) in entries.items():
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode() + header_extra
    blob = struct.pack("<Q", len(text)) + text + data
    path.write_bytes(blob[:len(blob) - cut])


def test_bfloat16_and_float8_widen_exactly(tmp_path):
    # bfloat16 values: float32s whose low 16 bits are zero (the largest, a subnormal, -0, inf, nan).
    wide = np.array([1.0, -2.5, 3.389531389e38, 9.18354961579912e-41, -0.0, np.inf, np.nan, 0.0078125],
                    dtype=np.float32)
    wide_bits = wide.view(np.uint32)
    assert not np.any(wide_bits & 0xFFFF)
    bf16 = (wide_bits >> 16).astype("<u2")
    # float8 e5m2: float16s whose low byte is zero.
    half = np.array([1.0, -0.75, 57344.0, 2.0**-16, np.inf, -0.0], dtype=np.float16)
    e5m2 = (half.view(np.uint16) >> 8).astype(np.uint8)
    assert np.array_equal(e5m2.astype(np.uint16) << 8, half.view(np.uint16))
    # float8 e4m3fn by its codes: 1, the largest (448), the smallest normal and subnormal, -1.5, NaN.
    e4m3 = np.array([0x38, 0x7E, 0x08, 0x01, 0xBC, 0x7F, 0x00], dtype=np.uint8)
    e4m3_values = np.array([1.0, 448.0, 2.0**-6, 2.0**-9, -1.5, np.nan, 0.0])
    path = tmp_path / "low.safetensors"
    raw_safetensors(path, {"bf": ("BF16", [2, 4], bf16.tobytes()), "e5": ("F8_E5M2", [6], e5m2.tobytes()),
                           "e4": ("F8_E4M3", [7], e4m3.tobytes())})
    with open_checkpoint(path) as checkpoint:
        infos = {info.name: info for info in checkpoint.tensors}
        assert infos["bf"] == TensorInfo("bf", (2, 4), "bfloat16", 16)
        assert infos["e4"] == TensorInfo("e4", (7,), "float8_e4m3fn", 7)
        assert infos["e5"].dtype == "float8_e5m2"
        bf = checkpoint.read("bf")
        assert bf.dtype == np.float32 and bf.shape == (2, 4)
        assert np.array_equal(bf.ravel().view(np.uint32), wide_bits)
        e5 = checkpoint.read("e5")
        assert e5.dtype == np.float16 and np.array_equal(e5.view(np.uint16), half.view(np.uint16))
        e4 = checkpoint.read("e4")
        assert e4.dtype == np.float16
        assert np.array_equal(e4.astype(np.float64), e4m3_values, equal_nan=True)


def test_a_header_length_starting_with_the_pickle_byte_is_safetensors(tmp_path):
    # A 384-byte header: the file's first byte is 0x80, as pickle's protocol opcode.
    path = tmp_path / "m.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", 384) + header.ljust(384) + np.ones(2, np.float32).tobytes())
    assert path.read_bytes()[0] == 0x80
    with open_checkpoint(path) as checkpoint:
        assert np.array_equal(checkpoint.read("w"), np.ones(2))


# --- memory: a big file, one small tensor ---------------------------------------------------

BIG = (4096, 4096)  # float32: 64 MiB each, four of them
BIG_BYTES = 4 * 4096 * 4096


def test_listing_and_reading_one_tensor_does_not_load_the_rest(tmp_path):
    """A 256 MiB safetensors file (its big tensors sparse: written in no time, read as zeros): its
    list and its one small tensor take a few kilobytes; reading one big tensor, its size (which
    shows that tracemalloc sees what the reader allocates)."""
    path = tmp_path / "big.safetensors"
    small = np.arange(64, dtype=np.float32).reshape(8, 8)
    header, offset = {}, 0
    for i in range(4):
        header[f"big.{i}"] = {"dtype": "F32", "shape": list(BIG), "data_offsets": [offset, offset + BIG_BYTES]}
        offset += BIG_BYTES
    header["small"] = {"dtype": "F32", "shape": [8, 8], "data_offsets": [offset, offset + small.nbytes]}
    text = json.dumps(header).encode()
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)) + text)
        file.seek(8 + len(text) + offset)
        file.write(small.tobytes())
    size = path.stat().st_size
    assert size > 256 * 2**20
    try:
        tracemalloc.start()
        try:
            with open_checkpoint(path) as checkpoint:
                assert [info.name for info in checkpoint.tensors] == ["big.0", "big.1", "big.2", "big.3", "small"]
                assert sum(info.nbytes for info in checkpoint.tensors) == size - 8 - len(text)
                assert np.array_equal(checkpoint.read("small"), small)
                listed_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.reset_peak()
                assert not checkpoint.read("big.2").any()
                one_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert listed_peak < 4 * 2**20, listed_peak  # far below one big tensor, let alone the file
        assert BIG_BYTES <= one_peak < 3 * BIG_BYTES, one_peak
    finally:
        path.unlink()


def test_npz_and_npy_list_from_headers_only(tmp_path):
    """A 96 MiB .npz (three stored members) and a 64 MiB .npy: listing reads their headers, not their
    data (tracemalloc sees a few kilobytes); reading the .npz's small member loads only it."""
    big = np.zeros(BIG, np.float32)
    npz, npy = tmp_path / "big.npz", tmp_path / "big.npy"
    np.savez(npz, a=big[:2048], b=big[2048:], small=np.arange(5.0), c=big[:2048])
    np.save(npy, big)
    del big
    try:
        tracemalloc.start()
        try:
            with open_checkpoint(npz) as checkpoint:
                assert [info.name for info in checkpoint.tensors] == ["a", "b", "c", "small"]
                assert np.array_equal(checkpoint.read("small"), np.arange(5.0))
            with open_checkpoint(npy) as checkpoint:
                assert checkpoint.tensors == (TensorInfo("big", BIG, "float32", BIG_BYTES),)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 * 2**20, peak
    finally:
        npz.unlink()
        npy.unlink()


# --- pickles ---------------------------------------------------------------------------------

class Payload:
    """Unpickling this creates ``marker``: what any code in a pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def assert_refused(path: Path) -> str:
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "pickle" in message and "runs arbitrary code" in message and "safetensors" in message
    return message


def test_pickles_are_refused_without_being_unpickled(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(Payload(marker), protocol=4)
    assert payload[0] == 0x80
    for name in ("model.pt", "model.pth", "pytorch_model.bin", "last.ckpt", "w.pkl"):
        (tmp_path / name).write_bytes(payload)
        assert_refused(tmp_path / name)
    # Named as something else: refused by its first byte.
    (tmp_path / "model.safetensors").write_bytes(payload)
    assert "0x80" in assert_refused(tmp_path / "model.safetensors")
    # What torch.save writes: a zip holding data.pkl, named as an .npz.
    with zipfile.ZipFile(tmp_path / "model.npz", "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    assert "data.pkl" in assert_refused(tmp_path / "model.npz")
    # An .npy of Python objects is a pickle inside, in a zip or not.
    objects = np.array([Payload(marker)], dtype=object)
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    assert_refused(tmp_path / "objects.npy")
    np.savez(tmp_path / "objects.npz", w=objects)
    assert_refused(tmp_path / "objects.npz")
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: loading it would have made the marker
    assert marker.exists()


# --- malformed files -------------------------------------------------------------------------

def good_safetensors(path: Path) -> None:
    raw_safetensors(path, {"w": ("F32", [2, 3], np.ones(6, np.float32).tobytes()),
                           "b": ("F32", [3], np.zeros(3, np.float32).tobytes())})


def npy_bytes(array: np.ndarray) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def lying_npy(shape: tuple[int, ...]) -> bytes:
    """An .npy of 6 float64s whose header says ``shape``."""
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + np.ones(6).tobytes()


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED):
    def make(path: Path) -> None:
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return make


def cut(make, keep: float):
    def cut_file(path: Path) -> None:
        make(path)
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * keep)])
    return cut_file


def write(data: bytes):
    return lambda path: path.write_bytes(data)


def safetensors_header(header: object, data: bytes = b"", length: int | None = None):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return write(struct.pack("<Q", len(text) if length is None else length) + text + data)


def zip_version_91(path: Path) -> None:
    """An .npz whose central directory says it needs zip version 9.1 (zipfile raises
    NotImplementedError)."""
    write_npz(path, {"w": np.ones(3)})
    data = bytearray(path.read_bytes())
    data[data.index(b"PK\x01\x02") + 6] = 91
    path.write_bytes(bytes(data))


def h5_file(path: Path) -> None:
    write_h5(path, {"w": np.ones((64, 64))})


ENTRY = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
MALFORMED = {
    "empty.safetensors": write(b""),
    "folder.npz": lambda path: path.mkdir(),
    "text.safetensors": write(b"this is not a checkpoint at all\n"),
    "short.npz": write(b"PK\x03\x04"),
    "cut.safetensors": cut(good_safetensors, 0.9),
    "cut-header.safetensors": cut(good_safetensors, 0.2),
    "8-exabytes.safetensors": safetensors_header({}, length=2**63),
    "huge-header.safetensors": safetensors_header(b"{" + b" " * 16, length=200_000_000),
    "not-json.safetensors": safetensors_header(b"{not json"),
    "entry-not-object.safetensors": safetensors_header({"w": [1, 2]}),
    "deep.safetensors": safetensors_header(b"{\"a\":" + b"[" * 100_000),
    "no-offsets.safetensors": safetensors_header({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
    "shape-lies.safetensors": safetensors_header({"w": {**ENTRY, "shape": [2, 4]}}, b"\0" * 24),
    "huge-shape.safetensors": safetensors_header({"w": {**ENTRY, "shape": [2**40, 2**40]}}, b"\0" * 24),
    "offset-past-end.safetensors": safetensors_header({"w": {**ENTRY, "data_offsets": [24, 48]}}, b"\0" * 24),
    "negative-shape.safetensors": safetensors_header({"w": {**ENTRY, "shape": [-2, -3]}}, b"\0" * 24),
    "bool-offsets.safetensors": safetensors_header({"w": {**ENTRY, "data_offsets": [False, 24]}}, b"\0" * 24),
    "unknown-dtype.safetensors": safetensors_header({"w": {**ENTRY, "dtype": "Q7"}}, b"\0" * 24),
    "gap.safetensors": safetensors_header({"w": {**ENTRY, "data_offsets": [8, 32]}}, b"\0" * 32),
    "cut.npz": cut(lambda path: write_npz(path, TENSORS), 0.6),
    "cut-compressed.npz": cut(lambda path: write_npz_compressed(path, TENSORS), 0.5),
    "zip-version.npz": zip_version_91,
    "other-member.npz": zip_of({"w.npy": npy_bytes(np.ones(3)), "README.txt": b"hello"}),
    "member-lies.npz": zip_of({"w.npy": lying_npy((600,))}),
    "member-lies-compressed.npz": zip_of({"w.npy": lying_npy((10**15,))}, zipfile.ZIP_DEFLATED),
    "bad-npy-member.npz": zip_of({"w.npy": b"\x93NUMPY\x01\x00garbage"}),
    "not-npy-member.npz": zip_of({"w.npy": b"just text"}),
    "cut.npy": cut(lambda path: path.write_bytes(npy_bytes(np.ones(100))), 0.7),
    "lies.npy": write(lying_npy((7,))),
    "huge.npy": write(lying_npy((2**60,))),
    "extra.npy": write(npy_bytes(np.ones(3)) + b"\0" * 8),
    "bad-header.npy": write(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'}\n"),
    "cut.weights.h5": cut(h5_file, 0.5),
    "magic-only.h5": write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100),
    "zero-link.npy": lambda path: path.symlink_to("/dev/zero"),
    "fifo.safetensors": lambda path: os.mkfifo(path),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_file_is_one_error_naming_it(tmp_path, name):
    path = tmp_path / name
    MALFORMED[name](path)
    result: list[BaseException] = []

    def inspect() -> None:  # every tensor listed and read, as `initsim inspect` does
        try:
            with open_checkpoint(path) as checkpoint:
                for info in checkpoint.tensors:
                    checkpoint.read(info.name)
            result.append(AssertionError("no error"))
        except BaseException as exc:  # noqa: BLE001: the test says which
            result.append(exc)

    worker = threading.Thread(target=inspect, daemon=True)  # a FIFO must not block it
    worker.start()
    worker.join(30)
    assert result, "open_checkpoint hung"
    (error,) = result
    assert isinstance(error, CheckpointError), repr(error)
    assert str(error).startswith(f"{path}: ") and "\n" not in str(error) and len(str(error)) < 500


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(CheckpointError, match="No such file"):
        open_checkpoint(tmp_path / "nothing.safetensors")
    if os.geteuid() == 0:
        return  # root reads a file whatever its mode
    path = tmp_path / "locked.npz"
    write_npz(path, TENSORS)
    path.chmod(0)
    with pytest.raises(CheckpointError, match="Permission denied"):
        open_checkpoint(path)


def test_read_checks_the_data_and_the_name(tmp_path):
    # A stored member whose data changed after it was written: listed, refused at read by its CRC.
    path = tmp_path / "flipped.npz"
    write_npz(path, {"w": np.ones(100_000)})  # more than zipfile reads ahead with the header
    data = bytearray(path.read_bytes())
    data[data.index(np.ones(100_000).tobytes()) + 500_000] ^= 0xFF
    path.write_bytes(bytes(data))
    with open_checkpoint(path) as checkpoint:
        assert checkpoint.tensors == (TensorInfo("w", (100_000,), "float64", 800_000),)
        with pytest.raises(CheckpointError, match="'w'.*CRC"):
            checkpoint.read("w")
        with pytest.raises(CheckpointError, match="no tensor named 'v'"):
            checkpoint.read("v")
    with pytest.raises(CheckpointError, match="closed"):
        checkpoint.read("w")
    # A safetensors file cut after it was opened: the bfloat16 path reads its raw bytes itself.
    path = tmp_path / "shrinks.safetensors"
    raw_safetensors(path, {"w": ("BF16", [4], b"\x80\x3f" * 4)})
    with open_checkpoint(path) as checkpoint:
        os.truncate(path, path.stat().st_size - 2)
        with pytest.raises(CheckpointError, match="truncated"):
            checkpoint.read("w")


def test_a_missing_package_says_how_to_install_it(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_optional(name, *args, **kwargs):
        if name in ("safetensors", "h5py"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    good_safetensors(tmp_path / "m.safetensors")
    h5_file(tmp_path / "m.h5")
    monkeypatch.setattr(builtins, "__import__", no_optional)
    for name in ("m.safetensors", "m.h5"):
        with pytest.raises(CheckpointError, match=r'pip install "initsim\[checkpoints\]"'):
            open_checkpoint(tmp_path / name)
