"""Keep an ID on each object across frames: IoU association with a centroid fallback and a
short memory.

Per class, every live track predicts its box one frame on (constant velocity of its centre)
and is matched greedily to this frame's instances, best pair first: by box IoU, or, for pairs
that do not overlap (small or fast objects), by centre distance within about the object's size
(always ranked below any overlapping pair). A track missed for more than ``max_misses`` frames
is forgotten; a new track gets its ID once it has been seen ``min_hits`` frames in a row, so a
one-frame blob of segmentation noise never takes an ID.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rtseg.realtime.instances.records import Instance


@dataclass
class Track:
    """One object followed over frames.

    Attributes:
        key: internal number, unique in the tracker (set at birth; tentative tracks have one too).
        id: the public ID, set when confirmed (None while tentative).
        class_index, class_name: its class.
        box: last seen ``(x0, y0, x1, y1)``, float.
        centroid: last seen centre of mass ``(x, y)``.
        velocity: centre displacement per frame, smoothed.
        hits: frames matched; misses: frames missed since the last match.
    """

    key: int
    class_index: int
    class_name: str
    box: np.ndarray
    centroid: np.ndarray
    area: int
    id: int | None = None
    velocity: np.ndarray | None = None
    hits: int = 1
    misses: int = 0

    def predicted(self) -> tuple[np.ndarray, np.ndarray]:
        """(box, centroid) expected in the next frame."""
        shift = self.velocity * (self.misses + 1) if self.velocity is not None else np.zeros(2)
        return self.box + np.tile(shift, 2), self.centroid + shift


class Tracker:
    """IoU/centroid tracker; :meth:`update` once per frame sets each instance's ``id``.

    Args:
        iou_min: smallest box IoU (against the predicted box) that matches.
        distance: without overlap, match centres closer than this x the larger box side.
        max_misses: frames a track survives unseen (the short memory).
        min_hits: frames in a row before a track gets its ID.

    Example:
        >>> tracker = Tracker(min_hits=1)
        >>> blob = np.ones((4, 4), bool)
        >>> [tracker.update([Instance.from_mask(1, "car", blob, (x, 0))])[0].id for x in (0, 2, 4)]
        [1, 1, 1]
    """

    def __init__(self, iou_min: float = 0.1, distance: float = 1.0, max_misses: int = 8, min_hits: int = 2) -> None:
        if min_hits < 1 or max_misses < 0:
            raise ValueError(f"min_hits must be >= 1 and max_misses >= 0, got {min_hits} and {max_misses}")
        self.iou_min, self.distance, self.max_misses, self.min_hits = iou_min, distance, max_misses, min_hits
        self.tracks: list[Track] = []
        self.unique: Counter[str] = Counter()  # confirmed IDs per class, over the run
        self._keys = itertools.count(1)
        self._ids = itertools.count(1)

    def update(self, instances: list[Instance]) -> list[Track]:
        """Match ``instances`` to the tracks and set their ``id`` (None while tentative).

        Returns:
            the track of each instance, in the same order.
        """
        matched: dict[int, Track] = {}  # index in instances -> track
        for cls in {i.class_index for i in instances} | {t.class_index for t in self.tracks}:
            dets = [k for k, i in enumerate(instances) if i.class_index == cls]
            tracks = [t for t in self.tracks if t.class_index == cls]
            for d, t in self._associate([instances[k] for k in dets], tracks):
                matched[dets[d]] = tracks[t]
        seen, result = set(), []
        for k, inst in enumerate(instances):
            track = matched.get(k)
            if track is None:
                track = Track(next(self._keys), inst.class_index, inst.class_name, np.array(inst.box, float),
                              np.array(inst.centroid), inst.area)
                self.tracks.append(track)
            else:
                self._advance(track, inst)
            seen.add(track.key)
            if track.id is None and track.hits >= self.min_hits:
                track.id = next(self._ids)
                self.unique[track.class_name] += 1
            inst.id = track.id
            result.append(track)
        for track in self.tracks:
            if track.key not in seen:
                track.misses += 1
        # A tentative track dies at its first miss; a confirmed one after max_misses.
        self.tracks = [t for t in self.tracks if t.misses == 0 or (t.id is not None and t.misses <= self.max_misses)]
        return result

    def _advance(self, track: Track, inst: Instance) -> None:
        centroid = np.array(inst.centroid)
        step = (centroid - track.centroid) / (track.misses + 1)
        track.velocity = step if track.velocity is None else 0.5 * track.velocity + 0.5 * step
        track.box, track.centroid, track.area = np.array(inst.box, float), centroid, inst.area
        track.hits += 1
        track.misses = 0

    def _associate(self, dets: list[Instance], tracks: list[Track]) -> list[tuple[int, int]]:
        """Greedy one-to-one pairs (detection, track), best score first."""
        if not dets or not tracks:
            return []
        boxes = np.array([d.box for d in dets], float)
        centres = np.array([d.centroid for d in dets], float)
        predicted = [t.predicted() for t in tracks]
        tboxes = np.array([p[0] for p in predicted])
        tcentres = np.array([p[1] for p in predicted])
        iou = box_iou(boxes, tboxes)
        gap = np.linalg.norm(centres[:, None] - tcentres[None], axis=2)
        sides = np.maximum((boxes[:, 2:] - boxes[:, :2]).max(1)[:, None], (tboxes[:, 2:] - tboxes[:, :2]).max(1)[None])
        near = 1.0 - gap / (self.distance * sides)
        # Overlap ranks above any centre-only match (scores 1 + IoU vs 0..1).
        score = np.where(iou >= self.iou_min, 1.0 + iou, np.where(near > 0, near, -1.0))
        pairs = []
        used_d, used_t = set(), set()
        for flat in np.argsort(-score, axis=None):
            d, t = divmod(int(flat), len(tracks))
            if score[d, t] < 0:
                break
            if d in used_d or t in used_t:
                continue
            used_d.add(d)
            used_t.add(t)
            pairs.append((d, t))
        return pairs


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N x 4) with every box in ``b`` (M x 4), ``x0, y0, x1, y1``."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)
