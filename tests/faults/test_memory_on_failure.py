"""Issue #11 section 8: failed runs release their sessions, threads and buffers."""

import gc
import threading
from pathlib import Path

import numpy as np
import pytest

import rtseg
from rtseg.errors import SourceError
from rtseg.realtime.engine import OnnxEngine
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources import Source, SourceInfo

pytestmark = pytest.mark.timeout(120)


class BreaksAfterThreeFrames(Source):
    """A source whose read fails mid-run, after the model has been loaded and used."""

    def __init__(self) -> None:
        self.info = SourceInfo(name="flaky", fps=25.0, frame_count=10)

    def __iter__(self):
        for index in range(3):
            yield Frame(np.zeros((360, 480, 3), np.uint8), index)
        raise SourceError("flaky: read failed")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read the process size")
def test_fifty_failing_runs_do_not_grow_the_process(tmp_path: Path) -> None:
    """Before: +118 MB over 45 such calls (freed memory kept in per-thread malloc arenas)."""
    threads_before = threading.active_count()

    def fail_once() -> None:
        with pytest.raises(SourceError, match="flaky: read failed"):
            rtseg.process(BreaksAfterThreeFrames(), tmp_path / "out.mp4", progress=False)

    for _ in range(5):  # warm-up: imports, first arenas, codec tables
        fail_once()
    start = _rss_mb()
    for _ in range(50):
        fail_once()
    growth = _rss_mb() - start
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, OnnxEngine)], "an engine outlived its run"
    assert threading.active_count() == threads_before, "a run left a thread behind"
    assert growth < 25, f"the process grew by {growth:.1f} MB over 50 failed runs"
