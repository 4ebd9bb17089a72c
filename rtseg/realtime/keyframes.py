"""Keyframe inference: run the model on some frames, carry its labels to the others by motion.

:class:`KeyframeEngine` wraps any engine and is one itself, so the pipeline does not change:
every frame still comes out, in order, with its timestamps. With ``every=N`` the model runs
on every N-th frame; the frames between get the last keyframe's label map warped by dense
optical flow (:mod:`rtseg.realtime.flow`: DIS on a small grey image, forward-backward
checked, composed frame to frame so sub-pixel motion adds up). A keyframe is forced early
when too much of the image is no longer tracked (occlusion, new content, a scene cut).
``every="auto"`` runs the model when the motion since the last keyframe has moved more than
``auto_change`` of its labels (flow measured where labels change, not in flat areas), when
too much is untracked, or after ``auto_max`` frames.

``smooth=True`` adds hysteresis per pixel, in the scene's frame of reference: the previous
keyframe's shown labels are carried to the new keyframe by the same flow, and a pixel takes
the model's new label only once it has been seen ``persist`` model outputs in a row (one-off
flicker never shows; a real change shows one model output late).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from rtseg.realtime.engine import Engine
from rtseg.realtime.flow import FlowField, FlowTracker
from rtseg.realtime.frame import Frame
from rtseg.realtime.stats import PipelineStats

NO_LABEL = 255  # an untracked pixel of the previous keyframe: no history (so class 255 is never smoothed)


@dataclass
class _Key:
    """A keyframe's shown labels, its smoothing counters and the flow from the current frame back to it."""

    labels: np.ndarray
    field: FlowField
    count: np.ndarray | None = None  # with smoothing: model outputs in a row that disagreed with ``labels``
    small: np.ndarray | None = None  # for ``auto``: the labels at flow size
    fresh: bool = True  # the current frame is this keyframe (no warp needed)
    confidence: np.ndarray | None = None  # the model's confidence map, carried like the labels


