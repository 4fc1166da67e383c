"""End to end on a real X server: the installed ``initsim`` opens its window on Xvfb with Qt's xcb
platform, paints, and quits cleanly on Ctrl+Q."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.xsession,
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (Debian: apt-get install xvfb)"),
]

# A second process grabs the X screen, as any screenshot tool would: through Qt's xcb platform.
GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv[:1])
sys.exit(0 if app.primaryScreen().grabWindow(0).save(sys.argv[1], "PNG") else 1)
"""
WAIT_SECONDS = 60  # a deadline for slow machines, not a speed requirement


@pytest.fixture
def display(tmp_path: Path):
    """A fresh Xvfb display; yields its name (":N")."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1600x1000x24",
                               "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()  # Xvfb writes its display number once it is ready
    assert number, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=WAIT_SECONDS)


def _environment(display: str, home: Path) -> dict[str, str]:
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "WAYLAND"))}
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_RUNTIME_DIR=str(runtime))
    return env


def _xdotool(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True,
                          timeout=WAIT_SECONDS).stdout.strip()


def _grab(env: dict[str, str], path: Path) -> np.ndarray:
    subprocess.run([sys.executable, "-c", GRAB, str(path)], env=env, check=True, capture_output=True,
                   timeout=WAIT_SECONDS)
    from PySide6.QtGui import QImage

    image = QImage(str(path)).convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width()].copy()


def _shows_plots(screen: np.ndarray) -> bool:
    return screen.std() > 20 and len(np.unique(screen)) > 50


def _settled_screen(env: dict[str, str], path: Path) -> np.ndarray:
    """The screen once it shows plots and two grabs in a row agree: the first run painted, nothing
    moving. No pause between grabs (each takes its own fraction of a second); a deadline bounds it."""
    previous, current = None, _grab(env, path)
    deadline = time.monotonic() + WAIT_SECONDS
    while not (_shows_plots(current) and np.array_equal(previous, current)):
        assert time.monotonic() < deadline, f"no settled screen of plots in {WAIT_SECONDS} s: {path}"
        previous, current = current, _grab(env, path)
    return current


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed")
def test_the_installed_initsim_opens_paints_and_quits_on_ctrl_q(display, tmp_path):
    initsim = shutil.which("initsim")
    assert initsim, "the initsim command is not installed (pip install -e .)"
    env = _environment(display, tmp_path)
    app = subprocess.Popen([initsim], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        window = _xdotool(env, "search", "--sync", "--onlyvisible", "--name", "^initsim")
        _settled_screen(env, tmp_path / "screen.png")
        _xdotool(env, "windowfocus", "--sync", window.splitlines()[0])
        _xdotool(env, "key", "--clearmodifiers", "ctrl+q")
        _, stderr = app.communicate(timeout=WAIT_SECONDS)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode == 0, stderr
    assert stderr.strip() == "", f"initsim wrote to stderr:\n{stderr}"
    assert (tmp_path / "config" / "initsim" / "initsim.conf").exists()  # the geometry was saved
