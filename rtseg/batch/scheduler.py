"""The driver's loop: a fixed pool of worker actors, one input per actor at a time.

Why this shape (from how Ray behaves):

* The unit of work is one input, never one frame: the pipeline keeps order, timestamps and
  audio only when one process reads, segments and writes the whole file.
* Each actor builds its model session once (:class:`rtseg.batch.worker.Worker`); the driver
  hands it the next input when it is idle, so a long file never holds up short ones.
* A dead worker (Ray reports ``RayActorError``: killed, crashed, out of memory, node lost)
  is replaced and its input run again from the start, at most ``retries`` times; the
  attempt's hidden temp files are removed first. A bad input is an outcome, not an
  exception: it is not retried.
* Stopping (first signal): nothing new is submitted; streams are told to finish now (their
  output is kept); files may finish until the drain deadline. At the deadline (or a second
  signal) the remaining workers are killed: their inputs are ``stopped``, with no output
  (only finished files ever get a final name), and the next run does them again.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtseg.batch.leftovers import remove_leftovers
from rtseg.batch.manifest import Outcome
from rtseg.batch.plan import Job
from rtseg.batch.signals import StopFlags
from rtseg.errors import RtsegError
from rtseg.realtime.options import RunOptions

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # the loop's longest wait: signals and progress are handled this often
PROGRESS_SECONDS = 0.5
KILL_WAIT_SECONDS = 5.0
SLOW_START_SECONDS = 30.0  # no worker ready by then: say what is probably missing


@dataclass
class Slot:
    """One worker actor and what it is doing."""

    index: int
    actor: Any = None
    ready_ref: Any = None  # pending ready() call while the actor starts
    info: dict = field(default_factory=dict)
    job: Job | None = None
    attempts: int = 0
    ref: Any = None  # pending process() call
    frames: int = 0  # of the current input, polled while it runs
    started: float = 0.0  # when the current input was handed over
    frames_ref: Any = None
    stop_sent: bool = False
    start_failures: int = 0

    @property
    def idle(self) -> bool:
        return self.actor is not None and self.ready_ref is None and self.job is None


@dataclass
class Progress:
    """What the display shows; updated by the scheduler."""

    total: int
    done: int = 0
    partial: int = 0
    failed: int = 0
    stopped: int = 0
    running: int = 0
    frames: int = 0  # written by finished inputs
    frames_running: int = 0  # segmented so far by running inputs
    started: float | None = None  # when the first input was handed to a worker

    @property
    def fps(self) -> float:
        """Frames per second of the whole batch since its first input started."""
        seconds = time.perf_counter() - self.started if self.started is not None else 0.0
        return (self.frames + self.frames_running) / seconds if seconds > 0 else 0.0


class Scheduler:
    """Run jobs on a pool of actors of ``actor_class`` (a ``ray.remote`` class of Worker).

    Args:
        ray: the imported ``ray`` module.
        actor_class: ``ray.remote(...)(Worker).options(...)``; built with ``actor_args``.
        workers: how many actors.
        retries: runs of an input after its worker died, at most.
        drain_timeout: seconds running files may take after a stop request.
        flags: the stop requests (set by signal handlers).
        on_outcome: called with each input's :class:`Outcome` as it ends.
        on_progress: called about twice a second with the :class:`Progress`.
    """

    def __init__(self, ray, actor_class, actor_args: tuple, *, workers: int, retries: int, drain_timeout: float,
                 flags: StopFlags, on_outcome: Callable[[Outcome], None],
                 on_progress: Callable[[Progress], None] = lambda progress: None) -> None:
        self.ray, self.actor_class, self.actor_args = ray, actor_class, actor_args
        self.slots = [Slot(i) for i in range(max(1, workers))]
        self.retries, self.drain_timeout, self.flags = retries, drain_timeout, flags
        self.on_outcome, self.on_progress = on_outcome, on_progress
        self.deaths = ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError

    def run(self, jobs: list[Job], options: RunOptions) -> list[Outcome]:
        """Run every job; returns the outcomes in the order they ended.

        Raises:
            RtsegError: a worker could not start (the model does not load, no CUDA ...).
        """
        self.queue = collections.deque((job, 0) for job in jobs)
        self.options = self.ray.put(options)
        self.outcomes: list[Outcome] = []
        self.progress = Progress(total=len(jobs))
        deadline: float | None = None
        self._started = time.monotonic()
        self._warned_slow = False
        for slot in self.slots:
            self._start(slot)
        try:
            while self.queue or any(slot.job is not None for slot in self.slots):
                if self.flags.requested.is_set() and deadline is None:
                    deadline = time.monotonic() + self.drain_timeout
                    self._begin_stop()
                if deadline is not None and (self.flags.forced.is_set() or time.monotonic() > deadline):
                    self._kill_running("stopped: the drain deadline passed" if not self.flags.forced.is_set()
                                       else "stopped at once (second signal)")
                    break
                if deadline is None:
                    self._submit()
                self._wait()
        finally:
            for slot in self.slots:
                if slot.actor is not None:
                    self.ray.kill(slot.actor)
        return self.outcomes

    # -- starting workers and submitting -------------------------------------------------------
    def _start(self, slot: Slot) -> None:
        slot.actor = self.actor_class.remote(*self.actor_args)
        slot.ready_ref = slot.actor.ready.remote()

    def _submit(self) -> None:
        for slot in self.slots:
            if not self.queue:
                return
            if slot.idle:
                job, attempts = self.queue.popleft()
                slot.job, slot.attempts, slot.frames, slot.stop_sent = job, attempts + 1, 0, False
                slot.started = time.perf_counter()
                slot.ref = slot.actor.process.remote(job, self.options)
                if self.progress.started is None:
                    self.progress.started = time.perf_counter()
                log.debug("%s -> worker %d (attempt %d)", job.shown, slot.index, slot.attempts)

    # -- waiting for results -----------------------------------------------------------------
    def _wait(self) -> None:
        self._poll_frames()
        refs = {}
        for slot in self.slots:
            for kind in ("ready_ref", "ref", "frames_ref"):
                if getattr(slot, kind) is not None:
                    refs[getattr(slot, kind)] = (slot, kind)
        if not refs:
            time.sleep(POLL_SECONDS)
            return
        self._check_slow_start()
        finished, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=POLL_SECONDS)
        for ref in finished:
            slot, kind = refs[ref]
            {"ready_ref": self._on_ready, "ref": self._on_result, "frames_ref": self._on_frames}[kind](slot, ref)
        self._report()

    def _on_ready(self, slot: Slot, ref) -> None:
        slot.ready_ref = None
        try:
            slot.info = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            slot.start_failures += 1
            if getattr(exc, "_actor_init_failed", False) or slot.start_failures > self.retries:
                raise RtsegError(f"a worker could not start: {creation_error(exc)}") from None
            log.warning("worker %d died while starting (%s); starting another", slot.index, death_reason(exc))
            self._start(slot)
            return
        slot.start_failures = 0
        log.debug("worker %d ready: %s", slot.index, slot.info)

    def _on_frames(self, slot: Slot, ref) -> None:
        slot.frames_ref = None
        try:
            slot.frames = self.ray.get(ref)
        except self.deaths:
            pass  # its process() call reports the death

    def _on_result(self, slot: Slot, ref) -> None:
        job, attempts = slot.job, slot.attempts
        slot.job, slot.ref = None, None
        try:
            result = self.ray.get(ref)
        except self.deaths as exc:
            self._on_death(slot, job, attempts, exc)
            return
        except self.ray.exceptions.RayTaskError as exc:  # not expected: process() returns its errors
            result = {"status": "failed", "error": f"worker error: {str(exc).strip().splitlines()[-1]}"}
        self._finish(Outcome(job, result["status"], result.get("frames_in", 0), result.get("frames_out", 0),
                             result.get("seconds", 0.0), result.get("error"), attempts, result.get("warnings", [])))

    def _on_death(self, slot: Slot, job: Job, attempts: int, exc: Exception) -> None:
        reason = death_reason(exc)
        self.ray.kill(slot.actor)
        remove_leftovers(job)
        if attempts <= self.retries and not self.flags.requested.is_set():
            log.warning("worker %d died during %s (%s); running it again (attempt %d of %d)", slot.index,
                        job.shown, reason, attempts + 1, self.retries + 1)
            self.queue.appendleft((job, attempts))
        else:
            status = "stopped" if self.flags.requested.is_set() else "failed"
            self._finish(Outcome(job, status, error=f"worker died {attempts} times (last: {reason})",
                                 attempts=attempts))
        if self.flags.requested.is_set():
            slot.actor = None
        else:
            self._start(slot)

    def _finish(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        setattr(self.progress, outcome.status, getattr(self.progress, outcome.status) + 1)
        self.progress.frames += outcome.frames_out
        if outcome.status in ("failed", "partial"):
            log.warning("%s %s: %s", outcome.status, outcome.job.shown, outcome.error)
        self.on_outcome(outcome)

    # -- progress ------------------------------------------------------------------------------
    def _poll_frames(self) -> None:
        now = time.monotonic()
        if now - getattr(self, "_polled", 0.0) < PROGRESS_SECONDS:
            return
        self._polled = now
        for slot in self.slots:
            if slot.job is not None and slot.frames_ref is None:
                slot.frames_ref = slot.actor.frames.options(concurrency_group="control").remote()

    def _report(self) -> None:
        busy = [slot for slot in self.slots if slot.job is not None]
        self.progress.running = len(busy)
        self.progress.frames_running = sum(slot.frames for slot in busy)
        self.on_progress(self.progress)

    # -- stopping ------------------------------------------------------------------------------
    def _begin_stop(self) -> None:
        while self.queue:
            job, attempts = self.queue.popleft()
            self._finish(Outcome(job, "stopped", error="not started: the batch was stopped", attempts=attempts))
        for slot in self.slots:
            if slot.job is not None and slot.job.stream and not slot.stop_sent:
                slot.stop_sent = True
                slot.actor.stop.options(concurrency_group="control").remote()

    def _kill_running(self, reason: str) -> None:
        busy = [slot for slot in self.slots if slot.job is not None]
        for slot in busy:
            self.ray.kill(slot.actor)
        self.ray.wait([slot.ref for slot in busy], num_returns=len(busy), timeout=KILL_WAIT_SECONDS)
        for slot in busy:
            remove_leftovers(slot.job)
            self._finish(Outcome(slot.job, "stopped", frames_in=slot.frames, seconds=time.perf_counter() - slot.started,
                                 error=reason, attempts=slot.attempts))
            slot.job, slot.ref, slot.frames_ref, slot.actor = None, None, None, None

    def _check_slow_start(self) -> None:
        if self._warned_slow or any(slot.info for slot in self.slots):
            return
        if time.monotonic() - self._started > SLOW_START_SECONDS:
            self._warned_slow = True
            log.warning("no worker has started after %.0f s: Ray may lack the CPUs/GPUs asked per worker "
                        "(see --cpus-per-worker, --gpus-per-worker, `ray status`)", SLOW_START_SECONDS)


def creation_error(exc: Exception) -> str:
    """The one-line error a worker's ``__init__`` raised, from Ray's report of it."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(getattr(exc, "error_msg", None) or exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = re.match(r"^[\w.]*(?:Error|Exception): (.+)$", line)
        if match:
            return match.group(1)
    return lines[0] if lines else type(exc).__name__


def death_reason(exc: Exception) -> str:
    """Why Ray says a worker died, in a few words."""
    match = re.search(r"Worker exit detail: ([^.]+)", str(exc))
    return match.group(1).strip() if match else type(exc).__name__
