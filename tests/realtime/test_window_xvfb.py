"""The live window for real: OpenCV's window under Xvfb, driven with xdotool.

Skipped with a reason when Xvfb or xdotool is missing (``apt-get install -y xvfb xdotool``).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rtseg.realtime.frame import Frame
from rtseg.realtime.options import RenderOptions
from rtseg.realtime.otsu import OtsuEngine
from rtseg.realtime.render import Renderer

from factories import make_video, read_video

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                       reason="needs Xvfb and xdotool (apt-get install -y xvfb xdotool)"),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def display():
    for number in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": f":{number}"}
    deadline = time.time() + 10
    while subprocess.run(["xdotool", "getmouselocation"], env=env, capture_output=True).returncode != 0:
        if time.time() > deadline or server.poll() is not None:
            server.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.1)
    yield env
    server.terminate()
    server.wait(timeout=5)


def _lines(path: Path) -> int:
    """Lines of a stats file, read from its temp file while the run writes it."""
    for candidate in [path, *path.parent.glob(f".{path.name}.*.tmp{path.suffix}")]:
        if candidate.exists():
            return len(candidate.read_text().splitlines())
    return 0


def _xdo(env: dict, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=10).stdout.strip()


def _wait_for_window(env: dict, timeout: float = 20) -> str:
    """The id of rtseg's window once it is mapped; fails the test after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        window = _xdo(env, "search", "--name", "rtseg - ").split("\n")[0]
        if window:
            return window
        time.sleep(0.1)
    pytest.fail("the window did not open")


def test_window_opens_and_keys_pause_cycle_the_view_and_quit(tmp_path: Path, display: dict) -> None:
    clip = make_video(tmp_path / "long.mp4", n=1500, width=320, height=240)
    stats, out = tmp_path / "s.jsonl", tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "rtseg", str(clip), "--show", "--realtime", "--model", "otsu",
                             "--stats", str(stats), "--output", str(out), "--quiet"],
                            env=display, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        window = _wait_for_window(display)
        deadline = time.time() + 10  # the first frame sizes the window; on a loaded machine it comes later
        while "Geometry: 320x240" not in (geometry := _xdo(display, "getwindowgeometry", window)) \
                and time.time() < deadline:
            time.sleep(0.1)
        assert "Geometry: 320x240" in geometry, "the window has the frame's size"
        _xdo(display, "windowfocus", window)
        _xdo(display, "key", "m")  # overlay -> mask
        time.sleep(0.5)
        _xdo(display, "key", "space")  # pause: no frame goes through
        time.sleep(0.5)
        paused_at = _lines(stats)
        time.sleep(1.0)
        assert _lines(stats) == paused_at, "frames went on while paused"
        _xdo(display, "key", "space")
        time.sleep(0.5)
        assert _lines(stats) > paused_at, "frames did not resume"
        _xdo(display, "key", "q")
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "QObject" not in stderr and "QFont" not in stderr, f"Qt warnings: {stderr}"
    written = _lines(stats)
    assert 0 < written < 1500, "q stops the run before the end of the clip"
    _, images = read_video(out)
    assert len(images) == written
    _, source_images = read_video(clip)
    frame = Frame(source_images[written - 1], written - 1)
    OtsuEngine().segment(frame)
    info = OtsuEngine().info
    views = {mode: Renderer(info, RenderOptions(view=mode)).render(frame).astype(int) for mode in ("mask", "overlay")}
    error = {mode: np.abs(images[-1].astype(int) - view).mean() for mode, view in views.items()}
    assert error["mask"] < error["overlay"] / 2, f"after m the output shows the mask view: {error}"


def _close_like_a_window_manager(env: dict, window: int) -> None:
    """Send WM_DELETE_WINDOW, what a window manager sends when the close button is clicked."""
    import ctypes
    import ctypes.util

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(env["DISPLAY"].encode())
    event = XEvent()
    event.xclient.type, event.xclient.window, event.xclient.format = 33, window, 32  # ClientMessage
    event.xclient.message_type = x11.XInternAtom(handle, b"WM_PROTOCOLS", 0)
    event.xclient.data[0] = x11.XInternAtom(handle, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(handle, window, 0, 0, ctypes.byref(event))
    x11.XFlush(handle)
    x11.XCloseDisplay(handle)


def test_closing_the_window_ends_the_run_cleanly(tmp_path: Path, display: dict) -> None:
    clip = make_video(tmp_path / "long.mp4", n=1500, width=320, height=240)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "rtseg", str(clip), "--show", "--realtime", "--model", "otsu",
                             "--output", str(out)], env=display, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        window = _wait_for_window(display)
        time.sleep(1.0)
        _close_like_a_window_manager(display, int(window))
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped (window closed)" in stderr and "Traceback" not in stderr and "QObject" not in stderr
    written = int(stderr.split("stopped (window closed) after ")[1].split()[0])
    assert 0 < written < 1500 and len(read_video(out)[0]) == written, "the output was finalized"
