"""Issue #16: Ctrl-C on the ``rtseg batch`` driver (a real process with its own local Ray).

The first signal stops submitting and lets running files finish; a stream is told to stop
at once and keeps what it recorded; at the drain deadline a running file is stopped with no
output. Either way no hidden temp file is left and only finished files have a final name.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from factories import make_channel_argmax_model, make_video, read_video

pytest.importorskip("ray", reason="rtseg batch needs Ray: pip install 'rtseg[ray]'")

from rtseg.batch.manifest import read_manifest  # noqa: E402

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


def start_batch(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rtseg", "batch", *argv, "--threads", "1", "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_temp_files(folder: Path, count: int, proc: subprocess.Popen, timeout: float = 40.0) -> None:
    """Until ``count`` hidden temp outputs exist below ``folder``: that many inputs are mid-file."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if len([p for p in folder.rglob(".*.tmp.*") if p.suffix in (".mp4", ".mkv")]) >= count:
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {count} temp outputs in {folder}: {proc.communicate()[1][-2000:]}")


def visible_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_ctrl_c_lets_the_running_file_finish_and_starts_no_other(tmp_path):
    model = make_channel_argmax_model(tmp_path / "channels.onnx")
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "v1.mp4", n=100, width=320, height=192, noise=True)
    for name in ("v2.mp4", "v3.mp4"):
        shutil.copy(videos / "v1.mp4", videos / name)
    out = tmp_path / "out"
    proc = start_batch(str(videos), "--out-dir", str(out), "--model", str(model), "--workers", "1", "--realtime")
    wait_for_temp_files(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=40)
    assert proc.returncode == 130, stderr
    records = sorted(read_manifest(out / "manifest.jsonl"), key=lambda r: r["status"])
    assert [r["status"] for r in records] == ["done", "stopped", "stopped"], records
    done = records[0]
    assert done["frames_out"] == 100 and len(read_video(Path(done["output"]))[0]) == 100
    assert all(r["error"] == "not started: the batch was stopped" for r in records[1:])
    assert visible_files(out) == sorted([Path(done["output"]).name, "manifest.jsonl"])
    assert not list(out.rglob(".*")), "no hidden temp file left"


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files in small chunks, slowly: a stream that lasts."""

    def copyfile(self, source, outputfile) -> None:
        while chunk := source.read(2048):
            outputfile.write(chunk)
            time.sleep(0.05)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slow_server(tmp_path: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SlowHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_stream_stops_and_keeps_its_output_a_file_past_the_deadline_leaves_none(tmp_path, slow_server):
    model = make_channel_argmax_model(tmp_path / "channels.onnx")
    make_video(tmp_path / "cam.mkv", n=400, width=160, height=96, noise=True)
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "long.mp4", n=400, width=160, height=96)
    out = tmp_path / "out"
    proc = start_batch(f"{slow_server}/cam.mkv", str(videos / "long.mp4"), "--out-dir", str(out), "--model",
                       str(model), "--workers", "2", "--realtime", "--drain-timeout", "2")
    wait_for_temp_files(out, 2, proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = proc.communicate(timeout=40)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 15
    records = {Path(r["output"]).name: r for r in read_manifest(out / "manifest.jsonl")}
    stream, file = records["cam.mkv"], records["long.mp4"]
    assert stream["status"] == "stopped" and stream["error"] is None
    host = f"127.0.0.1_{slow_server.rsplit(':', 1)[1]}"
    assert stream["output"] == str(out / host / "cam.mkv")
    assert 0 < stream["frames_out"] < 400 and len(read_video(out / host / "cam.mkv")[0]) == stream["frames_out"]
    assert (file["status"], file["error"]) == ("stopped", "stopped: the drain deadline passed")
    assert visible_files(out) == [f"{host}/cam.mkv", "manifest.jsonl"]
    assert not list(out.rglob(".*")), "no hidden temp file left"
