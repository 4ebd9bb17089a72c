"""One JSON line per frame: timestamp, per-stage timings, per-class pixel share."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks.base import Sink, prepare_output_file


class StatsSink(Sink):
    """Append per-frame analytics to a JSONL file (flushed per line, so a cut file is still valid).

    Each line: ``{"index", "name", "time", "inferred", "timings_ms": {stage: ms}, "class_share":
    {class: share}}`` where share is the fraction of the frame's pixels (0..1), for every class
    of the model, and ``inferred`` is false for a frame whose labels were propagated from a keyframe.
    """

    def __init__(self, path: str | Path, class_names: tuple[str, ...]) -> None:
        self.path = prepare_output_file(Path(path), "stats")
        self.class_names = class_names
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write stats file {self.path}: {exc.strerror}") from None

    def write(self, frame: Frame, image: np.ndarray) -> None:
        counts = np.bincount(frame.labels.ravel(), minlength=len(self.class_names))
        total = max(1, frame.labels.size)
        names = list(self.class_names) + [f"class{i}" for i in range(len(self.class_names), len(counts))]
        record = {
            "index": frame.index,
            "name": frame.name,
            "time": frame.seconds,
            "inferred": frame.inferred,
            "latency_ms": round((time.perf_counter() - frame.capture_time) * 1000, 3),
            "timings_ms": {k: round(v * 1000, 3) for k, v in frame.timings.items()},
            "class_share": {names[i]: round(int(c) / total, 6) for i, c in enumerate(counts)},
        }
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:
            raise SinkError(f"writing {self.path} failed: {exc.strerror}") from None

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
