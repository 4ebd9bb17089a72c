"""Per-frame label maps (pixel = class index) and colour masks as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.realtime.frame import Frame
from rtseg.realtime.render.views import colorize
from rtseg.realtime.sinks.atomic import write_image
from rtseg.realtime.sinks.base import Sink, prepare_output_dir


class MaskSink(Sink):
    """Write ``NAME.png`` (uint8 label map) and ``NAME_color.png`` (BGR colours) per frame.

    NAME is the source image's stem, or the zero-padded frame index for videos and cameras.
    """

    def __init__(self, folder: str | Path, lut: np.ndarray) -> None:
        self.folder = prepare_output_dir(Path(folder), "mask")
        self.lut = lut

    def write(self, frame: Frame, image: np.ndarray) -> None:
        stem = frame.name or f"{frame.index:06d}"
        write_image(self.folder / f"{stem}.png", frame.labels, "mask")
        write_image(self.folder / f"{stem}_color.png", colorize(frame.labels, self.lut), "mask")
