"""onnxruntime sessions: one place that sets session options and picks the provider."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from rtseg.errors import ModelError, first_line

log = logging.getLogger(__name__)

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")


def session_options(threads: int | None = None):
    """Session options every rtseg session uses: full graph optimisation, sequential
    execution, ``threads`` intra-op threads (None/0: onnxruntime's choice), errors-only
    logging, and no spinning workers (they would steal the cores that decoding, rendering
    and encoding need, or that a benchmark measures next)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def cuda_driver_present() -> bool:
    """True when the NVIDIA driver library loads (cheap check before trying the CUDA provider)."""
    for lib in ("libcuda.so.1", "nvcuda.dll", "libcuda.dylib"):
        try:
            ctypes.CDLL(lib)
            return True
        except OSError:
            continue
    return False


def create_session(path: Path, device: str = "auto", threads: int | None = None):
    """An onnxruntime session on the requested device; raises ModelError when it can't be had."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # errors only; we report provider choice ourselves
    options = session_options(threads)
    want_cuda = device == "cuda" or (device == "auto" and CUDA in ort.get_available_providers()
                                     and cuda_driver_present())
    if device == "cuda" and CUDA not in ort.get_available_providers():
        raise ModelError("--device cuda: this onnxruntime build has no CUDA provider "
                         "(install onnxruntime-gpu)")
    providers = [CUDA, CPU] if want_cuda else [CPU]
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelError(f"cannot load model {path}: {first_line(exc)}") from None
    granted = session.get_providers()
    if device == "cuda" and CUDA not in granted:
        raise ModelError("--device cuda: onnxruntime could not start its CUDA provider "
                         "(no NVIDIA driver, or CUDA/cuDNN libraries missing); use --device cpu")
    if want_cuda and CUDA not in granted:
        log.warning("CUDA provider unavailable, running on the CPU")
    return session
