"""Rebuilding PyTorch networks from rtseg ONNX files (the shipped camvid-road has no .pth)."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from rtseg.assets import builtin_model_files, demo_clip
from rtseg.contract import CAMVID_CLASSES, ModelInfo
from rtseg.errors import ModelError
from rtseg.export.exporter import export_onnx, run_onnx, write_metadata
from rtseg.export.frames import batch, read_frames
from rtseg.export.from_onnx import (
    constant_tensors,
    initializer_mapping,
    rebuild_from_onnx,
    unfold_batchnorm,
)
from rtseg.models import build_model

pytestmark = pytest.mark.timeout(120)
SHIPPED = builtin_model_files()["camvid-road"]
INFO = ModelInfo(name="road", classes=CAMVID_CLASSES, input_size=(360, 480))


@pytest.fixture(scope="module")
def demo_batch() -> np.ndarray:
    """Two frames of the built-in demo clip, pre-processed for the 360x480 model."""
    return batch(read_frames(demo_clip(), limit=2, stride=100), INFO, (360, 480))


@pytest.fixture(scope="module")
def shipped() -> torch.nn.Module:
    return rebuild_from_onnx(SHIPPED)[0]


def _random_bn(module: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics, so folding really changes the convolution weights."""
    gen = torch.Generator().manual_seed(0)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            for tensor, low, high in ((bn.weight.data, 0.5, 1.5), (bn.bias.data, -0.2, 0.2),
                                      (bn.running_mean, -0.3, 0.3), (bn.running_var, 0.5, 2.0)):
                tensor.copy_(torch.empty_like(tensor).uniform_(low, high, generator=gen))
    return module.eval()


def _conv_tensors(path) -> list[np.ndarray]:
    model = onnx.load(str(path))
    arrays = {name: numpy_helper.to_array(t) for name, t in constant_tensors(model).items()}
    return [arrays[name] for node in model.graph.node if node.op_type == "Conv" for name in node.input[1:] if name]


@pytest.mark.parametrize("arch, trained_bn", [("effl0_unet_bilinear", True), ("effl0_lraspp", False),
                                              ("effl1_unet_bilinear", True), ("effl2_lraspp", True),
                                              ("effl0_unet_bilinear_s2", True)])
def test_export_then_rebuild_is_the_same_network(arch, trained_bn, tmp_path) -> None:
    """The mapping is exact: the rebuilt network gives the ONNX file's logits, and exporting it
    again folds back to the very same convolution weights, bit for bit. Regression: with
    untrained BatchNorms the exporter stores the equal all-zero biases once, behind Identity nodes."""
    torch.manual_seed(0)
    original = build_model(arch, num_classes=5).eval()
    original = _random_bn(original) if trained_bn else original
    path = export_onnx(original, tmp_path / "a.onnx", (64, 96), num_classes=5)
    write_metadata(path, ModelInfo(name="t", classes=tuple("abcde"), extra={"arch": f"rtseg:{arch}"}))
    rebuilt, info = rebuild_from_onnx(path)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype(np.float32)
    labels, logits = run_onnx(path, x)
    with torch.no_grad():
        ours = rebuilt(torch.from_numpy(x)).numpy()
    assert info.classes == tuple("abcde") and np.abs(ours - logits).max() < 1e-4
    assert (ours.argmax(1) == labels).mean() > 0.999
    again = export_onnx(rebuilt, tmp_path / "b.onnx", (64, 96), num_classes=5)
    assert all(np.array_equal(a, b) for a, b in zip(_conv_tensors(path), _conv_tensors(again), strict=True))


def test_mapping_names_every_weight_of_the_shipped_model(shipped) -> None:
    """state_dict key -> initializer name: every conv weight and every folded bias, once."""
    model = onnx.load(str(SHIPPED))
    mapping = initializer_mapping(shipped, model)
    names = {t.name for t in model.graph.initializer}
    assert set(mapping.values()) == names and len(mapping) == len(names) == 104
    assert mapping["decoder.classifier.weight"] == "module.decoder.classifier.weight"
    assert mapping["encoder._conv_stem.weight"] in names and "encoder._bn0.bias" in mapping
    convs = [k for k, v in shipped.state_dict().items() if v.ndim == 4]
    assert all(f"{k}" in mapping for k in convs)


def test_rebuilt_shipped_model_reproduces_its_labels(shipped, demo_batch) -> None:
    labels, _ = run_onnx(SHIPPED, demo_batch, want_logits=False)
    with torch.no_grad():
        ours = shipped(torch.from_numpy(demo_batch)).argmax(1).numpy()
    assert len(np.unique(labels)) >= 5, "the check needs frames with several classes"
    assert (ours == labels).mean() > 0.9999


def test_unfolded_batchnorm_keeps_eval_and_makes_train_mode_agree() -> None:
    """Fine-tuning runs BatchNorm in train mode (batch statistics): with an identity BatchNorm that
    would scramble the network; after unfolding, train mode gives about the eval labels."""
    module = rebuild_from_onnx(SHIPPED)[0]
    x = torch.from_numpy(batch(read_frames(demo_clip(), limit=3, stride=70), INFO, (96, 128)))
    with torch.no_grad():
        before = module(x)
        identity_train = copy.deepcopy(module).train()(x).argmax(1)
        unfold_batchnorm(module, [x[i:i + 1] for i in range(len(x))])
        after = module.eval()(x)
        unfolded_train = module.train()(x).argmax(1)
    assert torch.allclose(before, after, atol=1e-3)
    reference = before.argmax(1)
    assert (unfolded_train == reference).float().mean() > 0.9
    assert (identity_train == reference).float().mean() < (unfolded_train == reference).float().mean()


@pytest.mark.parametrize("meta, message", [
    ({"arch": "rtseg:mbv3_lraspp"}, "cannot rebuild"),
    ({}, "arch '\\(none\\)'"),
    ({"arch": "rtseg:effl0_unet_bilinear", "precision": "int8"}, "int8"),
])
def test_files_that_cannot_be_rebuilt_say_why(tmp_path, meta, message) -> None:
    model = onnx.load(str(SHIPPED))
    del model.metadata_props[:]
    for key, value in {"classes": '["a", "b"]', **meta}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelError, match=message):
        rebuild_from_onnx(tmp_path / "m.onnx")


def test_a_graph_of_another_network_is_refused(tmp_path) -> None:
    """The metadata says effl0_lraspp, the graph is the U-Net: the Conv check catches it."""
    model = onnx.load(str(SHIPPED))
    for prop in model.metadata_props:
        if prop.key == "arch":
            prop.value = "rtseg:effl0_lraspp"
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelError, match="52 Conv nodes, the network 46 convolutions"):
        rebuild_from_onnx(tmp_path / "m.onnx")
