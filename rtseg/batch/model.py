"""The model travels to the workers once: a built-in name, or the ONNX file's bytes.

Built-in models (``camvid-road``, ``otsu``) ship inside the package, so a worker loads them
by name. Any other model is read once on the driver, external-data files included, and put
in Ray's object store; each worker writes it to a private folder and builds its
onnxruntime session from there. Workers on other machines need no copy of the file.

Example:
    >>> payload = model_payload("otsu")
    >>> payload.name, payload.files
    ('otsu', {})
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.assets import builtin_model_files
from rtseg.errors import ModelError, first_line
from rtseg.onnx_safety import check_external_data
from rtseg.realtime.engine import default_model_name, resolve_model_path

BUILTIN_METHODS = ("otsu",)


@dataclass(frozen=True)
class ModelPayload:
    """A model as it is shipped: a built-in name, or files by their name in the model's folder.

    Attributes:
        name: a built-in name, or the ``.onnx`` file's name.
        files: file name (relative to the model's folder) -> bytes; empty for built-ins.
        path: the model file on the driver (no output may be it); None for built-ins.
    """

    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    path: Path | None = None


def model_payload(model: str | os.PathLike | None) -> ModelPayload:
    """Resolve ``--model`` on the driver: built-ins by name, any other file read with its
    external data.

    Raises:
        ModelError: the file does not exist, cannot be read, or has unsafe external data.
    """
    name = str(model) if model is not None else default_model_name()
    if name in BUILTIN_METHODS or name in builtin_model_files():
        return ModelPayload(name)
    path = resolve_model_path(name)
    if not path.is_file():
        raise ModelError(f"model file not found: {name}")
    files = {path.name: _read(path)}
    for extra in check_external_data(path):
        files[os.path.relpath(extra, path.parent.resolve())] = _read(extra)
    return ModelPayload(path.name, files, path)


def materialize(payload: ModelPayload) -> tuple[str, tempfile.TemporaryDirectory | None]:
    """What a worker passes to ``load_model``: the built-in name, or the path of a private
    copy (keep the returned folder object alive as long as the session)."""
    if not payload.files:
        return payload.name, None
    folder = tempfile.TemporaryDirectory(prefix="rtseg-model-")
    for rel, data in payload.files.items():
        target = Path(folder.name) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return str(Path(folder.name) / payload.name), folder


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {first_line(exc)}") from None