class KeyframeEngine:
    """An engine that runs ``engine`` on keyframes and propagates labels in between.

    Args:
        engine: the model (any :class:`~rtseg.realtime.engine.Engine`).
        every: run the model every N-th frame (1: every frame), or ``"auto"``.
        smooth: temporal smoothing of labels (hysteresis over model outputs, motion-compensated).
        stats: where to count inferred and propagated frames (the HUD reads it).
        max_untracked: with ``every=N``, a keyframe comes early when more than this share of
            pixels is untracked since the last one.
        cut: share of pixels failing the flow checks from one frame to the next (flat areas
            included) that counts as a scene cut: a keyframe, and the smoothing history is
            dropped. About 0.2 within a shot (at most 0.5 on the road clip), above 0.8 across a cut.
        auto_max, auto_change, auto_untracked: ``auto`` runs the model after ``auto_max``
            frames, or once the flow since the keyframe changes more than ``auto_change`` of
            its labels, or more than ``auto_untracked`` of the pixels are untracked.
        persist: with ``smooth``, model outputs in a row a new label needs before it shows.

    Labels are carried with nearest-neighbour warping, so a model's label output works as
    well as logits. The wrapper is stateful: consecutive calls are frames of one video.

    Example:
        >>> engine = KeyframeEngine(load_model("otsu"), every=3)  # doctest: +SKIP
        >>> labels = [engine(image) for image in video_frames]  # doctest: +SKIP
    """

    def __init__(self, engine: Engine, every: int | str = 1, smooth: bool = False, *,
                 stats: PipelineStats | None = None, max_untracked: float = 0.3, cut: float = 0.7,
                 auto_max: int = 8, auto_change: float = 0.022, auto_untracked: float = 0.12,
                 persist: int = 2, tracker: FlowTracker | None = None) -> None:
        if every != "auto" and not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be a whole number >= 1 or 'auto', got {every!r}")
        self.engine, self.every, self.smooth, self.stats = engine, every, smooth, stats
        self.info, self.provider = engine.info, engine.provider
        self.path = getattr(engine, "path", None)
        self.max_untracked, self.cut = max_untracked, cut
        self.auto_max, self.auto_change, self.auto_untracked = auto_max, auto_change, auto_untracked
        self.persist = persist
        self.tracker = tracker or FlowTracker()
        self.tracking = every != 1 or smooth
        self.reasons: Counter[str] = Counter()  # why each keyframe ran ("start", "every", "cut", ...)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames (the next frame is a keyframe)."""
        self._key: _Key | None = None
        self._previous: np.ndarray | None = None
        self._since = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Label map of the next frame of a video (see :meth:`segment`)."""
        frame = Frame(image=image, index=0)
        self.segment(frame)
        return frame.labels

    def segment(self, frame: Frame) -> None:
        """Set ``frame.labels`` and ``frame.inferred``; records flow/propagate timings."""
        if not self.tracking:
            self.engine.segment(frame)
            self._count(frame, True)
            return
        t0 = time.perf_counter()
        small = self.tracker.prepare(frame.image)
        if self._previous is not None and self._previous.shape != small.shape:
            self.reset()
        scale = self.tracker.scale_for(frame.image.shape)
        step = self.tracker.step(self._previous, small, scale) if self._previous is not None else None
        self._previous = small
        if step is not None and self._key is not None:
            self._key.field, self._key.fresh = self._key.field.then(step), False
        reason = self._reason(step)
        t1 = time.perf_counter()
        if reason is not None:
            self.reasons[reason] += 1
            self.engine.segment(frame)  # records its own preprocess/infer/postprocess times
        t2 = time.perf_counter()
        if reason is not None:
            previous = None if reason == "cut" else self._key
            self._key = self._keyframe(frame.labels, FlowField.identity(small.shape, scale), previous)
            self._key.confidence = frame.confidence
            if self.every == "auto":
                self._key.small = cv2.resize(self._key.labels, small.shape[::-1], interpolation=cv2.INTER_NEAREST)
            self._since = 0
        self._since += 1
        key = self._key
        frame.labels = key.labels if key.fresh else key.field.warp(key.labels)
        if key.confidence is not None:
            frame.confidence = key.confidence if key.fresh else key.field.warp(key.confidence)
        frame.timings["flow"] = t1 - t0
        frame.timings["propagate"] = time.perf_counter() - t2
        self._count(frame, reason is not None)

    def _reason(self, step: FlowField | None) -> str | None:
        """Why this frame must be a keyframe, or None to propagate."""
        if step is None or self._key is None:
            return "start"
        if step.mismatch > self.cut:
            return "cut"
        field = self._key.field
        if self.every == "auto":
            if self._since >= self.auto_max:
                return "max"
            if field.untracked > self.auto_untracked:
                return "untracked"
            if field.changed(self._key.small) > self.auto_change:
                return "moved"
            return None
        if self._since >= self.every:
            return "every"
        if field.untracked > self.max_untracked:
            return "untracked"
        return None

    def _keyframe(self, labels: np.ndarray, field: FlowField, previous: _Key | None) -> _Key:
        """A new keyframe; with smoothing, its labels pass the hysteresis against the previous one."""
        if not self.smooth:
            return _Key(labels, field)
        if previous is None:
            return _Key(labels, field, np.zeros_like(labels))
        carried = previous.field.warp(np.dstack([previous.labels, previous.count]), fill=NO_LABEL)
        shown, count = carried[..., 0], carried[..., 1]
        same = shown == labels
        fresh = shown == NO_LABEL  # untracked: no history, take the model's label
        count = np.where(same | fresh, 0, count + 1).astype(np.uint8)
        take = same | fresh | (count >= self.persist)
        count[take] = 0
        return _Key(np.where(take, labels, shown), field, count)

    def _count(self, frame: Frame, inferred: bool) -> None:
        frame.inferred = inferred
        if self.stats is not None:
            self.stats.segmented_frame(inferred)
