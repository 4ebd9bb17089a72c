"""What every sink is: a context manager that takes rendered frames one by one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.frame import Frame


class Sink:
    """Base class. ``write`` is called from the render thread only; ``close`` finalizes."""

    def write(self, frame: Frame, image: np.ndarray) -> None:
        """Consume one frame and its rendered image."""
        raise NotImplementedError

    def poll(self) -> None:
        """Called on the render thread while the run is paused (e.g. to re-send the newest frame)."""

    def pump(self) -> None:
        """Called from the caller's (main) thread every few milliseconds while the run lasts,
        and once more after the render thread has closed the sinks (a window lives here)."""

    def close(self) -> None:
        """Finalize the output. Safe to call twice."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def prepare_output_dir(path: Path, what: str) -> Path:
    """Create ``path`` (a folder) if needed and check it is writable; one-line error if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"cannot create {what} folder {path}: {exc.strerror or exc}") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise SinkError(f"{what} folder is not writable: {path}")
    return path


def prepare_output_file(path: Path, what: str) -> Path:
    """Check the folder of an output file exists (or create it) and is writable."""
    prepare_output_dir(path.parent if str(path.parent) else Path("."), what)
    if path.is_dir():
        raise SinkError(f"{what} path is a folder, expected a file: {path}")
    return path
