"""int8 static quantization: QDQ, per-channel, agreement with fp32 on held-out frames."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from rtseg.contract import ModelInfo
from rtseg.export.builder import build
from rtseg.export.exporter import export_model, read_metadata, run_onnx
from rtseg.export.frames import batch
from rtseg.export.quantize import frame_reader

from export_helpers import TinySeg, bn_calibrate


def _qdq_summary(path):
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    inits = {i.name: i for i in model.graph.initializer}
    per_channel = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
                   and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8
                   and n.input[1] in inits and len(inits[n.input[1]].dims) == 1 and inits[n.input[1]].dims[0] > 1]
    return ops, per_channel


def test_frame_reader_yields_preprocessed_frames_then_none(synthetic_frames):
    info = ModelInfo(input_size=(32, 48))
    reader = frame_reader(synthetic_frames[:2], info)
    batches = [reader.get_next(), reader.get_next(), reader.get_next()]
    assert [b["images"].shape for b in batches[:2]] == [(1, 3, 32, 48)] * 2 and batches[2] is None
    reader.rewind()
    assert np.array_equal(reader.get_next()["images"], batches[0]["images"])


def test_int8_tiny_model_is_qdq_per_channel(synthetic_frames, tmp_path):
    torch.manual_seed(0)
    module = TinySeg(5).eval()
    info = ModelInfo(name="tiny", classes=tuple("abcde"))
    calib = synthetic_frames[:3]
    heldout = __import__("rtseg.export.frames", fromlist=["x"]).synthetic_frames(2, 180, 240, seed=7)
    result = export_model(module, tmp_path / "q.onnx", info, frames=heldout, frames_from="held-out synthetic frames",
                          input_size=(64, 96), int8=True, calib_frames=calib, int8_float_convs=0)
    ops, per_channel = _qdq_summary(result.path)
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert len(per_channel) >= 3  # every conv weight quantized per output channel
    assert read_metadata(result.path).extra["precision"] == "int8"
    assert result.int8.heldout_frames == 2 and result.int8.calib_frames == 3
    assert "on 2 held-out synthetic frames" in str(result.int8) and "calibrated on 3 frames" in str(result.int8)
    assert result.int8.label_agreement >= 0.95
    assert result.int8.fp32_ms > 0 and result.int8.int8_ms > 0


def test_int8_lraspp_on_road_clip(road_frames, tmp_path):
    """LR-ASPP MobileNetV3 (random weights, BatchNorm statistics from road frames), calibrated on
    16 road frames, compared with fp32 on 4 other frames of the clip.

    Measured agreement: ~67 % (random features give small logit margins that int8 noise flips;
    the issue's 98 % goal needs trained weights and is measured by the benchmark, not here).
    The threshold guards against a broken quantization (chance level is ~10-25 %).
    """
    torch.manual_seed(0)
    built = build("lraspp_mobilenet_v3_large", pretrained=False)
    size = (96, 128)
    calib, heldout = road_frames[:16], road_frames[16:20]
    bn_calibrate(built.module, batch(calib[:4], built.info, size))
    result = export_model(built.module, tmp_path / "l8.onnx", built.info, frames=heldout, input_size=size,
                          int8=True, calib_frames=calib)
    ops, per_channel = _qdq_summary(result.path)
    assert len(per_channel) >= 20
    x = batch(heldout, read_metadata(result.path))
    int8_labels = run_onnx(result.path, x, want_logits=False)[0]
    assert len(np.unique(int8_labels)) >= 3  # not collapsed to one class
    assert result.int8.label_agreement >= 0.5, str(result.int8)


@pytest.mark.parametrize("float_convs", [0, 2])
def test_first_convolutions_can_stay_float(synthetic_frames, tmp_path, float_convs):
    torch.manual_seed(0)
    result = export_model(TinySeg(5).eval(), tmp_path / "q.onnx", ModelInfo(name="tiny", classes=tuple("abcde")),
                          frames=synthetic_frames[:2], input_size=(64, 96), int8=True,
                          calib_frames=synthetic_frames[:3], int8_float_convs=float_convs, calib_method="entropy")
    model = onnx.load(str(result.path))
    producers = {out: n.op_type for n in model.graph.node for out in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    weight_is_dequantized = [producers.get(c.input[1]) == "DequantizeLinear" for c in convs]
    assert weight_is_dequantized[:float_convs] == [False] * float_convs
    assert all(weight_is_dequantized[float_convs:])
