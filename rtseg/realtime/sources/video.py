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
from rtseg.realtime.sources.mp4_layout import mp4_problem

log = logging.getLogger(__name__)

DAMAGE_SECONDS = 2.0  # default for max_consecutive_errors: this much video in a row undecodable
DEFAULT_FPS = 25
LIVE_AUDIO_BACKLOG = 4096  # live mode: audio packets kept for a sink that has not taken them yet


class VideoSource(Source):
    """Decode a video file or URL with PyAV (FFmpeg), keeping pts/time_base per frame.

    Timestamps: every frame is stamped in the video stream's own time base. A frame the
    decoder returns without a pts (the first frame of an RTSP stream, raw streams) gets one
    derived from its neighbours: the previous frame's pts plus one frame at the nominal
    rate, or for a first frame the next frame's pts minus one frame.

    Audio: packets of audio streams travel with the frames (``Frame.passthrough``) so a
    file sink can mux them, in their original order; one decoded frame is held back to
    make that possible. From a file, each frame carries its own list: the packets demuxed
    after it. In live mode (cameras and streams, or ``--live`` on a file) the pipeline may
    drop frames, and with them their packets; so there all frames share one list and the
    sink takes packets out of it as it writes (``list.pop``), so the next frame written
    carries the audio of the frames dropped before it. Audio keeps its own timestamps and
    video frames keep theirs, so dropping video frames leaves the audio whole and in sync.
    When no sink takes them (no video output), only the newest ``LIVE_AUDIO_BACKLOG``
    packets are kept (:attr:`audio_discarded` counts the others).

    Damage: :attr:`skipped` counts video packets that gave no frame (including errors
    that FFmpeg's frame threads report late or not at all), :attr:`damaged` frames decoded
    from packets the demuxer flagged corrupt. ``max_consecutive_errors`` packets in a row
    without a frame end the run with a :class:`SourceError` naming where the damage starts.
    Packets before the first keyframe (a stream joined mid-GOP) are not damage: counting
    starts at the first keyframe packet or the first decoded frame. Nor are packets the
    demuxer marks to be decoded but not shown (before the start of an MP4 edit list).

    Args:
        spec: path or URL (rtsp://, http(s)://, ...).
        live: latest-frame semantics; default True for rtsp/rtmp/udp/tcp/srt URLs.
        max_pixels: refuse larger frames before decoding.
        timeout: seconds to wait when opening and reading a URL.
        passthrough_audio: collect audio packets for the sink.
        max_frames: stop after this many frames (audio then stops there too).
        max_consecutive_errors: undecodable video packets in a row before giving up;
            default about 2 s of video at the stream's frame rate (50 at 25 fps).

    Example:
        >>> with VideoSource("clip.mp4") as src:  # doctest: +SKIP
        ...     for frame in src:
        ...         print(frame.index, frame.seconds)
    """

    def __init__(self, spec: str, *, live: bool | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 timeout: float = 5.0, passthrough_audio: bool = True, max_frames: int | None = None,
                 max_consecutive_errors: int | None = None) -> None:
        url = is_url(spec)
        self.live = is_live_url(spec) if live is None else live
        self.endless = is_live_url(spec) or (url and self.live)
        self._spec = spec
        if not url:
            _check_readable_file(spec)
        try:
            self._container = av.open(spec, timeout=(timeout, timeout) if url else None)
        except av.ExitError:
            raise SourceStalledError(f"{spec}: no answer within {timeout:.0f} s") from None
        except (av.FFmpegError, OSError) as exc:
            why = None if url else mp4_problem(spec)
            raise SourceError(f"cannot open video {spec}: {why or first_line(exc)}") from None
        try:
            if not self._container.streams.video:
                why = None if url else mp4_problem(spec)
                raise SourceError(f"{spec}: {why or 'no video stream found'}")
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"  # FFmpeg frame+slice threads; files have no latency need
            ctx = stream.codec_context
            check_pixel_cap(spec, ctx.width, ctx.height, max_pixels)
            self._stream = stream
            audio = list(self._container.streams.audio)
            self._audio = audio if passthrough_audio else []
            self._audio_notes = [] if passthrough_audio else [
                (_stream_label(s), "dropped: audio passthrough is off") for s in audio]
            rate = stream.average_rate or stream.guessed_rate
            self.info = SourceInfo(
                name=spec, width=ctx.width, height=ctx.height,
                fps=float(rate) if rate else None,
                frame_count=stream.frames or None,
                start=float(stream.start_time * stream.time_base) if stream.start_time is not None else None,
                duration=float(stream.duration * stream.time_base) if stream.duration else None,
                passthrough_streams=self._audio)
        except BaseException:
            self._container.close()
            raise
        fps = self.info.fps or DEFAULT_FPS
        # One time base for every frame: the stream's own (1/fps for streams without one).
        self._time_base: Fraction = stream.time_base or Fraction(1, round(fps))
        self._step = max(1, round(1 / (fps * self._time_base)))  # one frame, in time-base ticks
        self._frame_seconds = 1 / fps
        self.max_consecutive_errors = max_consecutive_errors or max(10, round(DAMAGE_SECONDS * fps))
        self._counting = False  # True from the first keyframe packet or decoded frame on
        self._packets = 0  # video packets with data sent to the decoder (once counting)
        self._frames = 0  # frames the decoder gave back
        self._raised = 0  # packets whose decode raised
        self._flushed = False  # the decoder was drained at the end of the input
        self._flagged: set[int] = set()  # pts of packets the demuxer flagged corrupt
        self._damaged = 0
        self._read_failures = 0
        self.audio_discarded = 0  # live mode: audio packets no sink took in time
        self.read_error: str | None = None  # why demuxing stopped before the end, if it did
        self._last_pts: int | None = None
        self._max_frames = max_frames
        if max_frames is not None:
            self.info.frame_count = min(self.info.frame_count or max_frames, max_frames)
            self.info.duration = None  # only part of the file is read, on purpose
        self._closed = False

    def input_paths(self) -> list[Path]:
        return [] if is_url(self._spec) else [Path(self._spec)]

    @property
    def skipped(self) -> int:
        """Video packets that gave no frame: exact once the input has been read to its end,
        before that the packets whose decoding failed."""
        lost = self._packets - self._frames if self._flushed else self._raised
        return max(lost, self._raised, 0) + self._read_failures

    @property
    def damaged(self) -> int:
        """Frames decoded (with FFmpeg's error concealment) from packets flagged corrupt."""
        return self._damaged

    def audio_report(self) -> list[tuple[str, str]]:
        """(stream, outcome) for audio streams this source did not pass on to the sinks."""
        return list(self._audio_notes)

    def __iter__(self) -> Iterator[Frame]:
        """Frames in decode order. The container stays open until :meth:`close`, because the
        passed-through packets of the last frames are muxed after decoding has ended."""
        if self._closed:
            raise SourceError(f"{self._spec}: source is closed")
        stream, index = self._stream, 0
        pending: Frame | None = None  # held back until we know which audio packets follow it
        shared: list = []  # live mode: the one packet list every frame carries
        early: list = shared if self.live else []  # audio packets before the first video frame
        since_frame = 0  # video packets since the decoder last gave a frame
        for packet in self._demux():
            if packet.stream is not stream:
                if packet.size:  # the demuxer's final flush packet is empty (PyAV docs)
                    (pending.passthrough if pending is not None else early).append(packet)
                    if self.live and len(shared) > LIVE_AUDIO_BACKLOG:
                        excess = len(shared) - LIVE_AUDIO_BACKLOG
                        del shared[:excess]
                        self.audio_discarded += excess
                continue
            if packet.size:
                self._counting = self._counting or packet.is_keyframe or self._frames > 0
                if self._counting and not packet.is_discard:  # discard: before an edit list's start
                    self._packets += 1
                    since_frame += 1
                    if packet.is_corrupt and packet.pts is not None:
                        self._flagged.add(packet.pts)
            else:
                self._flushed = True  # the empty packet drains the decoder
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                self._raised += int(self._counting)
                log.debug("skipped undecodable packet at %s: %s", packet.pts, exc)
                decoded = []
            if decoded:
                since_frame = 0
            elif since_frame > self.max_consecutive_errors + self._decoder_delay():
                raise SourceError(self._damage_message(since_frame, pending))
            for av_frame in decoded:
                self._frames += 1
                if av_frame.pts is not None and av_frame.pts in self._flagged:
                    self._damaged += 1
                    self._flagged.discard(av_frame.pts)
                frame = Frame(image=av_frame.to_ndarray(format="bgr24"), index=index,
                              pts=self._frame_pts(av_frame), time_base=self._time_base)
                if self.live:
                    frame.passthrough = shared
                elif index == 0:
                    frame.passthrough, early = early, []
                index += 1
                if pending is not None:
                    yield self._stamped(pending, frame.pts)
                pending = frame
                if self._max_frames is not None and index >= self._max_frames:
                    yield self._stamped(pending, None)
                    return
        if pending is not None:
            if not self.live:
                pending.passthrough.extend(early)
            yield self._stamped(pending, None)

    def _frame_pts(self, av_frame: av.VideoFrame) -> int | None:
        """The frame's pts in the source's one time base, or None when it has none."""
        pts, tb = av_frame.pts, av_frame.time_base
        if pts is None:
            return None
        if tb is None or tb == self._time_base:
            return pts
        return round(pts * tb / self._time_base)

    def _stamped(self, frame: Frame, next_pts: int | None) -> Frame:
        """Give a frame without a pts one from its neighbours; remember the last pts."""
        if frame.pts is None:
            step = self._step
            if self._last_pts is not None:
                frame.pts = self._last_pts + step
                if next_pts is not None and frame.pts >= next_pts > self._last_pts + 1:
                    frame.pts = (self._last_pts + next_pts) // 2
            elif next_pts is not None:
                frame.pts = next_pts - step if next_pts < 0 or next_pts >= step else 0
                frame.pts = min(frame.pts, next_pts - 1)
            else:
                frame.pts = frame.index * step
        self._last_pts = frame.pts
        return frame

    def _decoder_delay(self) -> int:
        """Packets the decoder may hold before a frame comes out (frame threads, reordering)."""
        ctx = self._stream.codec_context
        return (ctx.thread_count or 1) + int(getattr(ctx, "has_b_frames", 0) or 0)

    def _damage_message(self, count: int, last: Frame | None) -> str:
        start = (last.seconds or 0.0) + self._frame_seconds if last is not None else 0.0
        what = "stream" if is_url(self._spec) else "file"
        return (f"{self._spec}: {count} consecutive undecodable packets; the {what} is damaged "
                f"from {_clock(start)} on")

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
                self.read_error = first_line(exc)
                self._read_failures += 1
                return
            yield packet

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


def _stream_label(stream: av.stream.Stream) -> str:
    """``#1 (ac3)``: a stream's index in its file and its codec."""
    return f"#{stream.index} ({stream.codec_context.name})"


def _clock(seconds: float) -> str:
    """``1:02.48`` (or ``1:01:02.48``)."""
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:05.2f}" if hours else f"{minutes}:{secs:05.2f}"


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
