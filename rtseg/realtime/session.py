"""onnxruntime sessions: one place that sets session options and picks the provider."""

from __future__ import annotations

import ctypes
import logging
import re
import sys
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


DRIVER_LIBRARIES = ("libcuda.so.1", "nvcuda.dll", "libcuda.dylib")
# what a missing shared library of onnxruntime-gpu's providers is, for the one-line reason
LIBRARY_KINDS = {"libcublas": "CUDA cuBLAS", "libcudart": "the CUDA runtime", "libcurand": "CUDA cuRAND",
                 "libcufft": "CUDA cuFFT", "libcudnn": "cuDNN", "libnvinfer": "TensorRT",
                 "libnvonnxparser": "TensorRT's ONNX parser", "cublas": "CUDA cuBLAS", "cudart": "the CUDA runtime",
                 "cudnn": "cuDNN", "nvinfer": "TensorRT"}


def cuda_driver_present() -> bool:
    """True when the NVIDIA driver library loads (cheap check before trying the CUDA provider)."""
    for lib in DRIVER_LIBRARIES:
        try:
            ctypes.CDLL(lib)
            return True
        except OSError:
            continue
    return False


def provider_unavailable_reason(provider: str = CUDA) -> str | None:
    """Why onnxruntime's CUDA or TensorRT provider cannot load here, in one line; None when
    nothing known is missing (the build has it, the NVIDIA driver and the provider's
    libraries load). Checked without creating a session, so onnxruntime prints nothing.

    Example:
        >>> provider_unavailable_reason()  # doctest: +SKIP
        'onnxruntime-gpu 1.31.1 is installed but libcuda.so.1 (the NVIDIA driver) was not found'
    """
    import onnxruntime as ort

    package, version, cuda_version = _ort_build()
    short = provider.replace("ExecutionProvider", "")
    available = ort.get_available_providers()
    if provider not in available:
        if CUDA in available:
            return f"{package} {version} was built without the {short} provider"
        if _both_ort_packages_installed():
            return ("both onnxruntime (CPU-only) and onnxruntime-gpu are installed and the CPU one is in use; "
                    "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu")
        return f"this onnxruntime build ({package} {version}) is CPU-only; pip install onnxruntime-gpu"
    if not cuda_driver_present():
        driver = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
        return f"{package} {version} is installed but {driver} (the NVIDIA driver) was not found"
    needs = f" (it needs CUDA {cuda_version.split('.')[0]})" if cuda_version else ""
    missing = _provider_library_missing(ort, short.lower())
    if missing is None and provider == CUDA:
        missing = _missing_library("cudnn64_9.dll" if sys.platform == "win32" else "libcudnn.so.9")
        needs = " (it needs cuDNN 9)"
    if missing is not None:
        kind = next((k for prefix, k in LIBRARY_KINDS.items() if missing.lower().startswith(prefix)), None)
        return (f"{package} {version} is installed but {missing}" + (f" ({kind})" if kind else "")
                + f" was not found{needs}")
    return None


def _ort_build() -> tuple[str, str, str | None]:
    """(package name, version, CUDA version or None) of the onnxruntime in use."""
    import onnxruntime as ort

    try:
        from onnxruntime.capi import build_and_package_info as build
    except ImportError:
        return "onnxruntime", ort.__version__, None
    return (getattr(build, "package_name", "onnxruntime"), getattr(build, "__version__", ort.__version__),
            getattr(build, "cuda_version", None) or None)


def _both_ort_packages_installed() -> bool:
    from importlib import metadata

    try:
        metadata.version("onnxruntime")
        metadata.version("onnxruntime-gpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def _provider_library_missing(ort, short: str) -> str | None:
    """The first shared library the provider's own library cannot find, or None."""
    capi = Path(ort.__file__).parent / "capi"
    name = f"onnxruntime_providers_{short}.dll" if sys.platform == "win32" else f"libonnxruntime_providers_{short}.so"
    if not (capi / name).exists():
        return None
    try:  # the provider library expects the shared provider bridge loaded globally first
        ctypes.CDLL(str(capi / name.replace(short, "shared")), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
    except OSError:
        pass
    return _missing_library(str(capi / name))


def _missing_library(path: str) -> str | None:
    """The library name the loader could not find when loading ``path``; None when it loads
    (or fails for another reason, such as an unresolved symbol, which is not ours to name)."""
    try:
        ctypes.CDLL(path)
    except OSError as exc:
        match = re.match(r"^\s*([^\s:]+): cannot open shared object file", str(exc))
        if match:
            return match.group(1)
        if sys.platform == "win32" and "could not find module" in str(exc).lower():
            return Path(path).name
    return None


def create_session(path: Path, device: str = "auto", threads: int | None = None):
    """An onnxruntime session on the requested device; raises ModelError when it can't be had.

    With ``device="auto"`` a run that skips CUDA says why in one line; ``device="cuda"``
    fails with that reason before onnxruntime tries (and prints its own error dump).
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # errors only; we report provider choice ourselves
    options = session_options(threads)
    reason = provider_unavailable_reason(CUDA) if device in ("auto", "cuda") else None
    if device == "cuda" and reason is not None:
        raise ModelError(f"--device cuda: {reason}; use --device cpu")
    if device == "auto" and reason is not None:
        log.info("CUDA provider unavailable, running on the CPU: %s", reason)
    want_cuda = device == "cuda" or (device == "auto" and reason is None)
    providers = [CUDA, CPU] if want_cuda else [CPU]
    if want_cuda:
        ort.set_default_logger_severity(4)  # a provider that fails anyway: our one line, not its dump
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelError(f"cannot load model {path}: {first_line(exc)}") from None
    finally:
        ort.set_default_logger_severity(3)
    granted = session.get_providers()
    if device == "cuda" and CUDA not in granted:
        raise ModelError("--device cuda: onnxruntime could not start its CUDA provider (GPU unsupported, or "
                         "CUDA/cuDNN libraries of the wrong version; `rtseg doctor` shows why); use --device cpu")
    if want_cuda and CUDA not in granted:
        log.warning("CUDA provider unavailable, running on the CPU: onnxruntime could not start it "
                    "(`rtseg doctor` shows why)")
    return session


def open_model(path: Path, device: str = "auto", threads: int | None = None):
    """Check an ONNX file's external data (rtseg's own check), then open it: the session and
    its metadata (``custom_metadata_map``)."""
    from rtseg.onnx_safety import check_external_data

    check_external_data(path)
    session = create_session(path, device, threads)
    return session, session.get_modelmeta().custom_metadata_map
