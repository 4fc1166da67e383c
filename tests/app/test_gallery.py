"""`initsim export --gallery DIR`: every preset's main views as non-blank PNGs and one page of them
whose warnings are the engine's diagnosis of each preset; bad input is one line and writes nothing."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from PySide6.QtGui import QImage

from initsim.app.io.imaging import VIEW_KEY
from initsim.app.io.offscreen import GALLERY_VIEWS
from initsim.cli import main
from initsim.cli.export import GALLERY_PAGE
from initsim.engine import simulate
from initsim.engine.diagnosis import diagnose
from initsim.engine.presets import presets

from test_export import colored_fraction, config_in_png

SIZE = (800, 500)


class GalleryPage(HTMLParser):
    """What the page shows per preset (its section's id): the images and the messages of its
    warnings and of its information."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: dict[str, list[str]] = {}
        self.warnings: dict[str, list[str]] = {}
        self.information: dict[str, list[str]] = {}
        self._section = ""
        self._item = ""  # the class of the <li> inside, "" outside any
        self._message: list[str] | None = None  # the text of the message being read
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes["id"]
            for found in (self.images, self.warnings, self.information):
                found[self._section] = []
        elif tag == "img":
            self.images[self._section].append(attributes["src"])
        elif tag == "li":
            self._item = attributes.get("class", "")
        elif tag == "span" and attributes.get("class") == "message":
            self._message = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._message is not None:
            found = {"warning": self.warnings, "information": self.information}[self._item]
            found[self._section].append("".join(self._message))
            self._message = None
        elif tag == "li":
            self._item = ""

    def handle_data(self, data: str) -> None:
        if self._message is not None:
            self._message.append(data)


def test_the_gallery_draws_every_preset_and_shows_the_engines_diagnosis(capsys, tmp_path):
    folder = tmp_path / "gallery"
    assert main(["export", "--gallery", str(folder), "--size", "x".join(map(str, SIZE))]) == 0
    printed = capsys.readouterr()
    shipped = presets()
    images = len(shipped) * len(GALLERY_VIEWS)
    progress = printed.err.splitlines()
    assert len(progress) == images and progress[-1].startswith(f"initsim: gallery image {images} of {images}: ")
    assert printed.out == f"wrote {images} images of {len(shipped)} presets and {GALLERY_PAGE} to {folder}\n"
    page = GalleryPage((folder / GALLERY_PAGE).read_text(encoding="utf-8"))
    assert list(page.images) == list(shipped)  # the story's order
    assert {entry.name for entry in folder.iterdir()} == {GALLERY_PAGE, *(src for srcs in page.images.values()
                                                                          for src in srcs)}
    for name, preset in shipped.items():
        assert page.images[name] == [f"{name}-{view}.png" for view in GALLERY_VIEWS]
        for view, src in zip(GALLERY_VIEWS, page.images[name]):
            image = QImage(str(folder / src))
            assert (image.width(), image.height()) == SIZE and image.text(VIEW_KEY) == view
            assert config_in_png(folder / src) == preset.config
            assert colored_fraction(image) > 0.002, src  # its curves or colour map, not empty axes
        result = simulate(preset.config)
        found = diagnose(result.config, result.forward, result.backward)
        assert page.warnings[name] == [f.message for f in found if f.is_warning], name
        assert page.information[name] == [f.message for f in found if not f.is_warning], name
    # The lessons the presets exist for are on the page: not every preset is all clear, nor none.
    assert page.warnings["zeros"] and page.warnings["too_small"] and not page.warnings["he_relu"]


@pytest.mark.parametrize("argv, needle", [
    (["--view", "stats"], "--view does not go with --gallery"),
    (["--out", "x.png"], "--out does not go with --gallery"),
    (["--tour", "classic"], "--tour does not go with --gallery"),
    (["--out-dir", "slides"], "--out-dir does not go with --gallery"),
    (["--steps", "10"], "--steps does not go with --gallery"),
    (["--layers", "3"], "--layers does not go with --gallery: each preset has its config"),
    (["--size", "big"], "--size takes WIDTHxHEIGHT"),
])
def test_gallery_flags_that_do_not_go_are_one_line(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--gallery", "gallery", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("initsim: error: ") and err.count("\n") == 1 and needle in err
    assert list(tmp_path.iterdir()) == []


def test_a_gallery_folder_that_is_a_file_is_refused_before_anything_is_rendered(capsys, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("rendered before the folder was checked")

    monkeypatch.setattr("initsim.app.io.offscreen.render_gallery", never)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    assert main(["export", "--gallery", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err == f"initsim: error: cannot write {blocker}: Not a directory\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["a file"]


def test_steps_are_for_the_training_view_only(capsys, tmp_path):
    assert main(["export", "--view", "stats", "--steps", "10", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err == "initsim: error: --steps is for --view training: the steps of the run it draws\n"
    assert list(tmp_path.iterdir()) == []
