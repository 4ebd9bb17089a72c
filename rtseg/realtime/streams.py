"""Inference streams: how many frames the model works on at once, and with how many threads each.

A file job wants throughput. With one frame at a time, the model's intra-op threads meet at
a barrier after every parallel section, and whenever decoding, blending or encoding takes
one of the cores, the section waits for the thread that lost it. With two frames at a time,
each on one thread (OpenVINO's "throughput streams"), nothing waits for anything: on the
2-core development machine the whole job ran 8 % faster, at 0.93 of its CPU limit instead of
0.85 (docs/performance.md). The inference stage then runs on ``streams`` threads and the
render thread puts the frames back in order.

Only where that is safe and useful: files (a live source wants the newest frame soonest,
and one frame at a time gives the lowest latency), engines without per-frame state
(keyframes, smoothing and instance tracking carry state from frame to frame), the CPU (a
GPU runs one frame's layers in parallel already), and at least two cores.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtseg.errors import OptionError
from rtseg.realtime.cpu import available_cores

AUTO_STREAMS = 2  # measured on 2 cores only; more streams mean more frames in memory for little gain there


@dataclass(frozen=True)
class StreamPlan:
    """``streams`` inference threads, each running the model with ``threads`` intra-op threads
    (None: onnxruntime's choice); ``tune``: let :mod:`rtseg.realtime.thread_tuner` pick the
    thread count (one stream only)."""

    streams: int
    threads: int | None
    tune: bool

    @property
    def report(self) -> str:
        return f"{self.streams} inference streams x {self.threads} thread{'s' if self.threads != 1 else ''}"


def stateful_options(infer_every: int | str, smooth: bool, instances: bool) -> list[str]:
    """The options that make the inference stage carry state from frame to frame."""
    named = [("--infer-every", infer_every != 1), ("--smooth", smooth), ("--instances", instances)]
    return [flag for flag, on in named if on]


def plan_streams(streams: int | str, threads: int | str | None, *, live: bool, stateful: list[str],
                 device: str, cores: int | None = None) -> StreamPlan:
    """How to run the model for one job.

    Args:
        streams: ``"auto"`` or a count (1: one frame at a time).
        threads: ``"auto"``, a total intra-op thread count, or None/0 (onnxruntime's choice).
        live: the source is a camera, a stream or a paced file.
        stateful: options that need frames in order through one engine (see :func:`stateful_options`).
        device: ``auto``, ``cpu`` or ``cuda``.

    Raises:
        OptionError: more than one stream asked for where it cannot work.
    """
    cores = cores or available_cores()
    total = threads if isinstance(threads, int) and threads > 0 else None
    if streams == "auto":
        usable = not live and not stateful and device != "cuda" and threads != 0 and threads is not None
        count = AUTO_STREAMS if usable and (total or cores) >= AUTO_STREAMS else 1
    else:
        count = int(streams)
        if count > 1 and live:
            raise OptionError("--streams above 1 needs a file source: a live source is segmented one frame at "
                              "a time, newest first")
        if count > 1 and stateful:
            raise OptionError(f"--streams above 1 cannot be combined with {', '.join(stateful)}: they carry "
                              "state from one frame to the next")
    if count == 1:
        return StreamPlan(1, total, tune=threads == "auto")
    return StreamPlan(count, max(1, (total or cores) // count), tune=False)


def is_stateful(engine: object) -> bool:
    """True when ``engine`` or an engine it wraps keeps state from frame to frame (``stateful = True``)."""
    while engine is not None:
        if getattr(type(engine), "stateful", False):
            return True
        engine = getattr(engine, "engine", None)
    return False
