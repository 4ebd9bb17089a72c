"""The instance records that travel on a Frame: one per object, and the frame's counts.

The tracking stage (:mod:`rtseg.realtime.instances.stage`) fills them once per frame; the
annotator, the stats JSONL, the HUD and the browser preview all read the same records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rtseg.contract import ModelInfo

# Class names treated as things (countable objects) when a model's metadata has no ``things``.
DEFAULT_THINGS = frozenset({
    "car", "pedestrian", "bicyclist", "person", "rider", "cyclist", "bicycle", "motorcycle", "motorbike",
    "bus", "truck", "train", "van", "vehicle",
})


SHOW_ALL = 6  # the HUD and preview list every thing class up to this many, else only those seen


@dataclass
class Instance:
    """One object in one frame.

    Attributes:
        class_index: the label of its class.
        class_name: the class's name.
        box: ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive.
        mask: bool array of the box's size (``y1 - y0`` x ``x1 - x0``): the object's pixels.
        area: pixels in ``mask``.
        centroid: ``(x, y)`` of the mask's centre of mass, in frame pixels.
        score: detector confidence (instance models), None for instances from a label map.
        id: track ID, set once its track is confirmed (None before).

    Example:
        >>> inst = Instance.from_mask(3, "car", np.ones((2, 4), bool), (10, 20))
        >>> inst.box, inst.area, inst.centroid
        ((10, 20, 14, 22), 8, (11.5, 20.5))
    """

    class_index: int
    class_name: str
    box: tuple[int, int, int, int]
    mask: np.ndarray
    area: int
    centroid: tuple[float, float]
    score: float | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if self.mask.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"Instance.mask must be the box's size {(y1 - y0, x1 - x0)}, got {self.mask.shape}")

    @classmethod
    def from_mask(cls, class_index: int, class_name: str, mask: np.ndarray, offset: tuple[int, int] = (0, 0),
                  score: float | None = None) -> Instance:
        """An instance from a bool mask (cropped to its pixels here) placed at ``offset`` (x, y)."""
        ys, xs = np.nonzero(mask)
        if not len(xs):
            raise ValueError(f"an instance of {class_name!r} needs at least one pixel")
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        ox, oy = offset
        centroid = (float(xs.mean()) + ox, float(ys.mean()) + oy)
        return cls(class_index, class_name, (x0 + ox, y0 + oy, x1 + ox, y1 + oy),
                   np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=bool), int(len(xs)), centroid, score)

    def to_record(self) -> dict:
        """The JSONL record: ``{"id", "class", "box", "area"}`` (and ``"score"`` when it has one)."""
        record = {"id": self.id, "class": self.class_name, "box": list(self.box), "area": self.area}
        if self.score is not None:
            record["score"] = round(float(self.score), 4)
        return record


@dataclass
class FrameInstances:
    """A frame's instances and the run's counts up to and including this frame.

    Attributes:
        instances: the objects found in the frame.
        counts: instances in this frame, per thing class (every thing class listed).
        unique: distinct track IDs so far, per thing class.
        crossings: with a counting line: crossings so far, direction -> class -> count.
        crossed: the crossings in this frame: ``{"id", "class", "direction"}``.
        line: the counting line ``(x1, y1, x2, y2)`` and its two direction names, or None.
    """

    instances: list[Instance]
    counts: dict[str, int] = field(default_factory=dict)
    unique: dict[str, int] = field(default_factory=dict)
    crossings: dict[str, dict[str, int]] | None = None
    crossed: list[dict] = field(default_factory=list)
    line: tuple[tuple[int, int, int, int], tuple[str, str]] | None = None

    def to_record(self) -> dict:
        """What a frame's JSONL line gets: ``instances``, ``counts`` and, with a line, ``crossed``."""
        record: dict = {"instances": [i.to_record() for i in self.instances], "counts": dict(self.counts)}
        if self.crossings is not None:
            record["crossed"] = list(self.crossed)
        return record

    def totals(self) -> dict:
        """The run so far: ``{"unique_ids": {class: n}, "crossings": {direction: {class: n}}}``."""
        totals: dict = {"unique_ids": dict(self.unique)}
        if self.crossings is not None:
            totals["crossings"] = {d: dict(c) for d, c in self.crossings.items()}
        return totals

    def shown_classes(self) -> list[str]:
        """The classes worth showing: all of up to :data:`SHOW_ALL` classes, else those seen so far."""
        if len(self.counts) <= SHOW_ALL:
            return list(self.counts)
        return [name for name, n in self.counts.items() if n or self.unique.get(name)]

    def summary_lines(self) -> list[str]:
        """Short text for the HUD: counts now / distinct IDs so far, and the line's crossings."""
        parts = [f"{_short(name)} {self.counts[name]}/{self.unique.get(name, 0)}" for name in self.shown_classes()]
        lines = ["now/seen: " + "  ".join(parts)] if parts else []
        if self.crossings is not None:
            lines.append("line: " + "  ".join(f"{d} {sum(c.values())}" for d, c in self.crossings.items()))
        return lines

    def status(self) -> dict:
        """JSON-ready figures for the browser preview (the classes of :meth:`shown_classes`)."""
        shown = self.shown_classes()
        status = {"counts": {n: self.counts[n] for n in shown}, "unique_ids": {n: self.unique.get(n, 0) for n in shown}}
        if self.crossings is not None:
            status["crossings"] = {d: sum(c.values()) for d, c in self.crossings.items()}
        return status


def _short(name: str) -> str:
    return {"pedestrian": "ped", "bicyclist": "bike"}.get(name, name)


def thing_classes(info: ModelInfo, names: tuple[str, ...] | None = None) -> dict[int, str]:
    """Label -> name of the classes split into instances.

    ``names`` (given by the caller) wins; else the model's ``things`` metadata (a JSON list of
    class names or indices); else the classes whose names are in :data:`DEFAULT_THINGS`
    (car, pedestrian, bicyclist for the built-in road model).

    Raises:
        ValueError: ``things`` is malformed or names a class the model does not have.

    Example:
        >>> from rtseg.contract import CAMVID_CLASSES
        >>> thing_classes(ModelInfo(classes=CAMVID_CLASSES))
        {8: 'car', 9: 'pedestrian', 10: 'bicyclist'}
    """
    if names is None and "things" in info.extra:
        names = _things_metadata(info.extra)
    if names is None:
        return {i: n for i, n in enumerate(info.classes) if n.lower() in DEFAULT_THINGS}
    things = {}
    for name in names:
        if isinstance(name, int) or str(name).isdigit():
            index = int(name)
            if not 0 <= index < max(len(info.classes), 1):
                raise ValueError(f"thing class {index} is not a class of model {info.name} "
                                 f"({len(info.classes)} classes)")
        elif name in info.classes:
            index = info.classes.index(name)
        else:
            raise ValueError(f"thing class {name!r} is not a class of model {info.name}; "
                             f"classes: {', '.join(info.classes)}")
        things[index] = info.classes[index] if index < len(info.classes) else f"class{index}"
    return dict(sorted(things.items()))


def _things_metadata(meta: Mapping[str, str]) -> tuple:
    try:
        value = json.loads(meta["things"])
    except json.JSONDecodeError:
        raise ValueError(f"metadata 'things' is not valid JSON: {meta['things']!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ValueError(f"metadata 'things' must be a JSON list of class names or indices, got {meta['things']!r}")
    return tuple(value)
