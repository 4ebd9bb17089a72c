"""``rtseg doctor``: what this machine can run, and why not when it can't.

Prints the versions of rtseg and its libraries, every onnxruntime execution provider (for
CUDA and TensorRT: whether it loads, else the reason in one line), whether an H.264
encoder, a display and cameras 0-4 are available, and the built-in models with their
SHA-256. Exits 0 when the CPU path works (a tiny inference with the built-in model).

Examples:
    rtseg doctor              # a readable report
    rtseg doctor --json       # one JSON object, for bug reports
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from rtseg.errors import first_line
from rtseg.realtime.session import CPU, CUDA, provider_unavailable_reason

GPU_PROVIDERS = {"CUDA": CUDA, "TensorRT": "TensorrtExecutionProvider"}
CAMERA_INDICES = range(5)
CAMERA_TIMEOUT = 3.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# the one-line reason why CUDA (or TensorRT) is not used; create_session logs the same words
cuda_unavailable_reason = provider_unavailable_reason


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtseg doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bug reports)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def run(args: argparse.Namespace) -> int:
    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["ok"] else 1


def diagnose() -> dict[str, Any]:
    """Every check, as one JSON-ready dict; ``ok`` is True when the CPU path works."""
    cpu = check_cpu()
    return {
        "ok": cpu["ok"],
        "versions": versions(),
        "platform": platform.platform(),
        "providers": check_providers(),
        "cpu": cpu,
        "h264": check_h264(),
        "display": check_display(),
        "cameras": check_cameras(),
        "models": builtin_models(),
    }


# -- versions ---------------------------------------------------------------------------------
def versions() -> dict[str, str | None]:
    """rtseg, Python and library versions (None: not installed)."""
    import cv2
    import numpy as np

    from rtseg import __version__

    found = {"rtseg": __version__, "python": f"{platform.python_version()} ({sys.executable})",
             "onnxruntime": _onnxruntime_version(), "numpy": np.__version__, "opencv": cv2.__version__}
    try:
        import av

        found["pyav"] = f"{av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')})"
    except ImportError:
        found["pyav"] = None
    found["torch"] = _installed("torch")  # not imported: only its version is needed
    return found


def _onnxruntime_version() -> str | None:
    try:
        from rtseg.realtime.session import _ort_build

        package, version, cuda = _ort_build()
    except ImportError:
        return None
    return f"{package} {version}" + (f" (built for CUDA {cuda})" if cuda else "")


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# -- execution providers ----------------------------------------------------------------------
def check_providers(model: Path | None = None) -> dict[str, Any]:
    """onnxruntime's providers in this build; for CUDA and TensorRT whether they load, and why not.

    CUDA is tried for real (a session on the built-in model) when nothing is known to be
    missing; TensorRT's provider library is loaded, not run (it builds engines on first use).
    """
    import onnxruntime as ort

    checks: dict[str, Any] = {"available": ort.get_available_providers()}
    for name, provider in GPU_PROVIDERS.items():
        reason = provider_unavailable_reason(provider)
        if reason is None and provider == CUDA:
            reason = _cuda_session_failure(model or _default_model())
        checks[name] = {"loads": reason is None, "reason": reason}
    return checks


def _cuda_session_failure(model: Path) -> str | None:
    """Create a CUDA session on ``model``; None when CUDA is granted, else onnxruntime's
    first error line (its log is captured from stderr, not shown)."""
    import onnxruntime as ort

    with _captured_stderr() as captured:
        try:
            session = ort.InferenceSession(str(model), providers=[CUDA, CPU])
            granted = session.get_providers()
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
            return f"onnxruntime could not create a CUDA session: {first_line(exc)}"
    if CUDA in granted:
        return None
    return "onnxruntime could not start its CUDA provider: " + (first_ort_error(captured()) or "no reason given")


def first_ort_error(log_text: str) -> str | None:
    """The useful part of the first error line in onnxruntime's log output.

    Example:
        >>> first_ort_error("[E:onnxruntime:Default, x.cc:1 f] ... Failed to load library a.so with error: "
        ...                 "libcublasLt.so.13: cannot open shared object file: No such file or directory")
        'libcublasLt.so.13: cannot open shared object file: No such file or directory'
    """
    for line in ANSI.sub("", log_text).splitlines():
        if "[E:" in line or "[W:" in line:
            message = line.split("] ", 1)[-1].strip()
            return message.split(" with error: ", 1)[-1].strip() or None
    return None


class _captured_stderr:  # noqa: N801 - used like contextlib's lower-case context managers
    """Capture file descriptor 2 (C++ libraries write there, not to ``sys.stderr``)."""

    def __enter__(self) -> Callable[[], str]:
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self.text

    def text(self) -> str:
        self._file.seek(0)
        return self._file.read().decode("utf-8", "replace")

    def __exit__(self, *exc_info: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


# -- the CPU path -----------------------------------------------------------------------------
def check_cpu() -> dict[str, Any]:
    """Run the built-in model once on the CPU, on a small image."""
    import numpy as np

    from rtseg.realtime.engine import load_model

    try:
        engine = load_model(None, device="cpu", threads=1)
        image = np.zeros((96, 128, 3), np.uint8)
        image[48:] = (60, 60, 60)
        t0 = time.perf_counter()
        labels = engine(image)
        ms = (time.perf_counter() - t0) * 1000
    except Exception as exc:  # noqa: BLE001 - reported, and the exit code says it
        return {"ok": False, "reason": f"{type(exc).__name__}: {first_line(exc)}"}
    if labels.shape != image.shape[:2]:
        return {"ok": False, "reason": f"labels of shape {labels.shape} for a {image.shape[:2]} image"}
    return {"ok": True, "model": engine.info.name, "provider": engine.provider, "ms": round(ms, 1)}


def _default_model() -> Path:
    from rtseg.assets import DEFAULT_MODEL, builtin_model_files

    return builtin_model_files()[DEFAULT_MODEL]


# -- media, display, cameras ------------------------------------------------------------------
def check_h264() -> dict[str, Any]:
    """Whether PyAV can encode H.264 with libx264 (one frame into memory)."""
    try:
        import av
        import numpy as np

        av.codec.Codec("libx264", "w")
    except Exception as exc:  # noqa: BLE001 - ImportError, or FFmpeg built without x264
        return {"available": False, "reason": f"no libx264 encoder in this PyAV/FFmpeg build ({first_line(exc)})"}
    try:
        with av.open(io.BytesIO(), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="bgr24")
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"libx264 is present but could not encode: {first_line(exc)}"}
    return {"available": True, "encoder": "libx264 (PyAV)"}


def check_display() -> dict[str, Any]:
    """Whether a window can open: OpenCV's GUI backend, and on Linux a reachable X/Wayland display."""
    import cv2

    match = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    backend = match.group(1) if match else None
    if backend is None or backend.upper() == "NONE":
        return {"available": False, "backend": backend,
                "reason": "this OpenCV build has no GUI (opencv-python-headless?); watch with --serve PORT"}
    if not sys.platform.startswith("linux"):
        return {"available": True, "backend": backend}
    wayland, x11 = os.environ.get("WAYLAND_DISPLAY"), os.environ.get("DISPLAY")
    if not (wayland or x11):
        return {"available": False, "backend": backend,
                "reason": "DISPLAY is not set (no screen); watch with --serve PORT, or use --no-display"}
    local = re.match(r"^:(\d+)", x11 or "")
    if not wayland and local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists():
        return {"available": False, "backend": backend,
                "reason": f"DISPLAY={x11} but no X server is listening (/tmp/.X11-unix/X{local.group(1)} is missing)"}
    return {"available": True, "backend": backend, "display": wayland or x11}


