"""PyTorch -> ONNX export for the live pipeline (``rtseg export``, ``rtseg models``).

Needs the optional extra: ``pip install rtseg[export]`` (torch, torchvision, onnx). Running
an exported model never needs it. The heavy modules load on first use:

    >>> from rtseg.export import export_model  # doctest: +SKIP
    >>> export_model(module, "model.onnx", info, frames=frames)  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "export_model": "rtseg.export.exporter",
    "ExportResult": "rtseg.export.exporter",
    "ExportError": "rtseg.errors",
    "read_metadata": "rtseg.export.exporter",
    "build": "rtseg.export.builder",
    "quantize_int8": "rtseg.export.quantize",
    "check_external_data": "rtseg.export.safety",
    "load_registry": "rtseg.export.registry",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rtseg.export' has no attribute {name!r}")
