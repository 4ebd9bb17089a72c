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


def test_window_opens_and_keys_pause_cycle_the_view_and_quit(tmp_path: Path, display: dict) -> None:
    clip = make_video(tmp_path / "long.mp4", n=1500, width=320, height=240, noise=True)
    stats, out = tmp_path / "s.jsonl", tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "rtseg", str(clip), "--show", "--model", "otsu",
                             "--stats", str(stats), "--output", str(out), "--quiet"],
                            env=display, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        window = ""
        deadline = time.time() + 20
        while not window and time.time() < deadline:
            window = _xdo(display, "search", "--name", "rtseg - ").split("\n")[0]
            time.sleep(0.1)
        assert window, "the window did not open"
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
