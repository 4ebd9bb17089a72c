"""The end-of-run self-check: did every frame of the input make it out?

A run that wrote only part of its input still keeps what it wrote, but it is not called a
success: each shortfall is a warning naming its cause, and the CLI exits with
:data:`EXIT_PARTIAL`. Writing no frame at all is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtseg.errors import NothingWrittenError
from rtseg.realtime.sinks import Sink
from rtseg.realtime.sources import Source
from rtseg.realtime.stats import PipelineStats

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_PARTIAL = 0, 1, 2, 3


@dataclass
class RunCheck:
    """What the self-check found: shortfalls (warnings) and notes (information)."""

    shortfalls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.shortfalls


def check_run(stats: PipelineStats, source: Source, sinks: list[Sink]) -> RunCheck:
    """Compare what came in with what went out.

    Raises:
        NothingWrittenError: no frame was written and nobody asked the run to stop.
    """
    check = RunCheck()
    stopped_early = stats.stop_reason is not None
    if stats.written == 0 and not stopped_early:
        cause = f"{stats.skipped} damaged packets, no decodable frame" if stats.skipped else "no decodable frame"
        raise NothingWrittenError(f"wrote 0 frames from {source.info.name}: {cause} (unsupported or damaged input?)")
    ended_early = None if source.live or stopped_early else _ended_early(stats, source)
    if ended_early:
        check.shortfalls.append(f"input ended early: {ended_early} in {source.info.name} (truncated or damaged file?)")
    if source.endless and not stopped_early:  # a camera or live stream has no end of its own
        how = getattr(getattr(source, "inner", source), "read_error", None) or "the stream ended or the device closed"
        check.shortfalls.append(f"the live source {source.info.name} ended by itself ({how})")
    if stats.skipped:
        check.shortfalls.append(f"{stats.skipped} damaged packets were skipped; the frames they held are missing")
    for stream, outcome in getattr(source, "audio_report", lambda: [])():
        check.notes.append(f"audio {stream}: {outcome}")  # left out by choice (e.g. --reconnect), said why
    for sink in sinks:
        for stream, outcome in getattr(sink, "audio_report", lambda: [])():
            if outcome.startswith("dropped"):
                check.shortfalls.append(f"audio {stream}: {outcome}")
            elif outcome != "copied":
                check.notes.append(f"audio {stream}: {outcome}")
    if source.live and stats.dropped:
        check.notes.append(f"{stats.dropped} frames dropped to stay live (inference was behind)")
    return check


def _ended_early(stats: PipelineStats, source: Source) -> str | None:
    """How much of a file is missing, judged by its presentation time where the container
    gives a duration (edit lists included), else by its frame count; None when complete."""
    info = source.info
    if info.duration and stats.last_seconds is not None:
        frame = 1.0 / (info.fps or 25.0)
        end = (info.start or 0.0) + info.duration
        if end - (stats.last_seconds + frame) > max(2 * frame, 0.1):
            return (f"{stats.last_seconds - (info.start or 0.0) + frame:.2f} s of {info.duration:.2f} s "
                    f"({stats.captured} frames)")
        return None
    if info.frame_count and stats.captured < info.frame_count:
        return f"{stats.captured} of {info.frame_count} frames"
    return None
