"""Annotated video out with PyAV: H.264, source timestamps kept, audio passed through.

The MP4 is fragmented (``frag_keyframe+empty_moov``) with a keyframe about every second,
so a file cut short (disk full, SIGKILL) still plays up to its last complete fragment.
Frames with odd width or height are padded by one replicated row/column: yuv420p
needs even sizes.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from rtseg.errors import SinkError, first_line
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import OutputOptions
from rtseg.realtime.sinks.base import Sink, prepare_output_file

log = logging.getLogger(__name__)

FRAGMENTED_MP4 = "frag_keyframe+empty_moov+default_base_moof"
CAMERA_TIME_BASE = Fraction(1, 1000)


class VideoFileSink(Sink):
    """Write frames to a video file; opens on the first frame (its size is the output size).

    Args:
        path: output file (.mp4, .mov, .mkv).
        fps: nominal frame rate (keyframe spacing, container hint); timestamps come from frames.
        passthrough_streams: input streams (PyAV) whose packets arrive in ``Frame.passthrough``.
        crf, preset: libx264 quality and speed.
        threads: encoder threads (default: 1 on machines with up to 4 cores, else automatic).

    Example:
        >>> with VideoFileSink("out.mp4", fps=25) as sink:  # doctest: +SKIP
        ...     sink.write(frame, image)
    """

    def __init__(self, path: str | Path, *, fps: float | None = None,
                 passthrough_streams: list[Any] | None = None, crf: int = OutputOptions.crf,
                 preset: str = OutputOptions.preset, threads: int | None = None) -> None:
        self.path = prepare_output_file(Path(path), "output")
        self.fps = fps or 30.0
        self.crf, self.preset = crf, preset
        # On small machines the pipeline's own threads already fill the cores; x264's frame
        # threads would only compete with inference. 0 lets x264 choose.
        self.threads = threads if threads is not None else (1 if (os.cpu_count() or 1) <= 4 else 0)
        self._templates = passthrough_streams or []
        self._container = None
        self._stream = None
        self._audio_map: dict[int, Any] = {}
        self._size: tuple[int, int] | None = None  # encoded (width, height), even
        self._last_pts: int | None = None
        self._t0: float | None = None
        self.fixed_timestamps = 0
        self._write_failed = False  # then close() finalizes what it can and stays quiet
        self._closed = False

    def _open(self, frame: Frame, width: int, height: int) -> None:
        time_base = frame.time_base if frame.pts is not None and frame.time_base else CAMERA_TIME_BASE
        # Keep video timestamps exactly as in the source: without this, an audio track starting
        # below zero (AAC priming) shifts the video track. Fragmented MP4 has no edit list, so
        # those priming samples (<= 1024, about 21 ms) play at the start instead of being skipped.
        options = {"avoid_negative_ts": "disabled"}
        if self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            options["movflags"] = FRAGMENTED_MP4
        try:
            self._container = av.open(str(self.path), mode="w", container_options=options)
            stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            stream.codec_context.gop_size = max(1, round(self.fps))
            stream.codec_context.thread_count = self.threads
            # No B-frames: pts == dts, so fragmented MP4 keeps the source timestamps exactly
            # (B-frame delay would shift every track) and decode latency stays at zero.
            stream.options = {"crf": str(self.crf), "preset": self.preset, "bf": "0"}
            self._stream = stream
            for template in self._templates:
                try:
                    self._audio_map[template.index] = self._container.add_stream_from_template(template)
                except (av.FFmpegError, ValueError) as exc:
                    log.warning("audio stream %d not copied into %s: %s", template.index, self.path.name, exc)
        except (av.FFmpegError, OSError) as exc:
            raise SinkError(f"cannot create video {self.path}: {first_line(exc)}") from None
        self._size = (stream.width, stream.height)

    def write(self, frame: Frame, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        if self._container is None:
            self._open(frame, width, height)
        image = self._fit(image)
        video_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        video_frame.pts = self._pts(frame)
        video_frame.time_base = self._stream.codec_context.time_base
        try:
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
            for packet in frame.passthrough:
                out = self._audio_map.get(packet.stream_index)
                if out is not None:
                    packet.stream = out
                    self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            self._write_failed = True
            raise SinkError(f"writing {self.path} failed: {first_line(exc)}") from None

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """Pad odd sizes to even; resize if the rendered size changed mid-stream."""
        width, height = self._size
        h, w = image.shape[:2]
        if (w, h) == (width, height):
            return image
        if (width - w, height - h) in ((0, 0), (1, 0), (0, 1), (1, 1)):
            return cv2.copyMakeBorder(image, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    def _pts(self, frame: Frame) -> int:
        """The source pts, or wall-clock milliseconds for sources without timestamps."""
        if frame.pts is not None and frame.time_base is not None:
            pts = frame.pts
        else:
            self._t0 = frame.capture_time if self._t0 is None else self._t0
            pts = round((frame.capture_time - self._t0) / CAMERA_TIME_BASE)
        if self._last_pts is not None and pts <= self._last_pts:  # encoder needs increasing pts
            pts = self._last_pts + 1
            self.fixed_timestamps += 1
        self._last_pts = pts
        return pts

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        error = None
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            error = exc
        try:
            self._container.close()
        except (av.FFmpegError, OSError) as exc:
            error = error or exc
        if self.fixed_timestamps:
            log.warning("%d frames had non-increasing timestamps and were nudged forward", self.fixed_timestamps)
        if error is not None and not self._write_failed:
            raise SinkError(f"finalizing {self.path} failed: {first_line(error)}")

