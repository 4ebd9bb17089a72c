"""Wire source -> engine -> renderer -> sinks across three threads; own nothing else.

    capture thread --q_in--> inference thread --q_out--> render thread (render + sinks)

The caller's thread supervises: it updates the progress bar, watches live sources for
stalls, turns the first Ctrl-C into a drain (stop reading, finish the frames in flight,
finalize the outputs) and a second Ctrl-C into an immediate stop. The first exception in
any worker stops all of them and is re-raised in the caller's thread.

Live sources (cameras, streams) use queues of one slot that drop their oldest frame, so
inference always works on the newest frame; files use small blocking queues, so every
frame comes out. The capture thread is a daemon because a camera read can block forever
inside a driver; the other two always finish within one step of the stop event and are
joined.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from rtseg.errors import RtsegError, SourceStalledError
from rtseg.realtime import queues
from rtseg.realtime.engine import Engine
from rtseg.realtime.frame import Frame
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import Sink
from rtseg.realtime.sources import Source
from rtseg.realtime.timing import Ema, RateMeter

log = logging.getLogger(__name__)

FILE_QUEUE_SIZE = 4
FIRST_FRAME_TIMEOUT = 5.0


class PipelineError(RtsegError):
    """A pipeline stage failed with an unexpected exception (the cause is chained)."""


@dataclass
class PipelineStats:
    """Counters and meters, written by the workers and read by the HUD and the summary."""

    captured: int = 0
    dropped: int = 0
    written: int = 0
    skipped: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    last_capture: float | None = None
    capture_rate: RateMeter = field(default_factory=RateMeter)
    infer_rate: RateMeter = field(default_factory=RateMeter)
    render_rate: RateMeter = field(default_factory=RateMeter)
    latency: Ema = field(default_factory=Ema)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add_timings(self, frame: Frame) -> None:
        for stage, seconds in frame.timings.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def summary(self) -> dict:
        """Totals for the end-of-run report (per-stage means in ms)."""
        n = max(1, self.written)
        return {
            "frames_in": self.captured, "frames_out": self.written, "dropped": self.dropped,
            "skipped_packets": self.skipped, "seconds": round(self.elapsed, 3),
            "fps": round(self.written / self.elapsed, 2) if self.elapsed > 0 else 0.0,
            "stage_ms": {k: round(v * 1000 / n, 2) for k, v in self.stage_seconds.items()},
            "interrupted": self.interrupted,
        }


class Pipeline:
    """Run a source through an engine into sinks, on three threads.

    Args:
        source: where frames come from (its ``live`` flag picks the queue policy).
        engine: sets ``frame.labels``.
        renderer: turns a segmented frame into the displayed/written image.
        sinks: receive ``(frame, image)`` in order, on the render thread; closed at the end.
        stop_request: set by anyone (e.g. the window's q key) to drain and finish.
        stall_timeout: a live source with no new frame for this long is an error.
        drain_timeout: after Ctrl-C, how long in-flight frames may take before a hard stop.
        progress: a callable ``(stats) -> None`` called about 10 times a second, e.g. a bar.
        yield_to_inference: run the capture and render threads (and the decoder/encoder
            threads they start) at a lower OS priority, so that when cores are scarce the
            model gets them first and decoding/encoding fill the gaps (Linux; no-op elsewhere).
        stats: where to count (pass one in to read it live, e.g. from a HUD).

    Example:
        >>> stats = Pipeline(source, engine, renderer, [sink]).run()  # doctest: +SKIP
    """

    def __init__(self, source: Source, engine: Engine, renderer: Renderer, sinks: Sequence[Sink], *,
                 stop_request: threading.Event | None = None, stall_timeout: float = 2.0,
                 drain_timeout: float = 2.5, queue_size: int = FILE_QUEUE_SIZE,
                 progress: Callable[[PipelineStats], None] | None = None,
                 yield_to_inference: bool = True, stats: PipelineStats | None = None) -> None:
        self.source, self.engine, self.renderer, self.sinks = source, engine, renderer, list(sinks)
        self.stop_request = stop_request or threading.Event()  # drain: stop reading, finish in-flight
        self.stop = threading.Event()  # hard stop: every thread returns now
        self.stall_timeout, self.drain_timeout = stall_timeout, drain_timeout
        self.policy = "latest" if source.live else "block"
        size = 1 if source.live else queue_size
        self.q_in: queue.Queue = queue.Queue(maxsize=size)
        self.q_out: queue.Queue = queue.Queue(maxsize=size)
        self.progress = progress
        self.yield_to_inference = yield_to_inference
        self.stats = stats or PipelineStats()
        self._error: tuple[str, BaseException] | None = None
        self._error_lock = threading.Lock()
        self._rendered_all = threading.Event()

    # -- the caller's thread ---------------------------------------------------------------
    def run(self) -> PipelineStats:
        """Run to the end of the source (or a stop request); returns the stats.

        Raises:
            RtsegError: a stage failed or a live source stalled (the pipeline is stopped first).
            KeyboardInterrupt: on a second Ctrl-C, after a hard stop.
        """
        threads = [
            threading.Thread(target=self._guard, args=("capture", self._capture), name="rtseg-capture", daemon=True),
            threading.Thread(target=self._guard, args=("inference", self._infer), name="rtseg-inference"),
            threading.Thread(target=self._guard, args=("render", self._render), name="rtseg-render"),
        ]
        for thread in threads:
            thread.start()
        try:
            try:
                self._supervise(until=lambda: self._rendered_all.is_set() or self.stop.is_set())
            except KeyboardInterrupt:
                self.stats.interrupted = True
                log.info("interrupted: finishing the frames in flight (Ctrl-C again to stop at once)")
                self.stop_request.set()
                deadline = time.perf_counter() + self.drain_timeout
                try:
                    self._supervise(until=lambda: self._rendered_all.is_set() or self.stop.is_set()
                                    or time.perf_counter() > deadline)
                except KeyboardInterrupt:
                    self.stop.set()
                    self._join(threads, timeout=0.5)
                    raise
        finally:
            self.stop.set()
            self.source.interrupt()
            self._join(threads, timeout=max(2.0, self.drain_timeout))
            if not threads[0].is_alive():  # the sinks are done with the source's packets too
                self.source.close()
            self.stats.finished = time.perf_counter()
            self.stats.skipped = self.source.skipped
            if self.progress is not None:
                self.progress(self.stats)
        if self._error is not None:
            stage, exc = self._error
            if isinstance(exc, RtsegError):
                raise exc
            raise PipelineError(f"{stage} stage failed: {type(exc).__name__}: {exc}") from exc
        return self.stats

    def _supervise(self, until: Callable[[], bool]) -> None:
        while not until():
            self._rendered_all.wait(0.1)
            if self.stop_request.is_set() or self.stop.is_set():
                self.source.interrupt()
            if self.progress is not None:
                self.progress(self.stats)
            self._check_stall()

    def _check_stall(self) -> None:
        if not self.source.live or self.stop.is_set() or self.stop_request.is_set():
            return
        last = self.stats.last_capture
        idle = time.perf_counter() - (last or self.stats.started)
        limit = self.stall_timeout if last else max(self.stall_timeout, FIRST_FRAME_TIMEOUT)
        if idle > limit:
            self._fail("capture", SourceStalledError(
                f"{self.source.info.name} delivered no new frame for {idle:.1f} s (stalled)"))

    def _join(self, threads: list[threading.Thread], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        for thread in threads:
            wait = max(0.0, deadline - time.perf_counter())
            thread.join(min(wait, 0.25) if thread.daemon else wait)  # a daemon may be stuck in a driver
            if thread.is_alive() and not thread.daemon:
                log.warning("thread %s did not stop within %.1f s", thread.name, timeout)

    # -- workers ---------------------------------------------------------------------------
    def _guard(self, stage: str, body: Callable[[], None]) -> None:
        if stage != "inference" and self.yield_to_inference:
            _lower_thread_priority()
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._fail(stage, exc)

    def _fail(self, stage: str, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = (stage, exc)
        self.stop.set()

    def _drop(self, _frame: object) -> None:
        self.stats.dropped += 1

    def _capture(self) -> None:
        frames = iter(self.source)
        try:
            while not (self.stop.is_set() or self.stop_request.is_set()):
                t0 = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                now = time.perf_counter()
                frame.timings["capture"] = now - t0
                self.stats.captured += 1
                self.stats.last_capture = now
                self.stats.capture_rate.tick(now)
                if not queues.put(self.q_in, frame, self.stop, self.policy, self._drop):
                    break
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # ends the source's generator (a camera releases its device here)
            queues.put(self.q_in, queues.END, self.stop, self.policy, self._drop)

    def _infer(self) -> None:
        while True:
            frame = queues.get(self.q_in, self.stop)
            if frame is queues.END:
                queues.put(self.q_out, queues.END, self.stop, self.policy, self._drop)
                return
            self.engine.segment(frame)
            self.stats.infer_rate.tick()
            if not queues.put(self.q_out, frame, self.stop, self.policy, self._drop):
                return

    def _render(self) -> None:
        with ExitStack() as stack:
            for sink in self.sinks:
                stack.enter_context(sink)
            while True:
                frame = queues.get(self.q_out, self.stop)
                if frame is queues.END:
                    break
                image = self.renderer.render(frame)
                t0 = time.perf_counter()
                for sink in self.sinks:
                    sink.write(frame, image)
                now = time.perf_counter()
                frame.timings["write"] = now - t0
                self.stats.add_timings(frame)
                self.stats.written += 1
                self.stats.render_rate.tick(now)
                self.stats.latency.update(now - frame.capture_time)
        if not self.stop.is_set():
            self._rendered_all.set()


def _lower_thread_priority(niceness: int = 5) -> None:
    """Raise this thread's nice value (Linux threads are scheduled one by one)."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:
        pass
