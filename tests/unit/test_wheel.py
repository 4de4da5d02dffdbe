"""A built wheel imports the same way as the editable install, from a fresh virtualenv."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_installs_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("cadenza-*.whl")

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    py = fresh / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    # Third-party dependencies come from the dev environment's site-packages (a plain
    # path entry: its .pth files, including the editable cadenza finder, are not run).
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    Path(purelib, "dev-deps.pth").write_text(deps + "\n")

    probe = r"""
import importlib, pathlib, cadenza
root = pathlib.Path(cadenza.__file__).parent
assert "fresh" in str(root), root
for name in ["cadenza.cli", "cadenza.localkafka", "cadenza.processors", "cadenza.topics",
             "cadenza.schemas"]:
    mod = importlib.import_module(name)
    assert str(pathlib.Path(mod.__file__)).startswith(str(root)), (name, mod.__file__)
assert (root / "py.typed").exists()
assert (root / "localkafka" / "pom.xml").exists()
assert list((root / "schemas").rglob("*.avsc")), "schemas missing from the wheel"
from cadenza.schemas import _compiled
assert _compiled.NATIVE is not None, _compiled._NATIVE_ERROR  # the C codec was built
assert str(pathlib.Path(_compiled.NATIVE.__file__)).startswith(str(root))
print("ok")
"""
    out = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    cli = subprocess.run(
        [fresh / "bin" / "cadenza", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert cli.returncode == 0, cli.stderr
    assert "kafka" in cli.stdout and "topics" in cli.stdout
