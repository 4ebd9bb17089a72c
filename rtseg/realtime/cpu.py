"""How many cores this process may use, and OpenCV's share of them during a run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# On small machines the pipeline's own threads (capture, inference, render) already fill the
# cores, so OpenCV's thread pool only adds hand-over cost to small operations (resize, remap,
# LUT, blend): one OpenCV thread made --infer-every 3 about 5 % faster on 2 cores and changed
# nothing with every-frame inference (docs/performance.md).
SMALL_MACHINE_CORES = 4


@contextmanager
def opencv_threads_for_pipeline() -> Iterator[None]:
    """Run the block with one OpenCV thread on machines with up to 4 cores, then restore
    OpenCV's setting (it is process-wide)."""
    import cv2

    previous = cv2.getNumThreads()
    if available_cores() <= SMALL_MACHINE_CORES:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
