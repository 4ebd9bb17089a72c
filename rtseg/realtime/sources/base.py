"""What every source is: an iterator of Frames that releases its device or file when done."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtseg.realtime.frame import Frame

DEFAULT_MAX_PIXELS = 7680 * 4320  # 8K UHD; larger frames are refused before decoding


@dataclass
class SourceInfo:
    """What is known about a source before the first frame is read."""

    name: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None  # None when unknown (cameras, streams, some containers)
    start: float | None = None  # first presentation time, seconds (files)
    duration: float | None = None  # presentation duration of the video, seconds (files)
    passthrough_streams: list[Any] = field(default_factory=list)  # e.g. PyAV audio streams


class Source:
    """Base class: iterate to get Frames; ``close()`` (or ``with``) releases resources.

    Sources are iterated from one thread only (the pipeline's capture thread), which also
    closes them. ``live`` sources (cameras, network streams) are consumed with
    latest-frame semantics; file sources with back-pressure (no frame is dropped).
    """

    live: bool = False
    endless: bool = False  # a camera or live stream: its ending is news, not the end of the input
    info: SourceInfo

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file, device or connection. Safe to call twice."""

    def interrupt(self) -> None:
        """Ask a waiting iterator to end soon (called from another thread). Default: no-op."""

    def input_paths(self) -> list[Path]:
        """The files this source reads (outputs must never be one of them)."""
        return []

    @property
    def skipped(self) -> int:
        """Units of input that could not be decoded and were skipped (corrupt packets)."""
        return 0

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_pixel_cap(name: str, width: int, height: int, max_pixels: int) -> None:
    """Refuse frames over the pixel cap before any frame memory is allocated."""
    from rtseg.errors import SourceError

    if width <= 0 or height <= 0:
        raise SourceError(f"{name}: no picture size in the stream's header ({width}x{height}): no video in it, "
                          "or nothing is being published there yet")
    if width * height > max_pixels:
        raise SourceError(
            f"{name}: frame size {width}x{height} ({width * height} pixels) is over the cap of "
            f"{max_pixels} pixels (raise it with --max-pixels)")
