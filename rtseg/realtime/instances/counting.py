"""Count objects crossing a line, in each direction.

An object crosses when its track's centre moves from one side of the line to the other
through the segment between the line's two points (not its extension). Near the line a
centre is on neither side: within ``margin`` pixels, or a quarter of the object's extent
across the line when that is more (the centre of a big segmented blob wobbles as its outline
changes). So an object jittering on the line counts once; one that crosses and comes back
counts once in each direction.

The two directions are named after the way an object moves: ``down``/``up`` for a line that
is more horizontal than vertical, ``right``/``left`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtseg.realtime.instances.tracker import Track


class CountLine:
    """The segment ``(x1, y1)``-``(x2, y2)`` in frame pixels.

    Example:
        >>> line = CountLine((0, 50, 100, 50))
        >>> line.directions, line.crossing((50, 40), (50, 60))
        (('down', 'up'), 'down')
    """

    def __init__(self, points: Sequence[float], margin: float = 2.0) -> None:
        if len(points) != 4:
            raise ValueError(f"a counting line needs x1, y1, x2, y2, got {list(points)}")
        x1, y1, x2, y2 = (float(v) for v in points)
        if (x1, y1) == (x2, y2):
            raise ValueError(f"a counting line needs two different points, got {list(points)}")
        self.points = (int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
        self.start = np.array([x1, y1])
        self.vector = np.array([x2 - x1, y2 - y1])
        self.length = float(np.linalg.norm(self.vector))
        normal = np.array([-self.vector[1], self.vector[0]]) / self.length  # y grows downwards
        horizontal = abs(self.vector[0]) >= abs(self.vector[1])
        # The positive side is the one the normal points to; name it by where that is on screen.
        if horizontal:
            self.normal = normal if normal[1] > 0 else -normal
            self.directions = ("down", "up")
        else:
            self.normal = normal if normal[0] > 0 else -normal
            self.directions = ("right", "left")
        self.margin = margin

    def side(self, point: Sequence[float], band: float = 0.0) -> int:
        """+1 (the side ``directions[0]`` goes to), -1, or 0 within ``max(margin, band)`` of the line."""
        distance = float(np.dot(np.asarray(point, float) - self.start, self.normal))
        return 0 if abs(distance) <= max(self.margin, band) else (1 if distance > 0 else -1)

    def band(self, box: Sequence[float]) -> float:
        """A quarter of a box's extent across the line (along its normal)."""
        width, height = box[2] - box[0], box[3] - box[1]
        return 0.25 * float(abs(width * self.normal[0]) + abs(height * self.normal[1]))

    def crossing(self, before: Sequence[float], after: Sequence[float], band: float = 0.0) -> str | None:
        """The direction of a move from ``before`` to ``after`` across the segment, or None."""
        s0, s1 = self.side(before, band), self.side(after, band)
        if s0 == 0 or s1 == 0 or s0 == s1 or not self.through(before, after):
            return None
        return self.directions[0] if s1 > 0 else self.directions[1]

    def through(self, before: Sequence[float], after: Sequence[float]) -> bool:
        """Whether the move meets the line within the segment (points on either side of it)."""
        p, q = np.asarray(before, float), np.asarray(after, float)
        d0 = float(np.dot(p - self.start, self.normal))
        d1 = float(np.dot(q - self.start, self.normal))
        if d0 == d1:
            return False
        hit = p + (q - p) * (d0 / (d0 - d1))  # where the move meets the line
        t = float(np.dot(hit - self.start, self.vector)) / self.length ** 2
        return 0.0 <= t <= 1.0


class LineCounter:
    """Crossings of a :class:`CountLine` by tracks, per direction and class, over a run.

    Each track remembers the last place it was clearly on one side; a crossing is counted when
    it is next seen clearly on the other side, for confirmed tracks only.

    Example:
        >>> counter = LineCounter(CountLine((0, 50, 100, 50)), ["car"])
        >>> track = Track(1, 0, "car", np.array([48.0, 38, 52, 42]), np.array([50.0, 40.0]), 16, id=7)
        >>> counter.update([track]); track.centroid = np.array([50.0, 60.0])
        []
        >>> counter.update([track]), counter.totals["down"]["car"]
        ([{'id': 7, 'class': 'car', 'direction': 'down'}], 1)
    """

    def __init__(self, line: CountLine, classes: Sequence[str]) -> None:
        self.line = line
        self.totals = {d: {c: 0 for c in classes} for d in line.directions}
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # track key -> (side, centre) when last clearly placed

    def update(self, tracks: Sequence[Track]) -> list[dict]:
        """Tracks seen in this frame -> the crossings they made since they were last clearly placed."""
        crossed = []
        alive = set()
        for track in tracks:
            alive.add(track.key)
            centre = track.centroid
            side = self.line.side(centre, self.line.band(track.box))
            if side == 0:
                continue  # on the line: wait until it is clearly past
            before = self._last.get(track.key)
            self._last[track.key] = (side, centre.copy())
            if before is None or before[0] == side or not self.line.through(before[1], centre):
                continue
            direction = self.line.directions[0] if side > 0 else self.line.directions[1]
            if track.id is not None:
                totals = self.totals[direction]
                totals[track.class_name] = totals.get(track.class_name, 0) + 1
                crossed.append({"id": track.id, "class": track.class_name, "direction": direction})
        return crossed

    def forget(self, keys: set[int]) -> None:
        """Drop the memory of tracks that no longer exist."""
        for key in list(self._last):
            if key not in keys:
                del self._last[key]
