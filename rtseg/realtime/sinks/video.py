"""Annotated video out with PyAV: H.264, source timestamps kept, audio copied or converted.

The MP4 is fragmented with a keyframe about every second, so a file cut short (disk full,
SIGKILL) still plays up to its last complete fragment. Its ``moov`` is written with the
first fragment (``delay_moov``), not before any packet (``empty_moov``): only then does it
hold each track's first timestamp, so an audio track that starts later or earlier than the
video stays in sync (with ``empty_moov`` FFmpeg moves every track to start at zero).
Frames with odd width or height are padded by one replicated row/column: yuv420p
needs even sizes.

Audio, per input stream: copied when the output container takes it; ADTS AAC (MPEG-TS,
HLS) copied through the ``aac_adtstoasc`` bitstream filter; anything else transcoded to
AAC; dropped with a one-line warning only when even that fails. FFmpeg's codec lists say
yes to AC-3 or stereo 24-bit PCM in MP4, which the MP4 muxer then refuses when it writes
the header, and a muxer whose header failed crashes the process on the next packet. So
each stream is first tried in an in-memory container of the same format (for MP4 with
``empty_moov``, so the trial writes the ``moov`` the real file writes later), and the real
header is written at once when the file is opened, before any packet.
:meth:`VideoFileSink.audio_report` says what happened to each stream.
"""

from __future__ import annotations

import errno
import io
import logging
import os
from collections.abc import Callable, Iterator
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

FRAGMENTED_MP4 = "frag_keyframe+delay_moov+default_base_moof"
TRIAL_MP4 = "frag_keyframe+empty_moov+default_base_moof"  # the moov at once: the trial checks it
CAMERA_TIME_BASE = Fraction(1, 1000)
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
MOV_FORMATS = {"mp4", "mov", "ipod", "3gp", "3g2", "psp", "ismv", "f4v"}  # FFmpeg's movenc family
AUDIO_GAP = 0.2  # seconds: a jump in the input audio's timestamps larger than this restarts the AAC timeline
# Errors of the file itself (disk full, I/O): those fail the output, they are no audio problem.
IO_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EPIPE, errno.EROFS, errno.EBADF,
             getattr(errno, "EDQUOT", errno.ENOSPC)}


