"""Refuse ONNX files whose external data points outside the model's folder.

An ONNX tensor stored as external data names a file in its ``location`` field. A crafted
model can name ``../../etc/passwd`` or an absolute path and make a loader read (or a saver
write) files anywhere. :func:`check_external_data` inspects the protobuf *without* loading
the external data and raises when any location escapes the model's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtseg.errors import ModelError


def _external_locations(model) -> list[str]:
    """``location`` of every external-data tensor in an (unloaded) ModelProto."""
    from onnx import TensorProto
    from onnx.external_data_helper import _get_all_tensors

    locations = []
    for tensor in _get_all_tensors(model):
        if tensor.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            locations.append(entries.get("location", ""))
    return locations


def check_external_data(model_path: str | os.PathLike) -> list[Path]:
    """Check that all external-data files of an ONNX model stay inside its folder.

    Args:
        model_path: the ``.onnx`` file.

    Returns:
        The resolved external-data files (empty when all weights are inline).

    Raises:
        ModelError: the file cannot be parsed, or a location is absolute, escapes the
            model's folder (``..``, symlink), or names a file that does not exist.

    Example:
        >>> check_external_data("model.onnx")  # doctest: +SKIP
        []
    """
    import onnx

    path = Path(model_path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    base = path.resolve().parent
    files = []
    for location in _external_locations(model):
        if not location:
            raise ModelError(f"{path}: external-data tensor without a location")
        if Path(location).is_absolute() or Path(location).drive:
            raise ModelError(f"{path}: external data location {location!r} is absolute; refused")
        target = (base / location).resolve()
        if target != base and base not in target.parents:
            raise ModelError(f"{path}: external data location {location!r} resolves outside "
                             f"the model folder {base}; refused")
        if not target.is_file():
            raise ModelError(f"{path}: external data file {location!r} is missing")
        files.append(target)
    return sorted(set(files))
