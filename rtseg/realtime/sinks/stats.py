"""One JSON line per frame: timestamp, per-stage timings, per-class pixel share."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rtseg.errors import SinkError
from rtseg.realtime.confidence import UNKNOWN_NAME, mean_confidence, split_unknown
from rtseg.realtime.frame import Frame
from rtseg.realtime.sinks.base import Sink, prepare_output_file


class StatsSink(Sink):
    """Append per-frame analytics to a JSONL file (flushed per line, so a cut file is still valid).

    Each line: ``{"index", "name", "time", "inferred", "timings_ms": {stage: ms}, "class_share":
    {class: share}}`` where share is the fraction of the frame's pixels (0..1), for every class
    of the model, and ``inferred`` is false for a frame whose labels were propagated from a keyframe.
    Models with a ``confidence`` output add ``"confidence"`` (the mean top-class probability, 0..1)
    and ``"unknown"`` in ``class_share`` (pixels below ``--min-confidence``; 0 without it).

    With ``--instances`` each line also has ``"instances": [{"id", "class", "box": [x0, y0, x1, y1],
    "area"}]`` (``"score"`` from instance models; ``id`` null until a track is confirmed),
    ``"counts": {class: n}`` and, with a counting line, ``"crossed": [{"id", "class",
    "direction"}]``; the file ends with ``{"summary": {"unique_ids": {class: n}, "crossings":
    {direction: {class: n}}}}``.
    """

    def __init__(self, path: str | Path, class_names: tuple[str, ...]) -> None:
        self.path = prepare_output_file(Path(path), "stats")
        self.class_names = class_names
        self._instances = None  # the latest frame's FrameInstances, for the closing summary line
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write stats file {self.path}: {exc.strerror}") from None

    def write(self, frame: Frame, image: np.ndarray) -> None:
        counts, unknown = split_unknown(frame.labels, len(self.class_names))
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
        if frame.confidence is not None:  # models with a confidence output; unknown: below --min-confidence
            record["class_share"][UNKNOWN_NAME] = round(unknown / total, 6)
            record["confidence"] = round(mean_confidence(frame), 4)
        if frame.instances is not None:  # --instances: this frame's objects, counts and crossings
            record.update(frame.instances.to_record())
            self._instances = frame.instances
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:
            raise SinkError(f"writing {self.path} failed: {exc.strerror}") from None

    def close(self) -> None:
        if not self._file.closed and self._instances is not None:  # one last line: the run's totals
            try:
                self._file.write(json.dumps({"summary": self._instances.totals()}) + "\n")
            except OSError as exc:
                self._file.close()
                raise SinkError(f"writing {self.path} failed: {exc.strerror}") from None
        if not self._file.closed:
            self._file.close()