class VideoFileSink(Sink):
    """Write frames to a video file; opens on the first frame (its size is the output size).

    Timestamps: one time base for the whole video stream, the first frame's. Frames of a
    source with timestamps keep them (rescaled if a frame comes in another time base; a
    frame without one is placed by the capture clock after the previous frame); sources
    without timestamps (cameras) are stamped by the capture clock in milliseconds. Pts that
    do not increase are nudged forward (:attr:`fixed_timestamps`).

    Args:
        path: output file (.mp4, .mov, .mkv).
        fps: nominal frame rate (keyframe spacing, container hint); timestamps come from frames.
        passthrough_streams: input streams (PyAV) whose packets arrive in ``Frame.passthrough``;
            the sink takes them out of that list as it muxes them.
        crf, preset: libx264 quality and speed.
        threads: encoder threads (default: 1 on machines with up to 4 cores, else automatic).

    Example:
        >>> with VideoFileSink("out.mp4", fps=25) as sink:  # doctest: +SKIP
        ...     sink.write(frame, image)
        >>> sink.audio_report()  # doctest: +SKIP
        [('#1 (ac3)', 'transcoded to aac')]
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
        self._tracks: dict[int, _AudioTrack] = {}
        self._size: tuple[int, int] | None = None  # encoded (width, height), even
        self._time_base: Fraction | None = None
        self._clock: bool | None = None  # True: stamped by capture time (the source has no pts)
        self._last_pts: int | None = None
        self._last_capture: float | None = None
        self._t0: float | None = None
        self.fixed_timestamps = 0
        self._write_failed = False  # then close() finalizes what it can and stays quiet
        self._closed = False

    # -- opening -----------------------------------------------------------------------------
    def _open(self, frame: Frame, width: int, height: int) -> None:
        self._clock = frame.pts is None or frame.time_base is None
        self._time_base = CAMERA_TIME_BASE if self._clock else Fraction(frame.time_base)
        # Keep video timestamps exactly as in the source: without this, an audio track starting
        # below zero (AAC priming) shifts the video track.
        options = {"avoid_negative_ts": "disabled"}
        if self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            options["movflags"] = FRAGMENTED_MP4
        size = (width + width % 2, height + height % 2)
        self._container = self._new_container(options, size)
        tracks = self._plan_audio(self._container.format.name, options, list(frame.passthrough))
        for track in tracks:
            track.attach(self._container)
        try:
            self._container.start_encoding()  # the header, now: a failed one must not see a packet
        except (av.FFmpegError, OSError) as exc:
            reason = _reason(exc)
            self._discard_container()
            if not tracks or _is_io_error(exc):
                raise SinkError(f"cannot create video {self.path}: {first_line(exc)}") from None
            for track in tracks:  # the trials passed, the real header did not: no audio at all
                track.drop(f"the output header was refused: {reason}")
            self._container = self._new_container(options, size)
            try:
                self._container.start_encoding()
            except (av.FFmpegError, OSError) as exc2:
                self._discard_container()
                raise SinkError(f"cannot create video {self.path}: {first_line(exc2)}") from None
        self._tracks = {track.index: track for track in tracks}
        self._size = (self._stream.width, self._stream.height)

    def _new_container(self, options: dict[str, str], size: tuple[int, int]) -> Any:
        """The output container with its H.264 stream (no header written yet)."""
        container = None
        try:
            container = av.open(str(self.path), mode="w", container_options=options)
            stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.time_base = self._time_base
            stream.codec_context.time_base = self._time_base
            stream.codec_context.gop_size = max(1, round(self.fps))
            stream.codec_context.thread_count = self.threads
            # No B-frames: pts == dts, so fragmented MP4 keeps the source timestamps exactly
            # (B-frame delay would shift every track) and decode latency stays at zero.
            stream.options = {"crf": str(self.crf), "preset": self.preset, "bf": "0"}
        except (av.FFmpegError, OSError, ValueError) as exc:
            if container is not None:
                container.close()
            raise SinkError(f"cannot create video {self.path}: {first_line(exc)}") from None
        self._stream = stream
        return container

    def _discard_container(self) -> None:
        """Close a container whose header failed (nothing may be muxed into it) and empty the file."""
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass
        self._container = None
        try:
            with open(self.path, "wb"):
                pass
        except OSError:
            pass

    def _plan_audio(self, fmt: str, options: dict[str, str], first_packets: list[Any]) -> list[_AudioTrack]:
        """Decide per input stream: copy, copy through aac_adtstoasc, transcode, or drop."""
        tracks = []
        for template in self._templates:
            track = _AudioTrack(template)
            tracks.append(track)
            if template.type != "audio":
                track.drop("not an audio stream")
                continue
            first = next((bytes(p) for p in first_packets if p.stream_index == template.index and p.size), None)
            why_not_copied = track.plan_copy(fmt, options, first)
            if why_not_copied is None:
                continue
            why_not_aac = track.plan_aac(fmt, options)
            if why_not_aac is None:
                log.info("audio %s cannot be copied into %s (%s); transcoding it to AAC", track.label, fmt,
                         why_not_copied)
            else:
                track.drop(f"cannot be copied ({why_not_copied}) nor transcoded to AAC ({why_not_aac})")
        return tracks

    # -- writing -----------------------------------------------------------------------------
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
        except (av.FFmpegError, OSError) as exc:
            self._write_failed = True
            raise SinkError(f"writing {self.path} failed: {first_line(exc)}") from None
        for packet in _take(frame.passthrough):
            track = self._tracks.get(packet.stream_index)
            if track is not None and track.stream is not None:
                self._mux_audio(track, track.convert(packet))

    def _mux_audio(self, track: _AudioTrack, packets: list[Any]) -> None:
        """Mux one track's packets; a muxer that refuses them drops the track, never the video."""
        for packet in packets:
            try:
                self._container.mux(packet)
            except (av.FFmpegError, OSError) as exc:
                if _is_io_error(exc):
                    self._write_failed = True
                    raise SinkError(f"writing {self.path} failed: {first_line(exc)}") from None
                track.drop(f"the muxer refused a packet after {track.muxed}: {_reason(exc)}")
                return
            track.muxed += 1

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
        """The frame's pts in the stream's one time base; strictly increasing."""
        tb = self._time_base
        if self._clock:
            self._t0 = frame.capture_time if self._t0 is None else self._t0
            pts = round((frame.capture_time - self._t0) / tb)
        elif frame.pts is not None and frame.time_base is not None:
            pts = frame.pts if frame.time_base == tb else round(frame.pts * Fraction(frame.time_base) / tb)
        else:  # a frame without pts in a timed stream: after the previous one, by the capture clock
            pts = self._last_pts + max(1, round((frame.capture_time - self._last_capture) / tb))
        if self._last_pts is not None and pts <= self._last_pts:  # encoder needs increasing pts
            pts = self._last_pts + 1
            self.fixed_timestamps += 1
        self._last_pts, self._last_capture = pts, frame.capture_time
        return pts

    # -- closing -----------------------------------------------------------------------------
    def audio_report(self) -> list[tuple[str, str]]:
        """(stream, outcome) per input audio stream, e.g. ``("#1 (ac3)", "transcoded to aac")``;
        outcomes: ``copied``, ``transcoded to aac``, ``dropped: <reason>``."""
        if self._container is None and not self._tracks:  # never opened: no frame came
            return [(_label(t), "dropped: no video frame was written") for t in self._templates]
        return [(track.label, track.report()) for track in self._tracks.values()]

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
        if error is None:
            for track in self._tracks.values():
                if track.stream is not None:
                    try:
                        self._mux_audio(track, track.flush())
                    except SinkError as exc:
                        error = exc
                        break
        try:
            self._container.close()
        except (av.FFmpegError, OSError) as exc:
            error = error or exc
        if self.fixed_timestamps:
            log.warning("%d frames had non-increasing timestamps and were nudged forward", self.fixed_timestamps)
        if error is not None and not self._write_failed:
            raise SinkError(f"finalizing {self.path} failed: {first_line(error)}")


