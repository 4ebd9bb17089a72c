import json
import logging
from pathlib import Path

import numpy as np
import pytest

from rtseg.errors import ModelError
from rtseg.realtime.engine import OtsuEngine, load_model
from rtseg.realtime.frame import Frame

from factories import BLUE, GREEN, RED, color_frame, make_channel_argmax_model


def _three_stripes(width: int = 60, height: int = 20) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :20] = RED
    image[:, 20:40] = GREEN
    image[:, 40:] = BLUE
    return image


@pytest.mark.parametrize("output", ["logits", "labels"])
def test_onnx_engine_labels_follow_the_model(tmp_path: Path, output: str) -> None:
    engine = load_model(make_channel_argmax_model(tmp_path / "m.onnx", output=output), device="cpu")
    labels = engine(_three_stripes())
    assert labels.dtype == np.uint8 and labels.shape == (20, 60)
    # The frame is resized to /32 multiples for the model and back: stripe centres are exact.
    assert labels[:, 5:15].tolist() == [[0] * 10] * 20
    assert labels[:, 25:35].tolist() == [[1] * 10] * 20
    assert labels[:, 45:55].tolist() == [[2] * 10] * 20
    assert engine.info.classes == ("red", "green", "blue")
    assert engine.provider == "CPUExecutionProvider"


def test_fixed_input_size_is_used_and_labels_come_back_at_frame_size(tmp_path: Path) -> None:
    engine = load_model(make_channel_argmax_model(tmp_path / "m.onnx", fixed_size=(32, 32)), device="cpu")
    assert engine.preprocess(color_frame(RED, 100, 50)).shape == (1, 3, 32, 32)
    labels = engine(color_frame(GREEN, 100, 50))
    assert labels.shape == (50, 100) and (labels == 1).all()


def test_segment_records_stage_timings(tmp_path: Path, channel_model: Path) -> None:
    frame = Frame(color_frame(BLUE), index=0)
    load_model(channel_model, device="cpu").segment(frame)
    assert (frame.labels == 2).all()
    assert set(frame.timings) == {"preprocess", "infer", "postprocess"}
    assert all(t >= 0 for t in frame.timings.values())


def test_model_without_metadata_runs_with_defaults_and_warns(tmp_path: Path, caplog) -> None:
    path = make_channel_argmax_model(tmp_path / "bare.onnx", metadata={})
    with caplog.at_level(logging.WARNING):
        engine = load_model(path, device="cpu")
    assert "no rtseg metadata" in caplog.text
    assert engine.info.classes == ("class0", "class1", "class2")
    assert len(engine.info.palette) >= 3
    # ImageNet normalisation is applied: pure green still wins its channel.
    assert (engine(color_frame(GREEN)) == 1).all()


def test_bgr_channel_order_is_honoured(tmp_path: Path) -> None:
    meta = {"classes": json.dumps(["c0", "c1", "c2"]), "mean": "[0,0,0]", "std": "[1,1,1]",
            "channel_order": "BGR"}
    engine = load_model(make_channel_argmax_model(tmp_path / "bgr.onnx", metadata=meta), device="cpu")
    assert (engine(color_frame(BLUE)) == 0).all()  # blue is channel 0 in BGR order


@pytest.mark.parametrize("content, message", [
    (b"", "cannot load model"),
    (b"this is not a protobuf at all \x00\x01\x02" * 10, "cannot load model"),
])
def test_corrupt_model_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as err:
        load_model(path, device="cpu")
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_model_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match="unknown model 'nosuchmodel'.*otsu"):
        load_model("nosuchmodel")


def test_input_that_cannot_fit_is_refused(tmp_path: Path) -> None:
    path = make_channel_argmax_model(tmp_path / "gray.onnx", channels=1)
    with pytest.raises(ModelError, match="3 channels"):
        load_model(path, device="cpu")


def test_malformed_metadata_is_refused(tmp_path: Path) -> None:
    path = make_channel_argmax_model(tmp_path / "m.onnx", metadata={"palette": "[[1, 2]]"})
    with pytest.raises(ModelError, match="palette"):
        load_model(path, device="cpu")


def test_device_cuda_without_cuda_is_an_error_not_a_fallback(channel_model: Path) -> None:
    import onnxruntime as ort

    from rtseg.realtime.session import cuda_driver_present

    if "CUDAExecutionProvider" in ort.get_available_providers() and cuda_driver_present():
        pytest.skip("this machine has a usable CUDA provider")
    with pytest.raises(ModelError, match="--device cuda"):
        load_model(channel_model, device="cuda")
    assert load_model(channel_model, device="auto").provider == "CPUExecutionProvider"


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    """Untrusted models must not read files outside their folder through external data."""
    from onnx import TensorProto, helper

    secret = tmp_path / "secret.bin"
    np.ones(1, np.float32).tofile(secret)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "4")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Mul", ["images", "w"], ["logits"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])], [weight])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path = model_dir / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                       ir_version=9).SerializeToString())
    with pytest.raises(ModelError) as err:
        load_model(path, device="cpu")
    # rtseg's own check (rtseg/onnx_safety.py) refuses it before onnxruntime opens anything.
    assert str(err.value) == (f"{path}: external data location '../secret.bin' resolves outside the model "
                              f"folder {model_dir.resolve()}; refused")


def test_otsu_splits_foreground_from_background() -> None:
    image = np.full((40, 40, 3), 30, np.uint8)
    image[10:20, 10:20] = 220  # small bright square on a dark background
    labels = OtsuEngine()(image)
    assert labels[15, 15] == 1 and labels[35, 35] == 0
    assert labels.sum() == pytest.approx(100, abs=30)
    assert isinstance(load_model("otsu"), OtsuEngine)


def test_names_exported_into_the_cache_resolve(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "models").mkdir(parents=True)
    make_channel_argmax_model(tmp_path / "cache" / "models" / "my-road.onnx")
    assert load_model("my-road", device="cpu").info.classes == ("red", "green", "blue")
