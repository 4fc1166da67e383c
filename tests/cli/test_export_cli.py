"""`initsim export`: images rendered with no display (the size asked, the config inside), data
without Qt, every shipped tour as slides, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtGui import QImage

from initsim.cli import main
from initsim.engine import SimConfig, simulate
from initsim.engine.configfile import MESSAGE_LIMIT
from initsim.engine.export import export_data
from initsim.engine.presets import get_preset
from initsim.engine.tours import tours

from bad_files import make_bad_files

CONFIG_KEY = "initsim-config"  # as initsim.app.io.imaging writes it (imported here, it would pull in the app)
SVG = "{http://www.w3.org/2000/svg}"
NET = ["--preset", "he_relu", "--layers", "4", "--width", "32", "--batch", "16"]
NET_CONFIG = get_preset("he_relu").config.replace(layers=4, width=32, batch=16).validated()


# A bound against a hang, not a speed requirement: the longest export here, the classic tour's
# slides, takes 35 s on two quiet cores, and several times that on a loaded machine.
HANG_SECONDS = 900


def run_cli(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    """The command in a fresh process with no display, and a settings folder to watch."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return subprocess.run([sys.executable, "-m", "initsim", "export", *argv], capture_output=True, text=True,
                          env=env, timeout=HANG_SECONDS)


def png(path) -> tuple[QImage, SimConfig]:
    image = QImage(str(path))
    return image, SimConfig.from_dict(json.loads(image.text(CONFIG_KEY)))


def not_blank(image: QImage) -> bool:
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(gray.constBits(), dtype=np.uint8)
    return pixels.std() > 10


