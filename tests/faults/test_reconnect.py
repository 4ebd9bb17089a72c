"""Issue #11 section 5: live sources that come back (fake cameras; the real RTSP server test
is tests/realtime/test_rtsp.py::test_a_killed_and_restarted_server_is_reconnected)."""

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import rtseg
from rtseg.errors import SourceError
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources import CameraSource, ReconnectingSource, Source, SourceInfo

from factories import FakeCapture

pytestmark = pytest.mark.timeout(30)


class Cameras:
    """Opens a camera that delivers a few frames then fails; the next open may fail too."""

    def __init__(self, plan: list[str]) -> None:
        self.plan, self.opened = list(plan), 0

    def __call__(self) -> CameraSource:
        self.opened += 1
        step = self.plan.pop(0) if self.plan else "gone"
        if step == "gone":
            raise SourceError("camera 0 could not be opened")
        return CameraSource(FakeCapture(n=5, fps=100, stall="fail"), name="cam")


def test_a_camera_that_stalls_is_reopened_and_the_run_goes_on(tmp_path: Path) -> None:
    cameras = Cameras(["ok", "gone", "ok", "gone", "gone", "gone"])
    source = ReconnectingSource(cameras, max_attempts=3, backoff=(0.05, 0.1))
    with pytest.raises(SourceError, match="cam: gave up after 3 reconnection attempts"):
        rtseg.process(source, stats=tmp_path / "s.jsonl", model="otsu", stall_timeout=0.3, progress=False)
    assert source.reconnects == 1 and cameras.opened == 6
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert len(lines) == 10, "both connections' frames were written and kept when the source gave up"


def test_the_first_open_fails_at_once() -> None:
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="could not be opened"):
        ReconnectingSource(Cameras(["gone"]))
    assert time.perf_counter() - t0 < 0.5


def test_camera_index_that_does_not_open_is_still_one_line_with_reconnect_on() -> None:
    with pytest.raises(SourceError, match="camera 97 could not be opened"):
        rtseg.process(97, stats="unused.jsonl", model="otsu", reconnect=True)


class Stream(Source):
    """A 'network stream' with timestamps that restart at 0 on every connection."""

    live = True

    def __init__(self, n: int) -> None:
        self.n, self.info = n, SourceInfo(name="stream", fps=25.0)

    def __iter__(self):
        for i in range(self.n):
            time.sleep(0.01)
            yield Frame(np.zeros((8, 8, 3), np.uint8), i, pts=i * 3600, time_base=Fraction(1, 90000))


def test_timestamps_go_on_across_connections() -> None:
    opened = []

    def open_stream() -> Stream:
        opened.append(1)
        return Stream(5)

    source = ReconnectingSource(open_stream, backoff=(0.2, 0.2))
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 10:
            source.interrupt()
    seconds = [f.seconds for f in frames]
    assert [f.index for f in frames] == list(range(10))
    assert all(b > a for a, b in zip(seconds, seconds[1:])), seconds
    gap = seconds[5] - seconds[4]
    assert 0.2 <= gap < 1.0, f"the outage shows as a pause of about the wall time, got {gap:.3f} s"
