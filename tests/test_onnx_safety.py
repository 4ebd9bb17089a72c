"""External-data safety (rtseg/onnx_safety.py): real ONNX files with external data, tampered.

Every refusal goes through ``rtseg.load_model`` and must be rtseg's own one-line message
(naming the model and the location), raised before onnxruntime opens anything.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import rtseg
from rtseg.errors import ModelError
from rtseg.onnx_safety import check_external_data, external_locations

from factories import BLUE, GREEN, PALETTE_RGB, RED, color_frame

pytestmark = pytest.mark.timeout(60)
ASSET = Path(rtseg.__file__).resolve().parent / "assets" / "camvid-road.onnx"


def _contract_model() -> onnx.ModelProto:
    """logits = images * w (w = ones, 1x3x1x1): the class is the brightest channel, R=0 G=1 B=2."""
    weight = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["images", "w"], ["logits"])], "scaled_channels",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, "H", "W"])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    meta = {"rtseg_contract": "1", "name": "scaled", "classes": json.dumps(["red", "green", "blue"]),
            "palette": json.dumps(PALETTE_RGB), "mean": "[0, 0, 0]", "std": "[1, 1, 1]",
            "channel_order": "RGB", "output": "logits"}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    return model


def _save_external(folder: Path, location: str = "weights.bin") -> Path:
    """Save the contract model with its weight as external data (what onnx itself writes)."""
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(_contract_model(), str(path), save_as_external_data=True, location=location,
                    size_threshold=0)
    return path


def _retarget(path: Path, location: str) -> None:
    """Point every external tensor of the saved model at ``location`` (the protobuf only)."""
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


def test_a_valid_external_data_model_loads_and_runs(tmp_path: Path) -> None:
    path = _save_external(tmp_path / "model", location="data/weights.bin")
    assert check_external_data(path) == [(tmp_path / "model" / "data" / "weights.bin").resolve()]
    engine = rtseg.load_model(path, device="cpu")
    for colour, label in ((RED, 0), (GREEN, 1), (BLUE, 2)):
        assert (engine(color_frame(colour)) == label).all()


def test_a_symlink_that_stays_inside_the_folder_is_accepted(tmp_path: Path) -> None:
    path = _save_external(tmp_path / "model", location="weights.bin")
    (path.parent / "alias.bin").symlink_to("weights.bin")
    _retarget(path, "alias.bin")
    assert check_external_data(path) == [(path.parent / "weights.bin").resolve()]
    assert (rtseg.load_model(path, device="cpu")(color_frame(GREEN)) == 1).all()


def _outside_parent(folder: Path, location: str) -> None:
    (folder.parent / "x").write_bytes(np.ones(3, np.float32).tobytes())


def _symlink_out(folder: Path, location: str) -> None:
    (folder.parent / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    (folder / location).symlink_to(folder.parent / "secret.bin")


def _symlinked_subfolder(folder: Path, location: str) -> None:
    (folder.parent / "elsewhere").mkdir()
    (folder.parent / "elsewhere" / "w.bin").write_bytes(np.ones(3, np.float32).tobytes())
    (folder / "sub").symlink_to(folder.parent / "elsewhere", target_is_directory=True)


def _hard_link_out(folder: Path, location: str) -> None:
    (folder.parent / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    os.link(folder.parent / "secret.bin", folder / location)


@pytest.mark.parametrize("location, plant, message", [
    ("../x", _outside_parent, "resolves outside the model folder"),
    ("data/../../x", _outside_parent, "resolves outside the model folder"),
    ("/etc/passwd", None, "is an absolute path"),
    ("link.bin", _symlink_out, "resolves outside the model folder"),
    ("sub/w.bin", _symlinked_subfolder, "resolves outside the model folder"),
    ("hard.bin", _hard_link_out, "is a hard link (2 names"),
    ("nothing.bin", None, "the file is missing"),
    (".", None, "names the model folder itself"),
])
def test_unsafe_external_data_is_refused_by_load_model(tmp_path: Path, location: str, plant, message: str) -> None:
    path = _save_external(tmp_path / "model")
    _retarget(path, location)
    if plant is not None:
        plant(path.parent, location)
    with pytest.raises(ModelError) as err:
        rtseg.load_model(path, device="cpu")
    text = str(err.value)
    # rtseg's own message, not onnxruntime's ("escapes model directory", "[ONNXRuntimeError]").
    assert text.startswith(f"{path}: external data location {location!r}"), text
    assert message in text and "\n" not in text
    assert "ONNXRuntime" not in text and "escapes model directory" not in text


def test_external_tensors_are_found_everywhere_a_tensor_can_live(tmp_path: Path) -> None:
    """Initializers, sparse initializers, node attributes, subgraphs (nested), functions, training."""
    def ext(name: str, location: str) -> TensorProto:
        tensor = numpy_helper.from_array(np.ones(2, np.float32), name)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "8")):
            tensor.external_data.add(key=key, value=value)
        return tensor

    def const(out: str, location: str) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [out], value=ext(out, location))

    inner = helper.make_graph([const("deep", "nested_if.bin")], "inner", [],
                              [helper.make_tensor_value_info("deep", TensorProto.FLOAT, [2])])
    then = helper.make_graph([helper.make_node("If", ["c"], ["t"], then_branch=inner, else_branch=inner)],
                             "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
                             [ext("then_init", "subgraph_init.bin")])
    sparse = helper.make_sparse_tensor(ext("sv", "sparse_values.bin"), ext("si", "sparse_indices.bin"), [4])
    nodes = [const("k", "constant.bin"),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=then),
             helper.make_node("Tile2", ["k"], ["z"], domain="local")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [ext("init", "initializer.bin")], sparse_initializer=[sparse])
    function = helper.make_function("local", "Tile2", ["a"], ["b"], [const("b", "function.bin")],
                                    [helper.make_opsetid("", 17)])
    model = helper.make_model(graph, functions=[function])
    training = model.training_info.add()
    training.initialization.CopyFrom(helper.make_graph([], "init", [], [], [ext("ti", "training.bin")]))

    found = external_locations(model.SerializeToString())
    assert sorted(found) == sorted(["initializer.bin", "sparse_values.bin", "sparse_indices.bin",
                                    "constant.bin", "subgraph_init.bin", "nested_if.bin", "nested_if.bin",
                                    "subgraph_init.bin", "nested_if.bin", "nested_if.bin", "function.bin",
                                    "training.bin"])
    # Every tensor onnx itself knows about is among them.
    from onnx.external_data_helper import _get_all_tensors

    assert {t.external_data[0].value for t in _get_all_tensors(model)} <= set(found)

    # One bad location deep in a nested subgraph is enough to refuse the model.
    inner.node[0].attribute[0].t.external_data[0].value = "../../escape.bin"
    then.node[0].attribute[0].g.CopyFrom(inner)
    graph.node[1].attribute[0].g.CopyFrom(then)
    model.graph.CopyFrom(graph)
    folder = tmp_path / "model"
    folder.mkdir()
    for name in set(found):
        (folder / name).write_bytes(b"\0" * 8)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match=r"'../../escape.bin' resolves outside"):
        check_external_data(path)


def _len_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (tag, varint length, payload)."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_a_tensor_split_across_repeated_singular_fields_is_merged_as_protobuf_does(tmp_path: Path) -> None:
    """Protobuf merges two occurrences of a singular message field: an attribute tensor whose
    location and EXTERNAL flag come in separate halves is one external tensor to onnxruntime."""
    half_location = TensorProto(name="k", data_type=TensorProto.FLOAT, dims=[1])
    half_location.external_data.add(key="location", value="../split.bin")
    half_flag = TensorProto(data_location=TensorProto.EXTERNAL)
    head = onnx.AttributeProto(name="value", type=onnx.AttributeProto.TENSOR).SerializeToString()
    attribute = head + _len_field(5, half_location.SerializeToString()) + _len_field(5, half_flag.SerializeToString())
    node = helper.make_node("Constant", [], ["k"]).SerializeToString() + _len_field(5, attribute)
    graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("k", TensorProto.FLOAT, [1])])
    graph_bytes = graph.SerializeToString() + _len_field(1, node)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ClearField("graph")
    data = model.SerializeToString() + _len_field(7, graph_bytes)

    parsed = onnx.load_from_string(data).graph.node[0].attribute[0].t  # what every protobuf reader sees
    assert parsed.data_location == TensorProto.EXTERNAL and parsed.external_data[0].value == "../split.bin"
    assert external_locations(data) == ["../split.bin"]
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir()
    path.write_bytes(data)
    with pytest.raises(ModelError, match="'../split.bin' resolves outside the model folder"):
        rtseg.load_model(path, device="cpu")


@pytest.mark.parametrize("content", [
    b"\xff\x00not a protobuf" * 10,
    b"\x3a\xff\xff\xff\x0f",  # graph field claiming 4 GB
])
def test_bytes_that_are_not_a_protobuf_are_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="cannot load model .*not a readable ONNX file") as err:
        check_external_data(path)
    assert "\n" not in str(err.value)


def test_a_truncated_model_is_refused_before_onnxruntime(tmp_path: Path) -> None:
    path = _save_external(tmp_path / "model")
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ModelError, match="cannot load model"):
        rtseg.load_model(path, device="cpu")


@pytest.mark.skipif(not ASSET.exists(), reason=f"built-in model not found at {ASSET}")
def test_checking_the_builtin_model_costs_little() -> None:
    """The 7.7 MB built-in model keeps its weights inline: raw_data is skipped, never copied."""
    check_external_data(ASSET)  # warm the page cache
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        assert check_external_data(ASSET) == []
        runs.append(time.perf_counter() - t0)
    print(f"check_external_data({ASSET.name}, {ASSET.stat().st_size / 1e6:.1f} MB): "
          f"best {min(runs) * 1e3:.2f} ms, median {sorted(runs)[2] * 1e3:.2f} ms")


def test_export_uses_the_same_check() -> None:
    """One implementation: the exporter's import path is the runtime's function."""
    from rtseg.export.safety import check_external_data as export_check

    assert export_check is check_external_data


def test_calibrate_refuses_external_data_outside_the_model_folder(tmp_path: Path, capsys) -> None:
    """rtseg calibrate reads and rewrites untrusted model files: the same check runs before either."""
    from rtseg.cli import main
    from rtseg.export.class_bias import fold_biases

    path = _save_external(tmp_path / "model")
    _retarget(path, "../x")
    _outside_parent(path.parent, "../x")
    with pytest.raises(ModelError, match="resolves outside the model folder"):
        fold_biases(path, tmp_path / "out.onnx", [0.0, 0.0, 0.0])
    assert main(["calibrate", "--model", str(path), "--data", f"masks:{tmp_path}", "--no-progress"]) == 2
    assert "resolves outside the model folder" in capsys.readouterr().err
    assert not (tmp_path / "out.onnx").exists()
