"""Video files and network streams, decoded with PyAV, with timestamps and audio kept."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from rtseg.errors import SourceError, SourceStalledError, first_line
from rtseg.realtime.frame import Frame
from rtseg.realtime.sources.base import DEFAULT_MAX_PIXELS, Source, SourceInfo, check_pixel_cap
from rtseg.realtime.sources.kinds import is_live_url, is_url

log = logging.getLogger(__name__)


class VideoSource(Source):
    """Decode a video file or URL with PyAV (FFmpeg), keeping pts/time_base per frame.

    Packets of audio streams are attached to the frame they follow (``Frame.passthrough``)
    so a file sink can mux them untouched, in their original order. One decoded frame is
    held back to make that possible.

    Args:
        spec: path or URL (rtsp://, http(s)://, ...).
        live: latest-frame semantics; default True for rtsp/rtmp/udp/tcp/srt URLs.
        max_pixels: refuse larger frames before decoding.
        timeout: seconds to wait when opening and reading a URL.
        passthrough_audio: collect audio packets for the sink.
        max_frames: stop after this many frames (audio then stops there too).

    Example:
        >>> with VideoSource("clip.mp4") as src:  # doctest: +SKIP
        ...     for frame in src:
        ...         print(frame.index, frame.seconds)
    """

    def __init__(self, spec: str, *, live: bool | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 timeout: float = 5.0, passthrough_audio: bool = True, max_frames: int | None = None) -> None:
        url = is_url(spec)
        self.live = is_live_url(spec) if live is None else live
        self._spec = spec
        if not url:
            _check_readable_file(spec)
        try:
            self._container = av.open(spec, timeout=(timeout, timeout) if url else None)
        except av.ExitError:
            raise SourceStalledError(f"{spec}: no answer within {timeout:.0f} s") from None
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open video {spec}: {first_line(exc)}") from None
        try:
            if not self._container.streams.video:
                raise SourceError(f"{spec}: no video stream found")
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"  # FFmpeg frame+slice threads; files have no latency need
            ctx = stream.codec_context
            check_pixel_cap(spec, ctx.width, ctx.height, max_pixels)
            self._stream = stream
            self._audio = list(self._container.streams.audio) if passthrough_audio and not self.live else []
            rate = stream.average_rate or stream.guessed_rate
            self.info = SourceInfo(
                name=spec, width=ctx.width, height=ctx.height,
                fps=float(rate) if rate else None,
                frame_count=stream.frames or None,
                passthrough_streams=self._audio)
        except BaseException:
            self._container.close()
            raise
        self._skipped = 0
        self._max_frames = max_frames
        if max_frames is not None and self.info.frame_count:
            self.info.frame_count = min(self.info.frame_count, max_frames)
        self._closed = False

    def input_paths(self) -> list[Path]:
        return [] if is_url(self._spec) else [Path(self._spec)]

    @property
    def skipped(self) -> int:
        return self._skipped

    def __iter__(self) -> Iterator[Frame]:
        """Frames in decode order. The container stays open until :meth:`close`, because the
        passed-through packets of the last frames are muxed after decoding has ended."""
        stream, index = self._stream, 0
        pending: Frame | None = None  # held back until we know which audio packets follow it
        early: list = []  # audio packets before the first video frame
        fallback_tb = Fraction(1, round(self.info.fps or 25))
        if self._closed:
            raise SourceError(f"{self._spec}: source is closed")
        for packet in self._demux():
            if packet.stream is not stream:
                if packet.size:  # the demuxer's final flush packet is empty (PyAV docs)
                    (pending.passthrough if pending is not None else early).append(packet)
                continue
            if packet.is_corrupt:
                self._skipped += 1
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                self._skipped += 1
                log.debug("skipped undecodable packet at %s: %s", packet.pts, exc)
                continue
            for av_frame in decoded:
                image = av_frame.to_ndarray(format="bgr24")
                pts, tb = av_frame.pts, av_frame.time_base
                if pts is None or tb is None:  # raw streams: synthesise from the index
                    pts, tb = index, fallback_tb
                frame = Frame(image=image, index=index, pts=pts, time_base=tb)
                if index == 0:
                    frame.passthrough, early = early, []
                index += 1
                if pending is not None:
                    yield pending
                pending = frame
                if self._max_frames is not None and index >= self._max_frames:
                    yield pending
                    return
        if pending is not None:
            pending.passthrough.extend(early)
            yield pending

    def _demux(self) -> Iterator[av.Packet]:
        """Packets of the video stream and passed-through streams; read errors end cleanly."""
        demuxer = self._container.demux([self._stream, *self._audio])
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except av.ExitError:
                raise SourceStalledError(f"{self._spec}: stream stalled (no data for the read timeout)") from None
            except av.EOFError:
                return
            except av.FFmpegError as exc:
                if self.live:
                    raise SourceError(f"{self._spec}: read failed: {first_line(exc)}") from None
                log.warning("%s: demuxing stopped early: %s", self._spec, first_line(exc))
                self._skipped += 1
                return
            yield packet

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


def _check_readable_file(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise SourceError(f"no such file: {path}")
    if not p.is_file():
        raise SourceError(f"not a file: {path}")
    if not os.access(p, os.R_OK):
        raise SourceError(f"file is not readable (permission denied): {path}")
    if p.stat().st_size == 0:
        raise SourceError(f"file is empty (0 bytes): {path}")