@pytest.mark.parametrize("name", sorted(tours()))
def test_every_shipped_tour_renders_as_slides_without_a_display(tmp_path, name):
    tour = tours()[name]
    done = run_cli(tmp_path, "--tour", name, "--out-dir", str(tmp_path / "slides"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not even the offscreen platform's notice
    slides = sorted((tmp_path / "slides").iterdir())
    assert [p.name[:3] for p in slides] == [f"{i:02d}-" for i in range(1, len(tour.steps) + 1)]
    for path, step in zip(slides, tour.steps):
        image, config = png(path)
        assert (image.width(), image.height()) == (1920, 1080)
        assert config == step.config and not_blank(image)
    assert not (tmp_path / "config").exists()  # the user's settings untouched


def test_a_view_as_png_has_the_size_times_the_scale_and_its_config(tmp_path):
    done = run_cli(tmp_path, *NET, "--view", "histograms", "--size", "800x500", "--image-scale", "2",
                   "--out", str(tmp_path / "h.png"))
    assert done.returncode == 0, done.stderr
    image, config = png(tmp_path / "h.png")
    assert (image.width(), image.height()) == (1600, 1000)
    assert config == NET_CONFIG and not_blank(image)
    assert image.text("initsim-view") == "histograms"


def test_a_view_as_svg_holds_its_plot_paths_and_config(tmp_path):
    done = run_cli(tmp_path, *NET, "--view", "stats", "--out", str(tmp_path / "s.svg"))
    assert done.returncode == 0, done.stderr
    root = ET.parse(tmp_path / "s.svg").getroot()
    width = float(root.get("viewBox").split()[2])
    curves = [g for g in root.iter(f"{SVG}g") if "PlotCurveItem" in g.get("id", "")]
    paths = [path.get("d") for curve in curves for path in curve.iter(f"{SVG}path") if path.get("d")]
    assert len(paths) >= 9  # the std curves and the lower plots' (one SVG of its plot areas), each where drawn
    for d in paths:
        xs = [float(x) for x in re.findall(r"[ML](-?[\d.]+),", d)]
        assert xs and 0 <= min(xs) and max(xs) <= width, d[:80]
    metadata = root.find(f"{SVG}metadata[@id='{CONFIG_KEY}']")
    assert SimConfig.from_dict(json.loads(metadata.text)) == NET_CONFIG


def test_data_is_the_engines_and_never_imports_qt(tmp_path):
    code = ("import sys; from initsim.cli import main; "
            f"code = main(['export', *{NET!r}, '--out', sys.argv[1]]); "
            "assert 'PySide6' not in sys.modules, 'Qt imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run.csv")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = export_data(simulate(NET_CONFIG), tmp_path / "engine.csv")
    assert (tmp_path / "run.csv").read_text() == expected[0].read_text()
    assert (tmp_path / "run.config.json").read_text() == expected[1].read_text()


def test_an_unwritable_image_path_fails_in_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "a file").write_text("")
    done = run_cli(tmp_path, *NET, "--view", "stats", "--out", str(tmp_path / "a file" / "x.png"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot write" in done.stderr and "Not a directory" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]


@pytest.mark.parametrize("argv, needle", [
    (["export"], "needs --out"),
    (["export", "--out", "x.bmp"], "cannot export as .bmp"),
    (["export", "--view", "stats", "--out", "x.csv"], "--view is for images"),
    (["export", "--out", "x.svg"], "SVG holds one view's plots"),
    (["export", "--size", "big", "--out", "x.png"], "--size takes WIDTHxHEIGHT"),
    (["export", "--size", "20x20", "--out", "x.png"], "each side must be"),
    (["export", "--image-scale", "9", "--out", "x.png"], "--image-scale: got 9"),
    (["export", "--image-scale", "nan", "--out", "x.png"], "--image-scale: got nan"),
    (["export", "--view", "everything", "--out", "x.png"], "invalid choice"),
    (["export", "--tour", "clasic", "--out-dir", "d"], "did you mean 'classic'"),
    (["export", "--tour", "classic"], "needs --out-dir"),
    (["export", "--tour", "classic", "--out-dir", "d", "--layers", "3"], "--layers does not go with --tour"),
    (["export", "--tour", "classic", "--out", "x.png"], "--out does not go with --tour"),
    (["export", "--out-dir", "d"], "--out-dir is for the slides"),
])
def test_bad_input_is_one_line_and_status_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("initsim: error:") and err.count("\n") == 1 and needle in err
    assert list(tmp_path.iterdir()) == []


def test_a_broken_tour_file_names_its_line(capsys, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('title = "Mine"\n\n[[step]]\ntitle = "One"\ntext = "Words."\nview = "histogram"\n')
    assert main(["export", "--tour", str(path), "--out-dir", str(tmp_path / "slides")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6:" in err and "did you mean 'histograms'" in err
    assert not (tmp_path / "slides").exists()


def test_every_bad_tour_file_is_one_line_and_status_2(capsys, tmp_path):
    out_dir = tmp_path / "slides"
    for path in make_bad_files(tmp_path):
        if path.suffix != ".toml":
            continue
        assert main(["export", "--tour", str(path), "--out-dir", str(out_dir)]) == 2, path.name
        err = capsys.readouterr().err
        assert err.startswith(f"initsim: error: {path}") and err.count("\n") == 1, err[:300]
        assert len(err) <= len(str(path)) + 40 + MESSAGE_LIMIT, path.name
    assert not out_dir.exists()


def never(*args, **kwargs):
    raise AssertionError("rendered before the folder was checked")


@pytest.mark.parametrize("argv, target", [
    (["--view", "stats", "--out", "{blocked}/x.png"], "{blocked}/x.png"),
    (["--out", "{missing}/run.csv"], "{missing}/run.csv"),
    (["--tour", "classic", "--out-dir", "{blocked}/slides"], "{blocked}/slides"),
])
def test_a_place_that_takes_no_files_is_refused_before_anything_is_rendered(capsys, tmp_path, monkeypatch,
                                                                            argv, target):
    import initsim.app.io.offscreen
    import initsim.engine

    for module, name in ((initsim.app.io.offscreen, "export_view"), (initsim.app.io.offscreen, "export_tour"),
                         (initsim.engine, "simulate")):
        monkeypatch.setattr(module, name, never)
    (tmp_path / "a file").write_text("")
    places = {"blocked": tmp_path / "a file", "missing": tmp_path / "missing"}
    network = [] if "--tour" in argv else NET  # a tour's steps have their configs
    assert main(["export", *network, *(a.format(**places) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"initsim: error: cannot write {target.format(**places)}: ") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]


def test_slides_are_all_written_or_none(tmp_path):
    tour = tmp_path / "two.toml"
    tour.write_text('title = "Two"\n' + "".join(
        f'\n[[step]]\ntitle = "{title}"\ntext = "Words."\n[step.config]\nlayers = 3\nwidth = 8\nbatch = 8\n'
        for title in ("One", "Two")))
    blocker = tmp_path / "slides" / "02-two.png"
    blocker.mkdir(parents=True)  # the second slide cannot be renamed into place
    done = run_cli(tmp_path, "--tour", str(tour), "--out-dir", str(tmp_path / "slides"), "--size", "800x600")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "02-two.png" in done.stderr
    assert [p.name for p in (tmp_path / "slides").iterdir()] == ["02-two.png"]
