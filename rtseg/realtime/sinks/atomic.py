"""Output files written safely: a temp file in the same folder, then ``os.replace``.

``os.replace`` swaps the name, so a symlink or hard link planted at the output name is
replaced, never written through, and an existing output is replaced only as a whole. The
temp file is created with ``O_CREAT | O_EXCL`` (``mkstemp``) inside the resolved folder.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import SinkError, first_line
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks.base import Sink

log = logging.getLogger(__name__)


def temp_path_beside(final: Path) -> Path:
    """A new, empty, hidden temp file in ``final``'s folder, keeping its suffix
    (muxers pick the container format from it)."""
    folder = Path(os.path.realpath(final.parent if str(final.parent) else "."))
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=folder)
    except OSError as exc:
        raise SinkError(f"cannot create a file in {folder}: {first_line(exc)}") from None
    os.close(fd)
    return Path(name)


def publish(temp: Path, final: Path) -> None:
    """Give ``temp`` the final name (atomically), with the permissions a new file would get."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, final)
    except OSError as exc:
        raise SinkError(f"cannot move the finished output to {final}: {first_line(exc)}") from None


def write_image(path: Path, image: np.ndarray, what: str = "image") -> None:
    """Encode ``image`` by ``path``'s suffix and write it through a temp file."""
    ok, data = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise SinkError(f"cannot encode {what} {path} (unsupported suffix?)")
    temp = temp_path_beside(path)
    try:
        with open(temp, "wb") as file:
            file.write(data.tobytes())
        publish(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise SinkError(f"cannot write {what} {path}: {first_line(exc)}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class PublishOnClose(Sink):
    """Run a file sink on a temp file and give it the final name when it closed cleanly.

    When a write or the finalization failed, the final name is left as it was (an earlier
    file there stays intact) and what was written is kept as ``NAME.partial.SUFFIX`` when
    it holds anything, so nothing written is lost. A sink that wrote nothing publishes nothing.

    Args:
        final: the output path the user asked for.
        open_sink: builds the real sink on the temp path it is given.
    """

    def __init__(self, final: Path, open_sink) -> None:
        self.final = Path(final)
        self.temp = temp_path_beside(self.final)
        try:
            self.inner: Sink = open_sink(self.temp)
        except BaseException:
            self.temp.unlink(missing_ok=True)
            raise
        self.failed = False
        self.partial: Path | None = None
        self._closed = False

    def write(self, frame: Frame, image: np.ndarray) -> None:
        try:
            self.inner.write(frame, image)
        except SinkError as exc:
            self.failed = True
            partial = self.final.with_name(f"{self.final.stem}.partial{self.final.suffix}")
            raise SinkError(f"{str(exc).replace(str(self.temp), str(self.final))} "
                            f"(what was written is kept in {partial})") from None
        except BaseException:
            self.failed = True
            raise

    def poll(self) -> None:
        self.inner.poll()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.inner.close()
        except BaseException:
            self.failed = True
            raise
        finally:
            self._settle()

    def _settle(self) -> None:
        wrote = self.temp.exists() and self.temp.stat().st_size > 0
        if not self.failed and wrote:
            publish(self.temp, self.final)
            return
        if wrote:
            self.partial = self.final.with_name(f"{self.final.stem}.partial{self.final.suffix}")
            os.replace(self.temp, self.partial)
            log.warning("output failed; what was written is kept in %s (%s left as it was)", self.partial,
                        self.final)
        else:
            self.temp.unlink(missing_ok=True)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # e.g. the video sink's audio report