def check_cameras(indices=CAMERA_INDICES, timeout: float = CAMERA_TIMEOUT) -> dict[str, Any]:
    """Which camera indices open (OpenCV, its logging silenced; each try capped at ``timeout`` s)."""
    opened = []
    for index in indices:
        if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
            continue  # nothing to open: skip OpenCV's backend-by-backend attempts
        if _within(timeout, lambda i=index: _camera_opens(i)):
            opened.append(index)
    return {"checked": list(indices), "open": opened}


def _camera_opens(index: int) -> bool:
    import cv2

    from rtseg.realtime.sources.camera import _opencv_quiet

    with _opencv_quiet():
        capture = cv2.VideoCapture(index)
        try:
            return bool(capture.isOpened())
        finally:
            capture.release()


def _within(timeout: float, check: Callable[[], bool]) -> bool:
    """``check()`` on a daemon thread; False when it raises or takes longer than ``timeout``."""
    result: list[bool] = []

    def target() -> None:
        try:
            result.append(check())
        except Exception:  # noqa: BLE001 - a camera that errors does not open
            result.append(False)

    thread = threading.Thread(target=target, name="rtseg-doctor-camera", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


# -- models -----------------------------------------------------------------------------------
def builtin_models() -> list[dict[str, Any]]:
    """The models that ship inside the package, with size and SHA-256; and the weight-free one."""
    from rtseg.assets import builtin_model_files

    models = [{"name": name, "file": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path)}
              for name, path in builtin_model_files().items()]
    models.append({"name": "otsu", "file": None, "bytes": 0, "sha256": None})
    return models


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- text report ------------------------------------------------------------------------------
def format_report(report: dict[str, Any]) -> str:
    """The report as aligned lines of text."""
    lines = ["versions"]
    lines += [f"  {name:<12} {value or 'not installed'}" for name, value in report["versions"].items()]
    providers = report["providers"]
    lines.append(f"onnxruntime providers: {', '.join(providers['available'])}")
    for name in GPU_PROVIDERS:
        check = providers[name]
        lines.append(f"  {name:<12} " + ("loads" if check["loads"] else f"no: {check['reason']}"))
    cpu = report["cpu"]
    lines.append(f"  {'CPU':<12} " + (f"works: {cpu['model']} ran in {cpu['ms']:.0f} ms" if cpu["ok"]
                                       else f"FAILED: {cpu['reason']}"))
    h264 = report["h264"]
    lines.append(f"{'H.264 encoder':<15}" + (f"yes, {h264['encoder']}" if h264["available"]
                                              else f"no: {h264['reason']}"))
    display = report["display"]
    lines.append(f"{'display':<15}" + (f"yes ({display.get('display') or display['backend']})"
                                        if display["available"] else f"no: {display['reason']}"))
    cameras = report["cameras"]
    checked = f"{cameras['checked'][0]}-{cameras['checked'][-1]}" if cameras["checked"] else "none"
    lines.append(f"{'cameras':<15}" + (", ".join(map(str, cameras["open"])) + " open" if cameras["open"]
                                        else f"none of {checked} open"))
    lines.append("built-in models")
    for model in report["models"]:
        if model["file"] is None:
            lines.append(f"  {model['name']:<12} weight-free (OpenCV)")
        else:
            lines.append(f"  {model['name']:<12} {model['bytes'] / 1e6:.1f} MB  sha256 {model['sha256']}")
    lines.append("result: " + ("the CPU path works" if report["ok"] else "the CPU path does NOT work (see CPU above)"))
    return "\n".join(lines)
