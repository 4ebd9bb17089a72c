"""Wire source -> engine -> renderer -> sinks across three threads; own nothing else.

    capture thread --q_in--> inference thread(s) --q_out--> render thread (render + sinks)

The caller's thread supervises: it updates the progress bar, watches live sources for
stalls (the one stall detector), and turns SIGINT, SIGTERM and SIGHUP into a drain (stop
reading, finish the frames in flight, finalize the outputs) and a second signal into a
hard stop, both through the run's :class:`~rtseg.realtime.controls.Controls`. The first
exception in any worker hard-stops all of them and is re-raised in the caller's thread.

Live sources (cameras, streams) use queues of two slots that drop their oldest frame, so
inference works on the newest frames and a frame is dropped only when the model is behind;
files use small blocking queues, so every frame comes out. Files may use several inference
threads (``workers``, see :mod:`rtseg.realtime.streams`); the render thread then writes the
frames back in the order they were read. The capture thread is a daemon because a camera
read can block forever inside a driver; the others always finish within one step of a stop
and are joined.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack

from rtseg.errors import PipelineError, RtsegError, SourceStalledError
from rtseg.realtime import queues
from rtseg.realtime.controls import Controls
from rtseg.realtime.cpu import opencv_threads_for_pipeline
from rtseg.realtime.engine import Engine
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import SourceOptions
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import Sink
from rtseg.realtime.sources import Source
from rtseg.realtime.stats import PipelineStats

log = logging.getLogger(__name__)

FILE_QUEUE_SIZE = 4
# Live queues hold two frames: a burst of two (network packets decoded together) does not
# evict a frame the model was about to take; a model that is really behind still drops.
LIVE_QUEUE_SIZE = 2
FIRST_FRAME_TIMEOUT = 5.0
DRAIN_TIMEOUT = 2.5
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Pipeline:
    """Run a source through an engine into sinks, on three threads.

    Args:
        source: where frames come from (its ``live`` flag picks the queue policy).
        engine: sets ``frame.labels``.
        renderer: turns a segmented frame into the displayed/written image.
        sinks: receive ``(frame, image)`` in order, on the render thread; closed at the end.
        controls: pause and stop requests (default: the renderer's).
        stats: where every stage counts (pass one in to read it live, e.g. from a HUD).
        stall_timeout: a live source with no new frame for this long is an error.
        drain_timeout: after a stop request, how long in-flight frames may take before a hard stop.
        progress: a callable ``(stats) -> None`` called about 10 times a second, e.g. a bar.
        yield_to_inference: run the capture and render threads (and the decoder/encoder
            threads they start) at a lower OS priority, so that when cores are scarce the
            model gets them first (Linux; no-op elsewhere).
        handle_signals: route SIGINT/SIGTERM/SIGHUP to ``controls`` while running (only
            from the main thread).
        workers: inference threads calling ``engine.segment`` at once (files only; the
            engine must keep no state from frame to frame).

    Example:
        >>> stats = Pipeline(source, engine, renderer, [sink]).run()  # doctest: +SKIP
    """

    def __init__(self, source: Source, engine: Engine, renderer: Renderer, sinks: Sequence[Sink], *,
                 controls: Controls | None = None, stats: PipelineStats | None = None,
                 stall_timeout: float = SourceOptions.stall_timeout, drain_timeout: float = DRAIN_TIMEOUT,
                 queue_size: int = FILE_QUEUE_SIZE, progress: Callable[[PipelineStats], None] | None = None,
                 yield_to_inference: bool = True, handle_signals: bool = True, workers: int = 1) -> None:
        if workers < 1 or (workers > 1 and source.live):
            raise ValueError(f"workers must be 1 for a live source and at least 1 otherwise, got {workers}")
        self.source, self.engine, self.renderer, self.sinks = source, engine, renderer, list(sinks)
        self.workers = workers
        self.controls = controls or renderer.controls
        self.stats = stats or PipelineStats()
        self.stall_timeout, self.drain_timeout = stall_timeout, drain_timeout
        self.policy = "latest" if source.live else "block"
        size = LIVE_QUEUE_SIZE if source.live else queue_size
        self.q_in: queue.Queue = queue.Queue(maxsize=size)
        self.q_out: queue.Queue = queue.Queue(maxsize=size)
        self.progress = progress
        self.yield_to_inference = yield_to_inference
        self.handle_signals = handle_signals
        self._error: tuple[str, BaseException] | None = None
        self._error_lock = threading.Lock()
        self._rendered_all = threading.Event()
        self._reconnect_asked: float | None = None

    # -- the caller's thread ---------------------------------------------------------------
    def run(self) -> PipelineStats:
        """Run to the end of the source (or a stop request); returns the stats.

        Raises:
            RtsegError: a stage failed or a live source stalled (the pipeline is stopped first).
        """
        threads = [
            threading.Thread(target=self._guard, args=("capture", self._capture), name="rtseg-capture", daemon=True),
            *(threading.Thread(target=self._guard, args=("inference", self._infer), name=f"rtseg-inference-{n}")
              for n in range(self.workers)),
            threading.Thread(target=self._guard, args=("render", self._render), name="rtseg-render"),
        ]
        signals = _signals_to(self.controls, self.stats) if self.handle_signals else contextlib.nullcontext()
        with signals, opencv_threads_for_pipeline():
            for thread in threads:
                thread.start()
            try:
                self._supervise()
            finally:
                if self._rendered_all.is_set():  # every frame is out: the threads are returning
                    self._join(threads, timeout=1.0)
                if any(t.is_alive() for t in threads):
                    self.controls.force_stop("shutdown")
                self.source.interrupt()
                self._join(threads, timeout=max(2.0, self.drain_timeout))
                if not threads[0].is_alive():  # the sinks are done with the source's packets too
                    self.source.close()
                self._pump(self.sinks)  # the main thread's last turn: a window is destroyed here
                self.stats.finish(self.source.skipped, self.controls.stop_reason)
                if self.progress is not None:
                    self.progress(self.stats)
        error, self._error = self._error, None
        if error is not None:
            stage, exc = error
            # The worker's frames are done: drop their locals (frames, tensors, the engine) so a
            # caller that keeps or retries after the exception does not keep them alive.
            traceback.clear_frames(exc.__traceback__)
            if isinstance(exc, RtsegError):
                raise exc
            raise PipelineError(f"{stage} stage failed: {type(exc).__name__}: {exc}") from exc
        return self.stats

    def _supervise(self) -> None:
        drain_deadline: float | None = None
        pumped = [s for s in self.sinks if type(s).pump is not Sink.pump]  # a window: pump it often
        tick = 0.01 if pumped else 0.1
        while not (self._rendered_all.is_set() or self.controls.forced.is_set()):
            self._rendered_all.wait(tick)
            self._pump(pumped)
            if self.controls.draining.is_set():
                self.source.interrupt()
                now = time.perf_counter()
                drain_deadline = drain_deadline or now + self.drain_timeout
                if now > drain_deadline:
                    log.warning("frames in flight did not finish within %.1f s; stopping now", self.drain_timeout)
                    self.controls.force_stop("drain timeout")
            if self.progress is not None:
                self.progress(self.stats)
            self._check_stall()

    def _pump(self, sinks: list[Sink]) -> None:
        for sink in sinks:
            try:
                sink.pump()
            except Exception as exc:  # noqa: BLE001 - e.g. a window that cannot be shown
                self._fail("display", exc)

    def _check_stall(self) -> None:
        """The one stall detector: a live source with no new frame for ``stall_timeout`` is
        asked to reconnect when it can, and is an error otherwise."""
        if not self.source.live or self.controls.stopping:
            return
        reconnect = getattr(self.source, "request_reconnect", None)
        self.stats.reconnecting = bool(getattr(self.source, "reconnecting", False))
        if self.stats.reconnecting:
            return  # the source is reopening itself, with its own backoff
        now = time.perf_counter()
        last_frame = self.stats.last_capture
        connected = getattr(self.source, "connected_at", None)
        first_of_connection = last_frame is None or (connected is not None and connected > last_frame)
        since = max(t for t in (last_frame, connected, self._reconnect_asked, self.stats.started) if t is not None)
        limit = max(self.stall_timeout, FIRST_FRAME_TIMEOUT) if first_of_connection else self.stall_timeout
        idle = now - since
        if idle <= limit:
            return
        if reconnect is not None:
            self._reconnect_asked = now  # wait another stall period before asking again
            self.stats.reconnecting = True
            reconnect()
            return
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
        self.controls.force_stop("error")

    def _capture(self) -> None:
        frames = iter(self.source)
        forced, stats = self.controls.forced, self.stats
        seq = 0
        try:
            while not self.controls.stopping:
                t0 = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                now = time.perf_counter()
                frame.seq, seq = seq, seq + 1
                frame.timings["capture"] = now - t0
                stats.captured_frame(now)
                if not queues.put(self.q_in, frame, forced, self.policy, stats.dropped_frame):
                    break
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # ends the source's generator (a camera releases its device here)
            for _ in range(self.workers):  # one end marker per inference thread
                queues.put(self.q_in, queues.END, forced, self.policy, stats.dropped_frame)

    def _infer(self) -> None:
        forced, stats = self.controls.forced, self.stats
        while True:
            frame = queues.get(self.q_in, forced)
            if frame is queues.END:
                queues.put(self.q_out, queues.END, forced, self.policy, stats.dropped_frame)
                return
            self.engine.segment(frame)
            stats.inferred_frame()
            if not queues.put(self.q_out, frame, forced, self.policy, stats.dropped_frame):
                return

    def _render(self) -> None:
        with ExitStack() as stack:
            for sink in self.sinks:
                stack.enter_context(sink)
            for frame in self._in_order():
                image = self.renderer.render(frame)
                t0 = time.perf_counter()
                for sink in self.sinks:
                    sink.write(frame, image)
                now = time.perf_counter()
                frame.timings["write"] = now - t0
                self.stats.wrote_frame(frame, now)
                self._wait_while_paused()
        if not self.controls.forced.is_set():
            self._rendered_all.set()

    def _in_order(self) -> Iterator[Frame]:
        """The segmented frames, in the order they were read, until every inference thread ended.

        One inference thread hands them over in order. With several, a frame that overtook an
        earlier one waits here; the earlier one is being segmented, so the wait is about one
        frame's inference.
        """
        pending: dict[int, Frame] = {}
        ended, next_seq = 0, 0  # the capture thread numbers frames from 0, and a file drops none
        while ended < self.workers:
            frame = queues.get(self.q_out, self.controls.forced)
            if frame is queues.END:
                ended += 1
                continue
            if self.workers == 1:
                yield frame
                continue
            pending[frame.seq] = frame
            while next_seq in pending:
                yield pending.pop(next_seq)
                next_seq += 1

    def _wait_while_paused(self) -> None:
        while self.controls.paused and not self.controls.stopping:
            for sink in self.sinks:
                sink.poll()
            time.sleep(0.03)


@contextlib.contextmanager
def _signals_to(controls: Controls, stats: PipelineStats) -> Iterator[None]:
    """While inside: the first SIGINT/SIGTERM/SIGHUP drains, a second one hard-stops.
    A no-op outside the main thread (only it may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        stats.interrupted = True
        stats.exit_signal = stats.exit_signal or signum
        if controls.stopping:
            controls.force_stop(f"signal {name}")
        else:
            log.info("%s: finishing the frames in flight (again to stop at once)", name)
            controls.request_stop(f"signal {name}")

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _lower_thread_priority(niceness: int = 5) -> None:
    """Raise this thread's nice value (Linux threads are scheduled one by one)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:
        pass
