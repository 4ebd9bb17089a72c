"""External-data locations must stay inside the model's folder."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rtseg.errors import ModelError
from rtseg.export.safety import check_external_data


def _model_with_external(tmp_path, location, write_file=True):
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])], [weight])
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    if write_file:
        target = (folder / location) if not location.startswith("/") else None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(np.ones((4, 4), np.float32).tobytes())
    return path


def test_inline_and_inside_locations_pass(tmp_path):
    inline = tmp_path / "inline.onnx"
    onnx.save(helper.make_model(helper.make_graph([], "g", [], [])), str(inline))
    assert check_external_data(inline) == []
    path = _model_with_external(tmp_path, "data/w.bin")
    assert check_external_data(path) == [(path.parent / "data" / "w.bin").resolve()]


@pytest.mark.parametrize("location, match", [
    ("../outside.bin", "outside the model folder"),
    ("data/../../outside.bin", "outside the model folder"),
    ("/etc/passwd", "absolute"),
    ("missing.bin", "missing"),
])
def test_escaping_or_missing_locations_are_refused(tmp_path, location, match):
    path = _model_with_external(tmp_path, location, write_file=location != "missing.bin")
    with pytest.raises(ModelError, match=match):
        check_external_data(path)


def test_symlink_out_of_folder_is_refused(tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"x" * 64)
    path = _model_with_external(tmp_path, "link.bin", write_file=False)
    (path.parent / "link.bin").symlink_to(outside)
    with pytest.raises(ModelError, match="outside the model folder"):
        check_external_data(path)


def test_garbage_file_is_a_model_error(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\x00not a protobuf" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX file"):
        check_external_data(path)
