"""The instance stage: label map -> instances -> tracks -> counts, once per frame.

:class:`InstanceEngine` wraps any engine and is one itself (as the keyframe engine is), so
the pipeline does not change. After the model (or label propagation) it finds the frame's
instances, tracks them and counts line crossings, and puts the result on
``frame.instances`` (a :class:`~rtseg.realtime.instances.records.FrameInstances`). Everything
downstream - the annotator, the stats JSONL, the HUD and the browser preview - reads that
record, so they always agree.

An engine that finds instances itself (an instance-segmentation model) sets
``frame.instances`` before this stage; they are then tracked as they are. (A frame whose labels
were propagated from a keyframe has none: its instances come from the label map.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rtseg.errors import ModelError
from rtseg.realtime.engine import Engine
from rtseg.realtime.frame import Frame
from rtseg.realtime.instances.components import find_instances
from rtseg.realtime.instances.counting import CountLine, LineCounter
from rtseg.realtime.instances.records import FrameInstances, thing_classes
from rtseg.realtime.instances.tracker import Tracker
from rtseg.realtime.wrapper import EngineWrapper


def makes_instances(engine: object) -> bool:
    """True when ``engine`` (or the engine it wraps) finds instances itself (an instance model)."""
    while engine is not None:
        if getattr(engine, "makes_instances", False):
            return True
        engine = getattr(engine, "engine", None)
    return False


class InstanceEngine(EngineWrapper):
    """An engine that adds tracked instances and counts to every frame.

    Args:
        engine: the model (any :class:`~rtseg.realtime.engine.Engine`).
        count_line: ``(x1, y1, x2, y2)`` of a counting line in frame pixels, or None.
        min_area: smallest instance in pixels; None: 0.04 % of the frame.
        split: split touching objects of one class (distance-transform cores).
        things: names (or indices) of the classes to split into instances; None: the model's
            ``things`` metadata, else car/pedestrian/bicyclist-like names.
        tracker: a configured :class:`Tracker` (default settings otherwise).

    The wrapper is stateful: consecutive calls are frames of one video (calling it
    segments the next frame; its instances are on :attr:`latest`).

    Example:
        >>> engine = InstanceEngine(load_model(), count_line=(0, 300, 960, 300))  # doctest: +SKIP
        >>> frame = Frame(image, 0); engine.segment(frame)  # doctest: +SKIP
        >>> frame.instances.counts  # doctest: +SKIP
        {'car': 3, 'pedestrian': 0, 'bicyclist': 0}
    """

    stateful = True

    def __init__(self, engine: Engine, *, count_line: Sequence[float] | None = None, min_area: int | None = None,
                 split: bool = False, things: Sequence[str] | None = None, tracker: Tracker | None = None) -> None:
        super().__init__(engine)
        self.makes_instances = makes_instances(engine)
        try:
            self.things = thing_classes(engine.info, tuple(things) if things is not None else None)
        except ValueError as exc:
            raise ModelError(f"{engine.info.name}: {exc}") from None
        if not self.things:
            raise ModelError(f"model {engine.info.name} has no thing classes to count (classes: "
                             f"{', '.join(engine.info.classes)}); name them in its 'things' metadata")
        self.class_names = list(self.things.values())
        self.min_area, self.split = min_area, split
        self.tracker = tracker or Tracker()
        self.line = CountLine(count_line) if count_line is not None else None
        self.counter = LineCounter(self.line, self.class_names) if self.line is not None else None
        self.latest: FrameInstances | None = None

    def segment(self, frame: Frame) -> None:
        """Run the model, then set ``frame.instances``; records the ``instances`` time."""
        self.engine.segment(frame)
        t0 = time.perf_counter()
        given = frame.instances
        if given is not None:
            found = given.instances
        else:
            found = find_instances(frame.labels, self.things, self.min_area, self.split)
        tracks = self.tracker.update(found)
        crossed = self.counter.update(tracks) if self.counter is not None else []
        if self.counter is not None:
            self.counter.forget({t.key for t in self.tracker.tracks})
        counts = {name: 0 for name in self.class_names}
        for inst in found:
            counts[inst.class_name] = counts.get(inst.class_name, 0) + 1
        unique = {name: self.tracker.unique.get(name, 0) for name in counts}
        frame.instances = self.latest = FrameInstances(
            found, counts, unique,
            crossings={d: dict(c) for d, c in self.counter.totals.items()} if self.counter is not None else None,
            crossed=crossed, line=(self.line.points, self.line.directions) if self.line is not None else None)
        frame.timings["instances"] = time.perf_counter() - t0
