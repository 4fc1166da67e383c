"""A corpus of config, preset and tour files that cannot be used, made in a test's folder, shared by
the engine's, the CLI's and the window's tests: each must give exactly one short message.

Cut short, binary, wrong types, numbers beyond any range, 3,000-deep arrays, unknown keys, 50 MB,
a pipe, a link to /dev/zero, a folder, HTML that would load a local file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from initsim.engine import SimConfig
from initsim.engine.configfile import config_to_toml

DEEP = 3000
SAVED = config_to_toml(SimConfig().validated())
STEP = '[[step]]\ntitle = "One"\ntext = "Words."\n'
TOUR = f'title = "A tour"\n\n{STEP}'


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as file:
            file.truncate(size)  # no blocks written: instant, whatever the size
    return make


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path) -> None:
    path.mkdir()


def _digits(count: int) -> str:
    return "9" * count


# name -> what makes it
MAKERS: dict[str, Callable[[Path], None]] = {
    "truncated.toml": _text(SAVED[:len(SAVED) // 3] + 'init = "kaim'),
    "truncated-tour.toml": _text(TOUR + 'look_at = """the'),
    "truncated.json": _text('{"name": "p", "title": "P", "explanation": "E", "config": {"lay'),
    "binary.toml": _bytes(bytes(range(256)) * 16),
    "nul.toml": _text("layers = 4\x00\nwidth = 8\n"),
    "text-layers.toml": _text('layers = "many"\n'),
    "number-params.toml": _text("init_params = 5\n"),
    "list-activation.toml": _text("activation = [1, 2]\n"),
    "number-step.toml": _text('title = "T"\nstep = 5\n[[step]]\n'),
    "compare-number.toml": _text(TOUR + "compare = 5\n"),
    "look-at-list.toml": _text(TOUR + "look_at = [1]\n"),
    "list-preset.json": _text("[1, 2, 3]\n"),
    "number-config.json": _text('{"name": "p", "title": "P", "explanation": "E", "config": 5}\n'),
    "huge-width.toml": _text("width = 1e400\n"),
    "huge-layers.toml": _text(f"layers = {_digits(400)}\n"),
    "huge-gain.toml": _text(f'init = "xavier_normal"\n\n[init_params]\ngain = {_digits(400)}\n'),
    "endless-integer.toml": _text(f"seed = {_digits(5000)}\n"),
    "endless-integer.json": _text('{"name": "p", "title": "P", "explanation": "E", "config": {"seed": '
                                  + _digits(5000) + "}}"),
    "deep.toml": _text("layers = " + "[" * DEEP + "]" * DEEP + "\n"),
    "deep-tables.toml": _text("layers = " + "{a = " * DEEP + "1" + "}" * DEEP + "\n"),
    "deep-tour.toml": _text(TOUR + "[step.config]\nwidth = " + "[" * DEEP + "]" * DEEP + "\n"),
    "deep.json": _text("[" * DEEP + "]" * DEEP),
    "unknown-key.toml": _text("layers = 4\nwidht = 8\n"),
    "unknown-step-key.toml": _text(TOUR + 'veiw = "stats"\n'),
    "long-unknown-key.toml": _text("k" * 200_000 + " = 1\n"),
    "long-value.toml": _text(f'init = "{"x " * 200_000}"\n'),
    "html.toml": _text("\"<img src='file:///etc/passwd'>\" = 1\n"),
    "too-large.toml": _text("# a comment\n" * 100_000),
    "50MB.toml": _sparse(50 * 2**20),
    "fifo.toml": _fifo,
    "zero.toml": _link_to_zero,
    "folder.toml": _folder,
}


def make_bad_files(folder: Path) -> list[Path]:
    """Every file of MAKERS in ``folder`` (those this system cannot make, such as a pipe on
    Windows, left out)."""
    made = []
    for name, make in MAKERS.items():
        path = folder / name
        try:
            make(path)
        except (OSError, AttributeError, NotImplementedError):  # no os.mkfifo, no /dev/zero, no links
            continue
        made.append(path)
    return made