class _AudioTrack:
    """One input audio stream on its way into the output: copied, filtered or transcoded."""

    def __init__(self, template: Any) -> None:
        self.template = template
        self.index: int = template.index
        self.label = _label(template)
        self.outcome = "dropped: not set up"
        self.stream: Any = None  # the output stream, once attached (None when dropped)
        self.muxed = 0
        self.skipped = 0  # copied packets left out: no timestamp or out of order
        self._mode = "drop"
        self._adts = False
        self._config: bytes | None = None  # AudioSpecificConfig for ADTS AAC into MP4/MOV
        self._bsf: Any = None
        self._aac: tuple[int, str] | None = None  # (rate, layout) when transcoding
        self._transcoder: _Transcoder | None = None
        self._last_dts: int | None = None

    # planning (before the real container gets any stream)
    def plan_copy(self, fmt: str, options: dict[str, str], first_packet: bytes | None) -> str | None:
        """Plan a copy; returns why it cannot be, or None."""
        ctx = self.template.codec_context
        self._adts = ctx.name == "aac" and not ctx.extradata  # MPEG-TS, HLS, .aac: needs aac_adtstoasc
        if self._adts and fmt in MOV_FORMATS:
            # The moov holds the AAC configuration, and the trial writes it before any packet
            # has been through the filter: read it from the first ADTS header. (Matroska
            # takes it from the filter's output itself; given one up front, it breaks the file.)
            self._config = _adts_config(first_packet) if first_packet else _aac_config(ctx)
            if self._config is None:
                return "ADTS AAC whose configuration cannot be read"
        why = _trial(fmt, options, self._add_copy)
        if why is None:
            self._mode, self.outcome = "copy", "copied"
        return why

    def plan_aac(self, fmt: str, options: dict[str, str]) -> str | None:
        """Plan a transcode to AAC; returns why it cannot be, or None."""
        ctx = self.template.codec_context
        try:
            ctx.codec  # noqa: B018 - raises without a decoder
        except (av.FFmpegError, ValueError, AttributeError):
            return f"no decoder for {ctx.name}"
        rate = ctx.sample_rate if ctx.sample_rate in AAC_RATES else 48000
        channels = ctx.layout.nb_channels if ctx.layout is not None else 0
        layouts = [ctx.layout.name] if channels else []
        layouts += ["mono" if channels == 1 else "stereo"]
        why = "no layout"
        for layout in dict.fromkeys(layouts):
            self._aac = (rate, layout)
            why = _trial(fmt, options, self._add_aac)
            if why is None:
                self._mode, self.outcome = "aac", "transcoded to aac"
                return None
        self._aac = None
        return why

    def _add_copy(self, container: Any) -> Any:
        stream = container.add_stream_from_template(self.template)
        if self._config is not None:
            stream.codec_context.extradata = self._config
        return stream

    def _add_aac(self, container: Any) -> Any:
        rate, layout = self._aac
        return container.add_stream("aac", rate=rate, layout=layout)

    def attach(self, container: Any) -> None:
        """Add this track's stream to the real container (before its header)."""
        if self._mode == "drop":
            return
        try:
            self.stream = self._add_copy(container) if self._mode == "copy" else self._add_aac(container)
            if self._mode == "copy" and self._adts:
                self._bsf = av.BitStreamFilterContext("aac_adtstoasc", self.template)
            if self._mode == "aac":
                self._transcoder = _Transcoder(self.template, self.stream)
        except (av.FFmpegError, ValueError, OSError) as exc:
            self.stream = None
            self.drop(_reason(exc))

    def report(self) -> str:
        """The outcome, with the packets left out of a stream that was kept."""
        skipped = self.skipped + (self._transcoder.undecodable if self._transcoder is not None else 0)
        if skipped and not self.outcome.startswith("dropped"):
            return f"{self.outcome} ({skipped} packets left out: no timestamp, out of order or undecodable)"
        return self.outcome

    def drop(self, reason: str) -> None:
        """Stop muxing this track; one warning."""
        self.stream, self._transcoder = None, None
        self.outcome = f"dropped: {reason}"
        log.warning("audio %s dropped: %s", self.label, reason)

    # muxing
    def convert(self, packet: Any) -> list[Any]:
        """Packets to mux for one input packet (none, one, or the encoder's output)."""
        if self._transcoder is not None:
            try:
                return self._transcoder.encode(packet)
            except (av.FFmpegError, ValueError) as exc:
                self.drop(f"the AAC encoder failed: {_reason(exc)}")
                return []
        if packet.dts is None or (self._last_dts is not None and packet.dts <= self._last_dts):
            self.skipped += 1  # no timestamp (first packets of some streams) or out of order
            return []
        self._last_dts = packet.dts
        packets = self._bsf.filter(packet) if self._bsf is not None else [packet]
        for out in packets:
            out.stream = self.stream
        return packets

    def flush(self) -> list[Any]:
        """The packets still held by the filter or the encoder."""
        try:
            if self._transcoder is not None:
                return self._transcoder.flush()
            if self._bsf is not None:
                packets = self._bsf.filter(None)
                for out in packets:
                    out.stream = self.stream
                return packets
        except (av.FFmpegError, ValueError) as exc:
            log.warning("audio %s: the end of the track was lost: %s", self.label, _reason(exc))
        return []


