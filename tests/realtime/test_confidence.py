"""The contract's optional ``confidence`` output, live: engine, --min-confidence, stats, HUD, masks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.assets import builtin_model_files
from rtseg.cli import main as cli_main
from rtseg.errors import OptionError
from rtseg.realtime.app import process
from rtseg.realtime.confidence import (
    UNKNOWN_LABEL,
    ConfidenceGate,
    gate_engine,
    gate_labels,
    split_unknown,
    threshold_uint8,
)
from rtseg.realtime.engine import OnnxEngine, load_model
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import RenderOptions
from rtseg.realtime.render import Renderer, hud_lines
from rtseg.realtime.stats import PipelineStats

from factories import make_channel_argmax_model

pytestmark = pytest.mark.timeout(60)
BRIGHT_RED, DIM_RED, BRIGHT_GREEN = (0, 0, 220), (0, 0, 90), (0, 200, 0)  # BGR


def make_confidence_model(path: Path) -> Path:
    """The channel model (class = brightest RGB channel) plus a ``confidence`` output: the
    brightest channel's value, so a dim frame is an unsure one."""
    import onnx
    from onnx import TensorProto, helper

    make_channel_argmax_model(path, output="labels")
    model = onnx.load(str(path))
    model.graph.node.extend([
        helper.make_node("ReduceMax", ["images"], ["top"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["top", "scale"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["rounded"]),
        helper.make_node("Cast", ["rounded"], ["confidence"], to=TensorProto.UINT8),
    ])
    model.graph.initializer.append(helper.make_tensor("scale", TensorProto.FLOAT, [], [255.0]))
    model.graph.output.append(helper.make_tensor_value_info("confidence", TensorProto.UINT8, ["N", "H", "W"]))
    onnx.save(model, str(path))
    return path


@pytest.fixture
def confidence_model(tmp_path: Path) -> Path:
    return make_confidence_model(tmp_path / "sure.onnx")


def _image(bgr, width=64, height=48) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = bgr
    return image


def test_threshold_gate_and_unknown_counts() -> None:
    assert [threshold_uint8(p) for p in (0.0, 0.3, 0.5, 1.0)] == [0, 77, 128, 255]  # c / 255 >= P is kept
    labels = np.array([[0, 1, 2, 1]], np.uint8)
    confidence = np.array([[127, 128, 40, 255]], np.uint8)
    gated = gate_labels(labels, confidence, threshold_uint8(0.5))
    assert gated.tolist() == [[UNKNOWN_LABEL, 1, UNKNOWN_LABEL, 1]] and labels.tolist() == [[0, 1, 2, 1]]
    counts, unknown = split_unknown(gated, 3)
    assert counts.tolist() == [0, 2, 0] and unknown == 2
    counts, unknown = split_unknown(np.full((2, 2), 255, np.uint8), 256)  # 256 classes: 255 is a class
    assert unknown == 0 and counts[255] == 4


def test_engine_reads_confidence_and_one_output_models_still_work(confidence_model, channel_model) -> None:
    engine = OnnxEngine(confidence_model, device="cpu")
    frame = Frame(_image(DIM_RED, 30, 20), 0)
    engine.segment(frame)
    assert engine.confidence_name == "confidence"
    assert frame.labels.shape == frame.confidence.shape == (20, 30) and frame.confidence.dtype == np.uint8
    assert (frame.labels == 0).all() and (frame.confidence == 90).all()
    old = OnnxEngine(channel_model, device="cpu")
    frame = Frame(_image(DIM_RED), 0)
    old.segment(frame)
    assert old.confidence_name is None and frame.confidence is None and (frame.labels == 0).all()


def test_the_shipped_model_outputs_confidence() -> None:
    engine = load_model("camvid-road", device="cpu")
    frame = Frame(_image((90, 120, 110)), 0)
    engine.segment(frame)
    assert engine.confidence_name == "confidence" and frame.confidence.shape == (48, 64)
    assert 255 // 11 <= frame.confidence.min() and builtin_model_files()["camvid-road"].stat().st_size < 10 * 2**20


def test_default_gates_only_models_with_confidence(confidence_model, channel_model) -> None:
    sure = OnnxEngine(confidence_model, device="cpu")
    plain = OnnxEngine(channel_model, device="cpu")
    assert isinstance(gate_engine(sure, None), ConfidenceGate) and gate_engine(sure, None).threshold == 128
    assert gate_engine(sure, 0.0) is sure and gate_engine(plain, None) is plain
    with pytest.raises(OptionError, match="needs a model with a 'confidence' output"):
        gate_engine(plain, 0.3)
    with pytest.raises(OptionError, match="min_confidence must be between 0 and 1"):
        RenderOptions(min_confidence=1.5)


def test_renderer_leaves_unknown_pixels_unpainted(confidence_model) -> None:
    info = OnnxEngine(confidence_model, device="cpu").info
    image = _image((10, 20, 30), 4, 2)
    labels = np.array([[0, UNKNOWN_LABEL, 1, UNKNOWN_LABEL]] * 2, np.uint8)
    overlay = Renderer(info, RenderOptions(view="overlay", alpha=0.5)).render(Frame(image, 0, labels=labels))
    mask = Renderer(info, RenderOptions(view="mask")).render(Frame(image, 0, labels=labels))
    assert (overlay[:, 1] == image[:, 1]).all() and (overlay[:, 0] != image[:, 0]).any()
    assert (mask[:, 1] == 0).all() and (mask[:, 0] != 0).any()


def test_min_confidence_end_to_end_stats_masks_and_hud(confidence_model, tmp_path) -> None:
    """Dim frames are unsure: below 0.5 every pixel is unknown (unpainted, 255 in the masks,
    'unknown' in the stats); the JSONL and the HUD carry the mean confidence."""
    folder = tmp_path / "frames"
    folder.mkdir()
    colours = [BRIGHT_RED, DIM_RED, BRIGHT_GREEN]
    for i, colour in enumerate(colours):
        cv2.imwrite(str(folder / f"f{i}.png"), _image(colour))
    result = process(str(folder), tmp_path / "out", model=confidence_model, min_confidence=0.5,
                     save_masks=tmp_path / "masks", stats=tmp_path / "s.jsonl", progress=False)
    assert result.stats.written == 3
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["confidence"] for r in records] == [round(220 / 255, 4), round(90 / 255, 4), round(200 / 255, 4)]
    assert [r["class_share"]["unknown"] for r in records] == [0.0, 1.0, 0.0]
    assert records[1]["class_share"]["red"] == 0.0 and records[0]["class_share"]["red"] == 1.0
    masks = [cv2.imread(str(tmp_path / "masks" / f"f{i}.png"), cv2.IMREAD_UNCHANGED) for i in range(3)]
    assert (masks[0] == 0).all() and (masks[1] == UNKNOWN_LABEL).all() and (masks[2] == 1).all()
    painted = cv2.imread(str(tmp_path / "out" / "f1.png"))
    assert np.abs(painted.astype(int) - DIM_RED).max() <= 1  # unknown: the frame as it was
    assert result.stats.last_confidence == pytest.approx(200 / 255)
    assert "mean confidence 0.78" in hud_lines(result.stats, "sure", "CPUExecutionProvider")
    assert "mean confidence" not in " ".join(hud_lines(PipelineStats(), "plain", "CPUExecutionProvider"))


def test_keyframes_carry_confidence_to_propagated_frames(confidence_model) -> None:
    from rtseg.realtime.keyframes import KeyframeEngine

    engine = KeyframeEngine(OnnxEngine(confidence_model, device="cpu"), every=3)
    frames = [Frame(_image(DIM_RED, 96, 64), i) for i in range(3)]
    for frame in frames:
        engine.segment(frame)
    assert [f.inferred for f in frames] == [True, False, False]
    assert all(f.confidence is not None and (f.confidence == 90).all() for f in frames)


@pytest.mark.parametrize("argv, message", [
    (["--min-confidence", "1.5"], "must be between 0.0 and 1.0"),
    (["--model", "otsu", "--min-confidence", "0.4"], "needs a model with a 'confidence' output"),
])
def test_cli_refuses_bad_min_confidence_in_one_line(tmp_path, capsys, argv, message) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _image(BRIGHT_RED))
    try:
        code = cli_main([str(tmp_path / "a.png"), "--stats", str(tmp_path / "s.jsonl"), "--quiet", *argv])
    except SystemExit as exc:  # argparse: usage, then the one error line
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1] and sum(message in line for line in err) == 1
