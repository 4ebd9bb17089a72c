"""The registry ships inside the package: a wheel holds its YAML files, and an install run from
another folder finds every entry there.

Regression: the entries lived in the repository's configs/, which no wheel or ``pip install .``
contained, so registry names failed outside the checkout; and ./configs/models in the working
directory replaced built-in entries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REGISTRY = REPO / "rtseg" / "configs" / "models"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, list[str]]:
    """(the unpacked wheel, i.e. an install's site folder; the wheel's file names), built from a
    copy of this checkout so that no build/ or egg-info lands in the working tree."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO / "rtseg", src / "rtseg", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [REPO / "pyproject.toml", REPO / "README.md", *REPO.glob("LICENSE*")]:
        shutil.copy2(path, src / path.name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(root / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = next((root / "dist").glob("rtseg-*.whl"))
    with zipfile.ZipFile(built) as archive:
        archive.extractall(root / "site")
        return root / "site", archive.namelist()


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RTSEG_MODELS_DIR", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), RTSEG_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_wheel_holds_every_registry_yaml(wheel):
    _, names = wheel
    shipped = sorted(n for n in names if n.startswith("rtseg/configs/models/"))
    assert shipped == sorted(f"rtseg/configs/models/{p.name}" for p in REGISTRY.glob("*.yaml"))


def test_installed_registry_loads_from_the_package_not_the_working_directory(wheel, tmp_path):
    site, _ = wheel
    decoy = tmp_path / "configs" / "models"
    decoy.mkdir(parents=True)
    (decoy / "lraspp-mbv3-voc.yaml").write_text("name: lraspp-mbv3-voc\narch: rtseg:effl0_lraspp\nclasses: camvid\n")
    code = ("import json, rtseg; from rtseg.export.registry import load_registry; specs = load_registry(); "
            "print(json.dumps({'rtseg': rtseg.__file__, 'arch': specs['lraspp-mbv3-voc'].arch, "
            "'paths': {name: str(spec.path) for name, spec in specs.items()}}))")
    proc = _run_installed(site, tmp_path, "-c", code)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert Path(found["rtseg"]).is_relative_to(site)
    assert set(found["paths"]) == {p.stem for p in REGISTRY.glob("*.yaml")}
    assert all(Path(path).is_relative_to(site) for path in found["paths"].values())
    assert found["arch"] == "torchvision:lraspp_mobilenet_v3_large"


def test_installed_cli_lists_entries_and_explains_recipes(wheel, tmp_path):
    site, _ = wheel
    listing = _run_installed(site, tmp_path, "-m", "rtseg", "models")
    assert listing.returncode == 0, listing.stderr
    assert all(p.stem in listing.stdout for p in REGISTRY.glob("*.yaml"))
    recipe = _run_installed(site, tmp_path, "-m", "rtseg", "export", "camvid-effl0-unet")
    assert recipe.returncode == 2
    assert recipe.stderr.strip().splitlines() == [recipe.stderr.strip()]
    assert "training recipe" in recipe.stderr and "--weights" in recipe.stderr
