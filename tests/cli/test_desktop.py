"""The desktop entry installs for the current user, pointing at this initsim."""

import configparser

from initsim.cli import main


def test_install_desktop_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main(["install-desktop"]) == 0
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(tmp_path / "applications" / "initsim.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Icon"] == "initsim"
    assert desktop["Exec"].split()[0].startswith("/")  # an absolute command
    for size in (16, 48, 256):
        icon = tmp_path / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "initsim.png"
        assert icon.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "initsim.svg").exists()
    assert "installed" in capsys.readouterr().out


def test_install_desktop_into_an_unwritable_place(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["install-desktop", "--prefix", str(blocker)]) == 2
    assert capsys.readouterr().err.startswith("initsim: error: cannot install")