class _Transcoder:
    """Decode an input audio stream and encode it with the output's AAC encoder.

    Output timestamps count samples from the first decoded frame's pts, so the audio stays
    where it was against the video; a jump in the input's timestamps (a gap, a live stream
    that restarted) restarts the count there.
    """

    def __init__(self, template: Any, stream: Any) -> None:
        self._decoder = template.codec_context  # the source demuxes audio but never decodes it
        self._stream = stream
        ctx = stream.codec_context
        self._rate = ctx.sample_rate
        self._time_base = Fraction(1, self._rate)
        self._frame_size = ctx.frame_size or 1024
        self._resampler = av.AudioResampler(format=ctx.format.name, layout=ctx.layout.name, rate=self._rate)
        self._fifo = av.AudioFifo()
        self._next: int | None = None  # pts of the fifo's first sample, in 1/rate
        self._end: int | None = None  # where the input decoded so far ends, in 1/rate
        self.undecodable = 0  # damaged input packets left out (the decoder goes on)

    def encode(self, packet: Any) -> list[Any]:
        """AAC packets for one input packet; encoder errors raise, a damaged packet is skipped."""
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError:
            self.undecodable += 1
            return []
        return self._push(frames)

    def flush(self) -> list[Any]:
        try:
            frames = self._decoder.decode(None)
        except av.FFmpegError:
            frames = []
        out = self._push(frames)
        for frame in self._resampler.resample(None):
            frame.pts = None
            self._fifo.write(frame)
        out += self._drain(final=True)
        return out + list(self._stream.encode(None))

    def _push(self, frames: list[Any]) -> list[Any]:
        out = []
        for frame in frames:
            start = None
            if frame.pts is not None and frame.time_base is not None:
                start = round(frame.pts * frame.time_base * self._rate)
            if self._next is None:
                self._next = self._end = start or 0
            elif start is not None and abs(start - self._end) > AUDIO_GAP * self._rate:
                self._fifo = av.AudioFifo()  # restart the timeline (the few samples left are dropped)
                self._next = self._end = start
            self._end = (self._end if start is None else start) + round(frame.samples * self._rate / frame.sample_rate)
            for resampled in self._resampler.resample(frame):
                resampled.pts = None
                self._fifo.write(resampled)
            out += self._drain(final=False)
        return out

    def _drain(self, final: bool) -> list[Any]:
        out = []
        while self._fifo.samples >= self._frame_size or (final and self._fifo.samples):
            frame = self._fifo.read(min(self._frame_size, self._fifo.samples))
            frame.pts, frame.time_base = self._next, self._time_base
            self._next += frame.samples
            out += self._stream.encode(frame)
        return out


