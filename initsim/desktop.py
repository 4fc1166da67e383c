"""Desktop integration: install the freedesktop entry and the icons for the current user.

`initsim install-desktop` copies resources/initsim.desktop into $XDG_DATA_HOME/applications (default
~/.local/share/applications), with Exec set to the absolute path of this `initsim`, and the icons into
the hicolor theme there, so the app starts from the desktop's menu.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .engine.export import atomic_write_all
from .engine.presets import resource_dir

ICON_SIZES = (16, 32, 48, 128, 256)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launcher() -> str:
    """The command that starts this installation's window."""
    found = shutil.which("initsim")
    return found if found else f"{sys.executable} -m initsim"


def install_desktop_entry(target: Path | None = None) -> list[Path]:
    """Write the .desktop entry and the icons under ``target`` (default: the user's data home), all
    of them or none."""
    target = target or data_home()
    entry = resource_dir("initsim.desktop").read_text(encoding="utf-8")
    icons = resource_dir("icons")
    files = {target / "applications" / "initsim.desktop":
             entry.replace("Exec=initsim", f"Exec={launcher()}").encode("utf-8")}
    for size in ICON_SIZES:
        files[target / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "initsim.png"] = \
            (icons / f"initsim-{size}.png").read_bytes()
    files[target / "icons" / "hicolor" / "scalable" / "apps" / "initsim.svg"] = (icons / "initsim.svg").read_bytes()
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_all(files)
