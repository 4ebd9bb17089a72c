"""Issue #11 section 8: failed runs release their sessions, threads and buffers.

Measured in a fresh process, as a user's script that retries failing inputs would be: the
test process itself has run hundreds of other tests and its heap is fragmented by them.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

SCRIPT = r'''
import gc, json, sys, threading
from pathlib import Path
import numpy as np
import rtseg
from rtseg.errors import SourceError
from rtseg.realtime.engine import OnnxEngine
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources import Source, SourceInfo


class BreaksAfterThreeFrames(Source):
    """A source whose read fails mid-run, after the model has been loaded and used."""

    def __init__(self):
        self.info = SourceInfo(name="flaky", fps=25.0, frame_count=10)

    def __iter__(self):
        for index in range(3):
            yield Frame(np.zeros((360, 480, 3), np.uint8), index)
        raise SourceError("flaky: read failed")


def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def fail_once():
    try:
        rtseg.process(BreaksAfterThreeFrames(), Path(sys.argv[1]) / "out.mp4", progress=False)
    except SourceError as exc:
        assert "flaky: read failed" in str(exc)
    else:
        raise AssertionError("the run did not fail")


threads = threading.active_count()
for _ in range(5):  # warm-up: imports, first arenas, codec tables
    fail_once()
start = rss_mb()
for _ in range(50):
    fail_once()
growth = rss_mb() - start
gc.collect()
print(json.dumps({"growth_mb": growth, "threads_left": threading.active_count() - threads,
                  "engines_alive": sum(isinstance(o, OnnxEngine) for o in gc.get_objects())}))
'''


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read the process size")
def test_fifty_failing_runs_do_not_grow_the_process(tmp_path: Path) -> None:
    """Before: +56 MB over 50 such calls (freed memory kept in per-thread malloc arenas)."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=170)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["engines_alive"] == 0, "an engine outlived its run"
    assert report["threads_left"] == 0, "a run left a thread behind"
    assert report["growth_mb"] < 25, f"the process grew by {report['growth_mb']:.1f} MB over 50 failed runs"
