"""``rtseg doctor`` and the one-line CUDA reason, on this machine (issue #13, section 4)."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtseg import doctor
from rtseg.assets import builtin_model_files
from rtseg.realtime import session

from factories import make_video

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
CUDA_REASON = session.provider_unavailable_reason()


def rtseg(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtseg", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


needs_no_cuda = pytest.mark.skipif(CUDA_REASON is None, reason="this machine has a usable CUDA provider")


@pytest.fixture(scope="module")
def report() -> dict:
    result = rtseg("doctor", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_report_holds_every_check(report: dict) -> None:
    assert report["ok"] is True and report["cpu"]["ok"] is True and report["cpu"]["provider"] == "CPUExecutionProvider"
    versions = report["versions"]
    assert {"rtseg", "python", "onnxruntime", "numpy", "opencv", "pyav", "torch"} <= set(versions)
    assert all(versions[k] for k in ("rtseg", "python", "onnxruntime", "numpy", "opencv", "pyav"))
    providers = report["providers"]
    assert "CPUExecutionProvider" in providers["available"]
    for name in ("CUDA", "TensorRT"):
        check = providers[name]
        assert isinstance(check["loads"], bool)
        assert (check["reason"] is None) == check["loads"]
    assert isinstance(report["h264"]["available"], bool)
    assert isinstance(report["display"]["available"], bool)
    assert report["cameras"]["checked"] == [0, 1, 2, 3, 4]
    assert set(report["cameras"]["open"]) <= {0, 1, 2, 3, 4}


def test_built_in_models_carry_their_sha256(report: dict) -> None:
    models = {m["name"]: m for m in report["models"]}
    assert set(builtin_model_files()) | {"otsu"} == set(models)
    for name, path in builtin_model_files().items():
        assert models[name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert models[name]["bytes"] == path.stat().st_size


@needs_no_cuda
def test_doctor_explains_in_one_line_why_cuda_is_unavailable(report: dict) -> None:
    """The acceptance line of issue #13: on this machine doctor says why CUDA is unavailable."""
    reason = report["providers"]["CUDA"]["reason"]
    assert reason == CUDA_REASON and "\n" not in reason and len(reason) < 200
    assert any(cause in reason for cause in ("the NVIDIA driver) was not found", "is CPU-only",
                                             "was not found (it needs", "is installed and the CPU one"))
    if "CUDAExecutionProvider" in report["providers"]["available"] and not session.cuda_driver_present():
        assert reason.endswith("is installed but libcuda.so.1 (the NVIDIA driver) was not found")


def test_text_report(tmp_path: Path) -> None:
    result = rtseg("doctor")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("versions", "onnxruntime providers:", "  CUDA ", "  TensorRT ", "  CPU          works",
                    "H.264 encoder", "display", "cameras", "built-in models", "result: the CPU path works"):
        assert heading in out, heading
    assert "[E:onnxruntime" not in result.stderr and "\x1b[" not in result.stderr


def test_exit_code_1_when_the_cpu_path_fails(monkeypatch, capsys) -> None:
    monkeypatch.setattr(doctor, "check_cpu", lambda: {"ok": False, "reason": "ModelError: broken"})
    assert doctor.run(argparse.Namespace(json=False, debug=False)) == 1
    assert "FAILED: ModelError: broken" in capsys.readouterr().out


@needs_no_cuda
def test_device_cuda_prints_only_rtseg_s_message(tmp_path: Path) -> None:
    """Before: onnxruntime's red multi-line error dump, then rtseg's message. Now: one line."""
    clip = make_video(tmp_path / "clip.mp4", n=3)
    result = rtseg(str(clip), "--device", "cuda", "--no-display", "--stats", str(tmp_path / "s.jsonl"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"rtseg: error: --device cuda: {CUDA_REASON}; use --device cpu"]


@needs_no_cuda
def test_device_auto_says_why_it_skips_cuda(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", n=3)
    result = rtseg(str(clip), "--no-display", "--stats", str(tmp_path / "s.jsonl"))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert f"rtseg: CUDA provider unavailable, running on the CPU: {CUDA_REASON}" in lines
    assert "[E:onnxruntime" not in result.stderr and "\x1b[" not in result.stderr


# -- the reasons, one cause at a time -----------------------------------------------------------
def test_reason_for_a_cpu_only_build(monkeypatch) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(session, "_both_ort_packages_installed", lambda: False)
    assert "is CPU-only; pip install onnxruntime-gpu" in session.provider_unavailable_reason()
    monkeypatch.setattr(session, "_both_ort_packages_installed", lambda: True)
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in session.provider_unavailable_reason()


def test_reason_names_a_missing_cuda_library(monkeypatch) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(session, "cuda_driver_present", lambda: True)
    monkeypatch.setattr(session, "_ort_build", lambda: ("onnxruntime-gpu", "1.31.1", "13.0"))
    monkeypatch.setattr(session, "_provider_library_missing", lambda _ort, _short: "libcublasLt.so.13")
    assert session.provider_unavailable_reason() == (
        "onnxruntime-gpu 1.31.1 is installed but libcublasLt.so.13 (CUDA cuBLAS) was not found (it needs CUDA 13)")
    monkeypatch.setattr(session, "_provider_library_missing", lambda _ort, _short: None)
    monkeypatch.setattr(session, "_missing_library", lambda _path: "libcudnn.so.9")
    assert session.provider_unavailable_reason().endswith("libcudnn.so.9 (cuDNN) was not found (it needs cuDNN 9)")


def test_the_loader_s_own_words_name_the_library() -> None:
    """A real failed load on this machine: the library the loader could not find, or None."""
    assert session._missing_library("/nonexistent/libnothing.so") == "/nonexistent/libnothing.so"
    assert session._missing_library("libc.so.6") is None


def test_first_onnxruntime_error_line() -> None:
    dump = ("\x1b[1;31m2026-11-25 13:27:25.2 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
            "/onnxruntime_src/x.cc:2043 onnxruntime::Provider& Get() [ONNXRuntimeError] : 1 : FAIL : Failed to "
            "load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared "
            "object file: No such file or directory\n\x1b[m\n")
    assert doctor.first_ort_error(dump) == ("libcublasLt.so.13: cannot open shared object file: "
                                            "No such file or directory")
    assert doctor.first_ort_error("nothing to see\n") is None


def test_display_reasons(monkeypatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("X11/Wayland checks are Linux-only")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    check = doctor.check_display()
    if check.get("backend") not in (None, "NONE"):
        assert not check["available"] and "--serve PORT" in check["reason"]
        monkeypatch.setenv("DISPLAY", ":4321")
        check = doctor.check_display()
        assert not check["available"] and "no X server is listening" in check["reason"]
