"""What a user installs: a non-editable wheel carries the resources, and the engine needs no Qt."""

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, cwd: Path, env_path: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    if env_path:
        env["PYTHONPATH"] = env_path
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_non_editable_wheel_ships_the_resources(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "-q", "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("initsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {p.name for p in (ROOT / "resources" / "presets").glob("*.json")}
    assert shipped and {f"initsim/resources/presets/{n}" for n in shipped} <= set(names)
    assert {"initsim/resources/tours/classic.toml", "initsim/resources/initsim.desktop",
            "initsim/resources/icons/initsim.svg", "initsim/resources/icons/initsim-256.png"} <= set(names)
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                                "--target", str(target), str(wheel)], capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr
    done = run_python("""
        import initsim, initsim.resources
        from initsim.engine.presets import presets
        print(initsim.__file__)
        print(initsim.resources.__file__)
        print(len(presets()))
    """, cwd=tmp_path, env_path=str(target))
    assert done.returncode == 0, done.stderr
    package, resources, count = done.stdout.split()
    assert package.startswith(str(target)) and resources.startswith(str(target))
    assert int(count) == len(shipped)
    assert (target / "bin" / "initsim").exists()  # the console entry point


def test_engine_and_headless_cli_never_import_qt(tmp_path):
    done = run_python(f"""
        import sys, importlib, pkgutil
        sys.path.insert(0, {str(ROOT)!r})

        class BlockQt:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "shiboken6"):
                    raise ImportError(f"Qt is blocked: {{name}}")

        sys.meta_path.insert(0, BlockQt())
        import initsim.engine
        for module in pkgutil.walk_packages(initsim.engine.__path__, "initsim.engine."):
            importlib.import_module(module.name)
        from initsim.engine import SimConfig, simulate
        simulate(SimConfig(layers=2, width=8, batch=4))
        from initsim.cli import main
        assert main(["simulate", "--layers", "2", "--width", "8", "--batch", "4"]) == 0
        assert main(["schemes"]) == 0
        print("headless ok")
    """, cwd=tmp_path, env_path=":".join(p for p in sys.path if p))
    assert done.returncode == 0, done.stderr
    assert "headless ok" in done.stdout
