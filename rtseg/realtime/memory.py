"""Give freed memory back to the OS after a run.

Each run starts threads (the pipeline's, onnxruntime's pool) whose allocations land in
glibc's per-thread malloc arenas; when the run ends the memory is freed but stays in those
arenas, so a process that calls :func:`rtseg.process` many times (or keeps retrying a
failing input) grows by megabytes per call. ``malloc_trim(0)`` returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only; musl has no malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return freed heap memory to the OS where the C library can (glibc); else a no-op."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
