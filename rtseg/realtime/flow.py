"""Dense optical flow for carrying labels between frames: OpenCV DIS on a small grey image.

Flows here are *backward* maps: ``back[y, x] = (dx, dy)`` says that pixel ``(x, y)`` of the
newer frame shows what was at ``(x + dx, y + dy)`` in the older one, so warping is one
``cv2.remap``. A pixel is *tracked* when the forward-backward check passes (Sundaram et al.,
ECCV 2010: the forward flow at the matched point undoes the backward flow) and the two grey
values agree; occlusions, new content and scene cuts fail it.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_WIDTH = 320  # flow is computed at most this wide (a third of a 960-wide frame: ~2 ms, 0.05 points of agreement)


class FlowField:
    """A backward flow at flow resolution and its tracked mask.

    Attributes:
        back: h x w x 2 float32 offsets in flow pixels (newer -> older frame).
        valid: h x w bool, True where the pixel is tracked.
        scale: flow pixels per image pixel.
        mismatch: for a frame-to-frame step, the share of pixels failing either check
            anywhere (a scene-cut signal); 0 for composed fields.
    """

    def __init__(self, back: np.ndarray, valid: np.ndarray, scale: float, mismatch: float = 0.0) -> None:
        self.back, self.valid, self.scale, self.mismatch = back, valid, scale, mismatch
        self._cache: dict[tuple, np.ndarray | tuple[np.ndarray, np.ndarray]] = {}  # full-size maps, per size

    @classmethod
    def identity(cls, shape: tuple[int, int], scale: float) -> FlowField:
        """Zero motion, everything tracked (a keyframe's own flow)."""
        return cls(np.zeros((*shape, 2), np.float32), np.ones(shape, bool), scale)

    @property
    def untracked(self) -> float:
        """Fraction of pixels that failed the check."""
        return 1.0 - float(self.valid.mean())

    @property
    def motion(self) -> float:
        """Mean displacement over tracked pixels, in image pixels."""
        if not self.valid.any():
            return 0.0
        return float(cv2.magnitude(*cv2.split(self.back))[self.valid].mean()) / self.scale

    def then(self, step: FlowField) -> FlowField:
        """Compose: ``self`` maps frame B -> A, ``step`` maps C -> B; returns C -> A."""
        mx, my = _maps(step.back)
        carried = cv2.remap(self.back, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.remap(self.valid.view(np.uint8), mx, my, cv2.INTER_NEAREST, borderValue=0)
        return FlowField(step.back + carried, step.valid & valid.astype(bool), self.scale)

    def warp(self, labels: np.ndarray, fill: int | None = None) -> np.ndarray:
        """Carry a label map (H x W, or H x W x C uint8) of the older frame to the newer one.

        Nearest neighbour, at the label map's own size (the image's or the flow's). ``fill``:
        the value for untracked pixels; None keeps the label the flow points at.
        """
        h, w = labels.shape[:2]
        mx, my = self._maps_at(h, w)
        out = cv2.remap(labels, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        if fill is not None:
            out[self.lost_mask(h, w)] = fill
        return out

    def _maps_at(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Sampling maps at ``h`` x ``w`` (cached: a frame's labels and confidence share them)."""
        cache = self._cache
        if (h, w, "maps") not in cache:
            fh, fw = self.back.shape[:2]
            mx, my = _maps(self.back)
            if (h, w) != (fh, fw):  # flow-pixel centres -> label-pixel centres (affine, so before the resize)
                mx = cv2.resize((mx + 0.5) * np.float32(w / fw) - 0.5, (w, h), interpolation=cv2.INTER_LINEAR)
                my = cv2.resize((my + 0.5) * np.float32(h / fh) - 0.5, (w, h), interpolation=cv2.INTER_LINEAR)
            cache[h, w, "maps"] = mx, my
        return cache[h, w, "maps"]

    def lost_mask(self, h: int, w: int) -> np.ndarray:
        """The untracked mask (bool) at ``h`` x ``w``, nearest neighbour."""
        cache = self._cache
        if (h, w, "lost") not in cache:
            lost = ~self.valid
            if lost.shape != (h, w):
                lost = cv2.resize(lost.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)
            cache[h, w, "lost"] = lost
        return cache[h, w, "lost"]

    def changed(self, labels: np.ndarray) -> float:
        """Share of pixels whose label this flow changes (``labels`` at flow size): motion where it matters."""
        return float(np.count_nonzero(self.warp(labels) != labels)) / labels.size


class FlowTracker:
    """Backward flow between consecutive frames with a forward-backward check.

    Args:
        width: compute flow at most this wide (the image is shrunk, never enlarged).
        preset: a ``cv2.DISOPTICAL_FLOW_PRESET_*``.
        grey_tolerance: grey levels (0..255) a tracked pixel may change by.
        fb_tolerance: forward-backward mismatch allowed, in flow pixels, plus 5 % of the motion.
        texture: gradient magnitude under which the forward-backward check is not applied:
            flow in flat areas (sky, road) is ambiguous but carries flat labels, so it is
            harmless there; the grey check still applies.

    Example:
        >>> tracker = FlowTracker()
        >>> small = tracker.prepare(image)  # doctest: +SKIP
        >>> field = tracker.step(previous_small, small, tracker.scale_for(image.shape))  # doctest: +SKIP
    """

    def __init__(self, width: int = FLOW_WIDTH, preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                 grey_tolerance: float = 24.0, fb_tolerance: float = 1.5, texture: float = 40.0) -> None:
        self.width = width
        self.grey_tolerance, self.fb_tolerance, self.texture = grey_tolerance, fb_tolerance, texture
        self._dis = cv2.DISOpticalFlow_create(preset)

    def scale_for(self, shape: tuple[int, ...]) -> float:
        """Flow pixels per image pixel for an image of ``shape``."""
        return min(1.0, self.width / shape[1])

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """BGR image -> the small grey image flow is computed on."""
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = self.scale_for(image.shape)
        if scale < 1.0:
            size = (max(8, round(image.shape[1] * scale)), max(8, round(image.shape[0] * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def step(self, older: np.ndarray, newer: np.ndarray, scale: float) -> FlowField:
        """The checked backward flow from ``newer`` to ``older`` (both from :meth:`prepare`).

        The field's ``mismatch`` is the share of pixels failing either check anywhere (flat
        areas included): around 0.2 between frames of one shot, above 0.8 across a cut.
        """
        back = self._dis.calc(newer, older, None)
        fwd = self._dis.calc(older, newer, None)
        mx, my = _maps(back)
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        error = cv2.magnitude(*cv2.split(back + fwd_at))
        motion = cv2.magnitude(*cv2.split(back))
        inconsistent = error > self.fb_tolerance + 0.05 * motion
        seen = cv2.remap(older, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        changed = cv2.absdiff(cv2.blur(seen, (3, 3)), cv2.blur(newer, (3, 3))) > self.grey_tolerance
        h, w = newer.shape
        outside = (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
        gradient = cv2.magnitude(cv2.Sobel(newer, cv2.CV_32F, 1, 0), cv2.Sobel(newer, cv2.CV_32F, 0, 1))
        textured = cv2.blur(gradient, (5, 5)) > self.texture
        lost = (inconsistent & textured) | changed | outside
        mismatch = float((inconsistent | changed).mean())
        return FlowField(back, ~lost, scale, mismatch=mismatch)


def _maps(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling maps (x, y) for cv2.remap from h x w x 2 offsets."""
    h, w = offsets.shape[:2]
    dx, dy = cv2.split(offsets)
    dx += np.arange(w, dtype=np.float32)[None, :]
    dy += np.arange(h, dtype=np.float32)[:, None]
    return dx, dy
