"""``rtseg export camvid-road --int8 / --fp16``: the built-in model, rebuilt from its ONNX file.

Small input sizes keep these fast; the network is the shipped one at any size.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from rtseg.cli import main
from rtseg.export import cli as export_cli
from rtseg.export.exporter import export_onnx, read_metadata

pytestmark = pytest.mark.timeout(120)
SMALL = ["--input-size", "96", "128", "--parity-frames", "2"]


def _outputs(path) -> dict[str, str]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {o.name: o.type for o in session.get_outputs()}


def test_int8_of_the_builtin_model_calibrates_on_the_demo_clip(tmp_path, capsys) -> None:
    out = tmp_path / "road.int8.onnx"
    assert main(["export", "camvid-road", "--int8", "--calib-frames", "2", *SMALL, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held-out frames of --calib" in text and "road_solidWhiteRight.mp4" in text
    assert "labels agree with fp32" in text and "not meaningful" not in text
    info = read_metadata(out)
    assert (info.name, info.extra["precision"], info.input_size) == ("camvid-road", "int8", (96, 128))
    assert info.source.startswith("rtseg train on CamVid") and info.license
    assert _outputs(out) == {"labels": "tensor(uint8)", "confidence": "tensor(uint8)"}


def test_fp16_of_the_builtin_model_says_it_is_slower_on_a_cpu(tmp_path, capsys, monkeypatch) -> None:
    import rtseg.realtime.session as session

    monkeypatch.setattr(session, "provider_unavailable_reason", lambda provider=session.CUDA: "no CUDA here")
    times = iter([12.0, 30.0])  # fp32 is timed first, then fp16
    monkeypatch.setattr("rtseg.export.quantize.time_session", lambda *a, **k: next(times))
    out = tmp_path / "road.fp16.onnx"
    assert main(["export", "camvid-road", "--fp16", *SMALL, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parity:" in text and "frames from" in text and "road_solidWhiteRight.mp4" in text
    note = [line for line in text.splitlines() if line.startswith("note: fp16")]
    assert len(note) == 1 and "slower than 12.0 ms in fp32" in note[0] and "30.0 ms" in note[0]
    assert read_metadata(out).extra["precision"] == "fp16"
    x = np.zeros((1, 3, 96, 128), np.float32)
    labels, confidence = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    assert labels.shape == confidence.shape == (1, 96, 128) and confidence.min() >= 255 // 11


def test_fp16_note_is_silent_where_cuda_works(monkeypatch) -> None:
    import rtseg.realtime.session as session

    monkeypatch.setattr(session, "provider_unavailable_reason", lambda provider=session.CUDA: None)
    assert export_cli.fp16_cpu_note(None, None, (96, 128)) is None


def test_confidence_output_is_the_rounded_top_probability(tiny, tmp_path) -> None:
    """The contract's second output: uint8 round(255 * max softmax), beside unchanged labels;
    ``confidence=False`` (``--no-confidence``) leaves the single-output graph."""
    path = export_onnx(tiny, tmp_path / "c.onnx", (48, 64), num_classes=5)
    plain = export_onnx(tiny, tmp_path / "p.onnx", (48, 64), num_classes=5, confidence=False)
    assert _outputs(path) == {"labels": "tensor(uint8)", "confidence": "tensor(uint8)"}
    assert _outputs(plain) == {"labels": "tensor(uint8)"}
    x = np.random.default_rng(0).standard_normal((2, 3, 48, 64)).astype(np.float32)
    labels, confidence = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    with torch.no_grad():
        logits = tiny(torch.from_numpy(x))
    expected = np.round(255 * torch.softmax(logits, 1).amax(1).numpy())
    assert np.abs(confidence.astype(int) - expected).max() <= 1 and len(np.unique(confidence)) > 10
    assert (labels == logits.argmax(1).numpy()).mean() > 0.999
