"""Refuse ONNX files whose external data points outside the model's folder.

The check lives in :mod:`rtseg.onnx_safety` (no ``onnx`` dependency) so that the runtime
engine and the exporter run the same code; this module keeps the export-side import path.
"""

from __future__ import annotations

from rtseg.onnx_safety import check_external_data

__all__ = ["check_external_data"]
