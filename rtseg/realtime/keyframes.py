"""Keyframe inference: run the model on some frames, carry its labels to the others by motion.

:class:`KeyframeEngine` wraps any engine and is one itself, so the pipeline does not change:
every frame still comes out, in order, with its timestamps. With ``every=N`` the model runs
on every N-th frame; the frames between get the last keyframe's label map warped by dense
optical flow (:mod:`rtseg.realtime.flow`: DIS on a small grey image, forward-backward
checked, composed frame to frame so sub-pixel motion adds up). A keyframe is forced early
when too much of the image is no longer tracked (occlusion, new content, a scene cut).
``every="auto"`` runs the model when the motion since the last keyframe has moved more than
``auto_change`` of its labels (flow measured where labels change, not in flat areas), when
too much is untracked, when the keyframe's confidence carried by the flow (untracked pixels
count as 0) has fallen more than ``auto_confidence`` below the keyframe's own, or after
``auto_max`` frames. On a live source (``behind`` set) ``auto`` also propagates instead of
running the model when the frame is already older than ``behind`` seconds (reason
``"behind"``), but never past ``auto_max`` frames or across a scene cut.

``smooth=True`` is a confidence-weighted vote per pixel, in the scene's frame of reference:
each shown label carries a *support* (0..255), carried by the flow with it. At each model
output the support is multiplied by ``memory`` and gains ``1 - memory`` times the model's
confidence when the model agrees, or loses ``challenge`` times that when it says something
else; the pixel takes the model's label when the support goes below zero (its new support
is what is left over).
One-off low-confidence flicker never shows; a confident or lasting change shows one model
output late. Untracked pixels take the model's label. Models without a confidence output
vote with a constant 128 (then: a new label shows after two outputs in a row).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from rtseg.realtime.engine import Engine
from rtseg.realtime.flow import FlowField, FlowTracker
from rtseg.realtime.frame import Frame
from rtseg.realtime.stats import PipelineStats
from rtseg.realtime.wrapper import EngineWrapper

NO_CONFIDENCE = 128  # the vote of a model without a confidence output (uint8 probability)
DEFERRABLE = ("moved", "untracked", "confidence")  # auto's reasons a late live frame may skip


def live_budget(source: object | None) -> float | None:
    """How old (seconds) a frame may be before ``auto`` stops running the model on it: one frame
    interval for sources that deliver in real time (cameras, streams, ``--live`` and
    ``--realtime`` files); None for files read as fast as they decode (every keyframe runs)."""
    from rtseg.realtime.sources import PacedSource

    if source is None or not (getattr(source, "live", False) or isinstance(source, PacedSource)):
        return None
    fps = getattr(getattr(source, "info", None), "fps", None)
    return 1.0 / (fps if fps and fps > 0 else 25.0)


@dataclass
class _Key:
    """A keyframe's shown labels, its smoothing support and the flow from the current frame back to it."""

    labels: np.ndarray
    field: FlowField
    support: np.ndarray | None = None  # with smoothing: the shown labels' support, uint8
    small: np.ndarray | None = None  # for ``auto``: the labels at flow size
    fresh: bool = True  # the current frame is this keyframe (no warp needed)
    confidence: np.ndarray | None = None  # the model's confidence map, carried like the labels
    small_confidence: np.ndarray | None = None  # for ``auto``: the confidence at flow size
    mean_confidence: float = 0.0  # for ``auto``: its mean, 0..1


