"""Annotated still images: one file, or one file per frame in a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks.atomic import write_image
from rtseg.realtime.sinks.base import Sink, prepare_output_dir, prepare_output_file


class ImageFileSink(Sink):
    """Write the annotated image to ``path`` (``single``: one image file) or ``path/NAME.png``."""

    def __init__(self, path: str | Path, single: bool) -> None:
        path = Path(path)
        self.single = single
        self.path = prepare_output_file(path, "output") if self.single else prepare_output_dir(path, "output")
        self._count = 0

    def write(self, frame: Frame, image: np.ndarray) -> None:
        if self.single and self._count:
            raise SinkError(f"{self.path} is a single image but the source has several; give a folder")
        target = self.path if self.single else self.path / f"{frame.name or f'{frame.index:06d}'}.png"
        write_image(target, image)
        self._count += 1