def _take(packets: list[Any]) -> Iterator[Any]:
    """Take packets out of a frame's list in order (a live source shares it between frames)."""
    while packets:
        try:
            yield packets.pop(0)
        except IndexError:
            return


def _trial(fmt: str, options: dict[str, str], add: Callable[[Any], Any]) -> str | None:
    """None when a container of ``fmt`` writes its header with the stream ``add`` makes,
    else why not. In memory, so a refusal never touches the real output."""
    if "movflags" in options:
        options = {**options, "movflags": TRIAL_MP4}
    trial = None
    try:
        trial = av.open(io.BytesIO(), mode="w", format=fmt, container_options=options)
        add(trial)
        trial.start_encoding()
    except (av.FFmpegError, ValueError, OSError, TypeError) as exc:
        return _reason(exc)
    finally:
        if trial is not None:
            trial.close()
    return None


def _adts_config(data: bytes) -> bytes | None:
    """The 2-byte AudioSpecificConfig of an ADTS frame header, or None if it is not one."""
    if len(data) < 7 or data[0] != 0xFF or data[1] & 0xF0 != 0xF0:
        return None
    profile, rate_index = data[2] >> 6, (data[2] >> 2) & 0x0F
    channels = ((data[2] & 0x01) << 2) | (data[3] >> 6)
    if rate_index >= len(AAC_RATES) or channels == 0:  # channels 0: a PCE, not handled here
        return None
    return _config(profile + 1, rate_index, channels)


def _aac_config(ctx: Any) -> bytes | None:
    """An AudioSpecificConfig from a decoder's parameters (no packet seen yet)."""
    kind = {"Main": 1, "LC": 2, "SSR": 3, "LTP": 4}.get(ctx.profile or "LC")
    channels = ctx.layout.nb_channels if ctx.layout is not None else 0
    channels = 7 if channels == 8 else channels
    if kind is None or ctx.sample_rate not in AAC_RATES or not 1 <= channels <= 7:
        return None
    return _config(kind, AAC_RATES.index(ctx.sample_rate), channels)


def _config(kind: int, rate_index: int, channels: int) -> bytes:
    return bytes([(kind << 3) | (rate_index >> 1), ((rate_index & 1) << 7) | (channels << 3)])


def _label(stream: Any) -> str:
    """``#1 (ac3)``: an input stream's index and codec."""
    ctx = getattr(stream, "codec_context", None)
    return f"#{stream.index} ({ctx.name if ctx is not None else stream.type})"


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words when it logged any (``unsupported channel layout``), else the message."""
    text = str(exc)
    if "last error log:" in text:
        text = text.split("last error log:", 1)[1].strip()
        if text.startswith("[") and "] " in text:
            text = text.split("] ", 1)[1]
        return text.splitlines()[0].rstrip(".") if text.strip() else first_line(exc)
    return first_line(exc)


def _is_io_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and getattr(exc, "errno", None) in IO_ERRNOS