class KeyframeEngine(EngineWrapper):
    """An engine that runs ``engine`` on keyframes and propagates labels in between.

    Args:
        engine: the model (any :class:`~rtseg.realtime.engine.Engine`).
        every: run the model every N-th frame (1: every frame), or ``"auto"``.
        smooth: temporal smoothing of labels (a confidence-weighted vote, motion-compensated).
        stats: where to count inferred and propagated frames (the HUD reads it).
        max_untracked: with ``every=N``, a keyframe comes early when more than this share of
            pixels is untracked since the last one.
        cut: share of pixels failing the flow checks from one frame to the next (flat areas
            included) that counts as a scene cut: a keyframe, and the smoothing history is
            dropped. About 0.2 within a shot (at most 0.5 on the road clip), above 0.8 across a cut.
        auto_max, auto_change, auto_untracked, auto_confidence: ``auto`` runs the model after
            ``auto_max`` frames, or once the flow since the keyframe changes more than
            ``auto_change`` of its labels, more than ``auto_untracked`` of the pixels are
            untracked, or the carried confidence (mean, 0..1, untracked pixels 0) is more than
            ``auto_confidence`` below the keyframe's. Chosen on frames 120-220 of the demo clip
            (docs/performance.md), not on the frames the benchmark reports.
        behind: live sources: with ``auto``, a frame whose capture is more than this many
            seconds old propagates instead of running the model for ``moved``, ``untracked`` or
            ``confidence`` (None: never; the app sets one frame interval for live and paced sources).
        clock: the clock ``behind`` compares ``frame.capture_time`` with (tests pass a fake one).
        memory, challenge: with ``smooth``, how much of a pixel's support is kept per model
            output, and how much more a disagreeing vote weighs than an agreeing one.

    Labels are carried with nearest-neighbour warping, so a model's label output works as
    well as logits. The wrapper is stateful: consecutive calls are frames of one video.

    Example:
        >>> engine = KeyframeEngine(load_model("otsu"), every=3)  # doctest: +SKIP
        >>> labels = [engine(image) for image in video_frames]  # doctest: +SKIP
    """

    stateful = True

    def __init__(self, engine: Engine, every: int | str = 1, smooth: bool = False, *,
                 stats: PipelineStats | None = None, max_untracked: float = 0.3, cut: float = 0.7,
                 auto_max: int = 4, auto_change: float = 0.024, auto_untracked: float = 0.12,
                 auto_confidence: float = 0.1, behind: float | None = None,
                 clock: Callable[[], float] = time.perf_counter, memory: float = 0.7, challenge: float = 1.0,
                 tracker: FlowTracker | None = None) -> None:
        if every != "auto" and not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be a whole number >= 1 or 'auto', got {every!r}")
        if not 0.0 <= memory < 1.0:
            raise ValueError(f"memory must be in [0, 1), got {memory!r}")
        super().__init__(engine)
        self.every, self.smooth, self.stats = every, smooth, stats
        self.max_untracked, self.cut = max_untracked, cut
        self.auto_max, self.auto_change, self.auto_untracked = auto_max, auto_change, auto_untracked
        self.auto_confidence, self.behind, self.clock = auto_confidence, behind, clock
        self.memory, self.challenge = memory, challenge
        self.tracker = tracker or FlowTracker()
        self.tracking = every != 1 or smooth
        # why each keyframe ran ("start", "every", "cut", "max", "moved", ...), and "behind":
        # the live frames that propagated although a reason said to run the model
        self.reasons: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames (the next frame is a keyframe)."""
        self._key: _Key | None = None
        self._previous: np.ndarray | None = None
        self._since = 0

    def segment(self, frame: Frame) -> None:
        """Set ``frame.labels`` and ``frame.inferred``; records flow/propagate timings."""
        if not self.tracking:
            self.engine.segment(frame)
            self._count(frame, True)
            return
        age = self.clock() - frame.capture_time  # before any work here: how late the frame already is
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
        if self.behind is not None and self.every == "auto" and reason in DEFERRABLE and age > self.behind:
            self.reasons["behind"] += 1  # live and late: catch up by propagating (auto_max still holds)
            reason = None
        t1 = time.perf_counter()
        if reason is not None:
            self.reasons[reason] += 1
            self.engine.segment(frame)  # records its own preprocess/infer/postprocess times
        t2 = time.perf_counter()
        if reason is not None:
            previous = None if reason == "cut" else self._key
            self._key = self._keyframe(frame.labels, frame.confidence, FlowField.identity(small.shape, scale),
                                       previous)
            if self.every == "auto":
                self._auto_sizes(self._key, small.shape)
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
            if self._confidence_drop() > self.auto_confidence:
                return "confidence"
            return None
        if self._since >= self.every:
            return "every"
        if field.untracked > self.max_untracked:
            return "untracked"
        return None

    def _confidence_drop(self) -> float:
        """How far the keyframe's mean confidence, carried to this frame, has fallen (0..1).

        Untracked pixels carry no confidence (0), and low-confidence areas the flow stretches
        weigh more, so the drop grows with new content and with uncertain regions coming closer.
        Measured against the keyframe's own mean, so a model that is less sure of a whole clip
        (a dark or noisy one) does not run on every frame. 0 for models without confidence.
        """
        key = self._key
        if key is None or key.small_confidence is None:
            return 0.0
        carried = key.field.warp(key.small_confidence, fill=0)
        return key.mean_confidence - float(carried.mean()) / 255.0

    def _auto_sizes(self, key: _Key, shape: tuple[int, int]) -> None:
        """``auto``'s flow-size copies of a new keyframe's labels and confidence."""
        size = shape[::-1]
        key.small = cv2.resize(key.labels, size, interpolation=cv2.INTER_NEAREST)
        if key.confidence is not None:
            key.small_confidence = cv2.resize(key.confidence, size, interpolation=cv2.INTER_AREA)
            key.mean_confidence = float(key.small_confidence.mean()) / 255.0

    def _keyframe(self, labels: np.ndarray, confidence: np.ndarray | None, field: FlowField,
                  previous: _Key | None) -> _Key:
        """A new keyframe; with smoothing, its labels pass the vote against the previous one's."""
        if not self.smooth:
            return _Key(labels, field, confidence=confidence)
        vote = confidence if confidence is not None else np.full(labels.shape, NO_CONFIDENCE, np.uint8)
        if previous is None:
            return _Key(labels, field, vote.copy(), confidence=confidence)
        shown = previous.field.warp(previous.labels)
        support = previous.field.warp(previous.support)
        agree = cv2.bitwise_and(vote, cv2.compare(shown, labels, cv2.CMP_EQ))
        disagree = cv2.subtract(vote, agree)
        keep = self.memory
        scored = cv2.addWeighted(support, keep, agree, 1.0 - keep, 0.0, dtype=cv2.CV_16S)
        scored = cv2.addWeighted(scored, 1.0, disagree.astype(np.int16), -(1.0 - keep) * self.challenge, 0.0,
                                 dtype=cv2.CV_16S)
        take = cv2.compare(scored, 0, cv2.CMP_LT)  # the support went below zero: the model's label wins
        support = cv2.convertScaleAbs(scored)  # what is left over supports the label shown now
        lost = previous.field.lost_mask(*labels.shape)  # untracked: no history, take the model's label
        take[lost] = 255
        support[lost] = vote[lost]
        cv2.copyTo(labels, take, shown)
        return _Key(shown, field, support, confidence=confidence)

    def _count(self, frame: Frame, inferred: bool) -> None:
        frame.inferred = inferred
        if self.stats is not None:
            self.stats.segmented_frame(inferred)
