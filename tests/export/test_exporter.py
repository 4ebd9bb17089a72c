"""export_model and its steps on tiny modules (fast; no shared data needed)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from rtseg.contract import CAMVID_CLASSES, ModelInfo
from rtseg.export.exporter import (
    ExportError,
    check_onnx,
    export_model,
    export_onnx,
    parity,
    read_metadata,
    run_onnx,
    run_torch,
)
from rtseg.export.frames import batch

from export_helpers import TinySeg

INFO = ModelInfo(name="tiny", classes=("a", "b", "c", "d", "e"), source="unit test", license="MIT")


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_labels_export_metadata_round_trip(tiny, frames, tmp_path):
    result = export_model(tiny, tmp_path / "m.onnx", INFO, frames=frames, input_size=(64, 96))
    session = _session(result.path)
    meta = session.get_modelmeta().custom_metadata_map
    info, warnings = ModelInfo.from_metadata(meta)
    assert warnings == []
    assert info == result.info
    assert (info.name, info.classes, info.input_size, info.output) == ("tiny", INFO.classes, (64, 96), "labels")
    assert (info.source, info.license) == ("unit test", "MIT")
    assert (info.extra["precision"], info.extra["opset"]) == ("fp32", "17")
    out = session.get_outputs()[0]
    assert (session.get_inputs()[0].name, session.get_inputs()[0].type) == ("images", "tensor(float)")
    assert (out.name, out.type) == ("labels", "tensor(uint8)")
    model = onnx.load(str(result.path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    # parity is real: labels from the file equal PyTorch's argmax on the same frames
    x = batch(frames, info)
    labels, logits = run_onnx(result.path, x)
    ref = run_torch(tiny, x)
    assert len(np.unique(ref.argmax(1))) >= 2, "test model predicts one class: parity would be trivial"
    assert (labels == ref.argmax(1)).mean() >= 0.999
    assert np.abs(logits - ref).max() < 1e-4
    assert result.parity.label_agreement >= 0.999 and result.parity.max_abs_logit_diff < 1e-4


def test_logits_output_and_dynamic_shapes(tiny, tmp_path):
    path = export_onnx(tiny, tmp_path / "l.onnx", (64, 96), argmax=False, dynamic_hw=True)
    session = _session(path)
    for shape in [(1, 3, 64, 96), (3, 3, 40, 72), (2, 3, 128, 160)]:
        out = session.run(None, {"images": np.random.rand(*shape).astype(np.float32)})[0]
        assert out.shape == (shape[0], 5, *shape[2:]) and out.dtype == np.float32


def test_fixed_hw_keeps_dynamic_batch(tiny, tmp_path):
    path = export_onnx(tiny, tmp_path / "f.onnx", (64, 96), argmax=True)
    session = _session(path)
    dims = session.get_inputs()[0].shape
    assert isinstance(dims[0], str) and dims[1:] == [3, 64, 96]
    assert session.run(None, {"images": np.zeros((3, 3, 64, 96), np.float32)})[0].shape == (3, 64, 96)


def test_many_classes_use_int64_labels(tmp_path):
    torch.manual_seed(0)
    module = TinySeg(300).eval()
    path = export_onnx(module, tmp_path / "big.onnx", (32, 32), argmax=True)
    assert _session(path).get_outputs()[0].type == "tensor(int64)"


def test_fp16_halves_weights_keeps_float32_io(tiny, frames, tmp_path):
    result = export_model(tiny, tmp_path / "h.onnx", INFO, frames=frames, input_size=(64, 96), fp16=True)
    model = onnx.load(str(result.path))
    conv_weights = [i for i in model.graph.initializer if len(i.dims) == 4]
    assert conv_weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in conv_weights)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert read_metadata(result.path).extra["precision"] == "fp16"
    assert result.parity.label_agreement >= 0.99
    assert 0 < result.parity.max_abs_logit_diff < 0.1  # half precision really is in the graph


class _ExportsSomethingElse(TinySeg):
    """Traces differently from how it runs eagerly: parity must catch it."""

    def forward(self, x):
        logits = super().forward(x)
        return logits.flip(1) if torch.onnx.is_in_onnx_export() else logits


def test_parity_failure_fails_export_and_writes_nothing(frames, tmp_path):
    torch.manual_seed(0)
    target = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="parity failed"):
        export_model(_ExportsSomethingElse(5).eval(), target, INFO, frames=frames, input_size=(64, 96))
    assert not target.exists()


def test_parity_reports_disagreement(tiny, frames, tmp_path):
    path = export_onnx(tiny, tmp_path / "m.onnx", (64, 96))
    torch.manual_seed(1)
    report = parity(TinySeg(5).eval(), path, frames, info=INFO, size=(64, 96))
    assert report.label_agreement < 0.9 and report.max_abs_logit_diff > 1e-3


def test_parity_on_one_class_everywhere_is_reported_not_meaningful(tiny, frames, tmp_path):
    """Regression: a model predicting one class on every pixel (random weights) reported a silent
    "100.000 % labels agree", which any constant output would also get."""
    with torch.no_grad():
        tiny.head.bias.copy_(torch.tensor([50.0, 0, 0, 0, 0]))
    result = export_model(tiny, tmp_path / "c.onnx", INFO, frames=frames, frames_from="frames from road/",
                          input_size=(64, 96))
    assert not result.parity.meaningful and result.parity.reference_classes == 1
    text = str(result.parity)
    assert text.startswith("label parity not meaningful: pytorch predicts one class on every pixel of "
                           f"{len(frames)} frames from road/")
    assert "100.000 % labels agree" not in text


def test_parity_report_names_its_frames(tiny, frames, tmp_path):
    """Regression: with no frames, parity fell back to synthetic frames and only a log line said so."""
    given = export_model(tiny, tmp_path / "a.onnx", INFO, frames=frames, frames_from="frames from road/",
                         input_size=(64, 96))
    assert given.parity.meaningful and f"on {len(frames)} frames from road/ (" in str(given.parity)
    synthetic = export_model(tiny, tmp_path / "b.onnx", INFO, input_size=(64, 96))
    assert "on 4 synthetic frames (no real frames given)" in str(synthetic.parity)


@pytest.mark.parametrize("kwargs, match", [
    (dict(opset=16), "opset 16 is too old"),
    (dict(fp16=True, int8=True), "exclude each other"),
    (dict(int8=True), "calibration frames"),
    (dict(input_size=(64, 96), info=ModelInfo(classes=CAMVID_CLASSES)), "5 output classes but the info names 11"),
])
def test_export_model_rejects_bad_requests(tiny, frames, tmp_path, kwargs, match):
    kwargs = {"info": INFO, "input_size": (64, 96), **kwargs}
    with pytest.raises(ExportError, match=match):
        export_model(tiny, tmp_path / "x.onnx", frames=frames, **kwargs)


def test_non_segmentation_output_is_rejected(tmp_path, frames):
    classifier = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(ExportError, match="not logits"):
        export_model(classifier.eval(), tmp_path / "c.onnx", INFO, frames=frames, input_size=(32, 32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_check_onnx_rejects_wrong_input_name(tmp_path):
    module = torch.nn.Conv2d(3, 2, 1)
    path = tmp_path / "w.onnx"
    torch.onnx.export(module, (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"])
    with pytest.raises(ExportError, match="named 'images'"):
        check_onnx(path, (8, 8))


def test_simplify_keeps_behaviour_and_metadata(tiny, frames, tmp_path):
    pytest.importorskip("onnxslim")
    result = export_model(tiny, tmp_path / "s.onnx", INFO, frames=frames, input_size=(64, 96), simplify_graph=True)
    assert result.simplified
    assert json.loads(_session(result.path).get_modelmeta().custom_metadata_map["classes"]) == list(INFO.classes)
    assert result.parity.label_agreement >= 0.999
