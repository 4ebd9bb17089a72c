"""``--threads auto``: choose onnxruntime's intra-op thread count while the job runs.

On a small machine, inference with every core can starve decoding, blending and encoding,
and with one core fewer it can leave a core idle; which wins depends on the model, the
machine and what else the job does (keyframes, encoding), so it is measured, not guessed.
:class:`ThreadTuner` wraps a CPU :class:`~rtseg.realtime.engine.OnnxEngine`, opens one
session per candidate count (the same model; the label maps do not depend on the thread
count) and runs each for ``window`` inference calls, ``rounds`` times interleaved. It
measures the inference thread's *cycle*, from the start of one model call to the start of
the next: the time per frame the whole pipeline sustains when it is CPU-bound, waits for
input and output included. The fastest candidate is kept; fewer threads win only when they
are faster by more than ``margin`` (a paced camera gives every candidate the same cycle,
and more threads then give the lower latency). The other sessions are released.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from rtseg.realtime.cpu import available_cores
from rtseg.realtime.frame import Frame
from rtseg.realtime.session import CPU, create_session
from rtseg.realtime.wrapper import EngineWrapper

log = logging.getLogger(__name__)


def thread_candidates(cores: int | None = None) -> tuple[int, ...]:
    """Counts worth trying on ``cores`` cores: all of them, and one fewer (two fewer above 8)."""
    n = cores or available_cores()
    if n <= 1:
        return (1,)
    return (n, n - 1) if n <= 8 else (n, n - 2)


class ThreadTuner(EngineWrapper):
    """An engine that picks its intra-op thread count from ``candidates`` while it runs.

    Attributes:
        chosen: the kept count (None while trying).
        cycles_ms: candidate -> median cycle in ms, once chosen.
    """

    stateful = True  # its trial assumes one call at a time

    def __init__(self, engine: Any, candidates: tuple[int, ...] | None = None, *, window: int = 10,
                 rounds: int = 2, warmup: int = 3, margin: float = 0.05,
                 clock: Callable[[], float] = time.perf_counter,
                 open_session: Callable[[Any, int], Any] | None = None) -> None:
        super().__init__(engine)
        self.clock = clock
        self.open_session = open_session or (lambda path, count: create_session(path, "cpu", count))
        self.candidates = tuple(candidates or thread_candidates())
        self.window, self.rounds, self.warmup, self.margin = window, rounds, warmup, margin
        self._sessions = {self.candidates[0]: engine.session}
        self._slots = [c for _ in range(rounds) for c in self.candidates] if len(self.candidates) > 1 else []
        self._calls = 0
        self._last_start: float | None = None
        self._last_count: int | None = None
        self._cycles: dict[int, list[float]] = {c: [] for c in self.candidates}
        self.chosen: int | None = None if self._slots else self.candidates[0]
        self.cycles_ms: dict[int, float] = {}

    @property
    def report(self) -> str:
        """One line: the choice and what each candidate measured."""
        if len(self.candidates) == 1:
            return f"threads auto: {self.candidates[0]} (one core)"
        if self.chosen is None or not self.cycles_ms:
            return f"threads auto: {self.candidates[0]} (the job ended before the trial did)"
        others = ", ".join(f"{c}: {ms:.1f} ms" for c, ms in self.cycles_ms.items() if c != self.chosen)
        return (f"threads auto: {self.chosen} ({self.cycles_ms[self.chosen]:.1f} ms per inference cycle; "
                f"{others})")

    def segment(self, frame: Frame) -> None:
        now = self.clock()
        count = self._count_for_call()
        if self._last_start is not None and self._last_count is not None and self._last_count == count:
            self._cycles[count].append(now - self._last_start)  # a cycle within one candidate's window
        self._last_start, self._last_count = now, count
        self.engine.session = self._session(count)
        self.engine.segment(frame)
        self._calls += 1
        if self.chosen is None and self._calls >= self.warmup + len(self._slots) * self.window:
            self._choose()

    def _count_for_call(self) -> int:
        if self.chosen is not None:
            return self.chosen
        slot = max(0, self._calls - self.warmup) // self.window
        return self._slots[min(slot, len(self._slots) - 1)]

    def _session(self, count: int):
        if count not in self._sessions:
            self._sessions[count] = self.open_session(self.engine.path, count)
        return self._sessions[count]

    def _choose(self) -> None:
        self.cycles_ms = {c: 1000 * statistics.median(v) for c, v in self._cycles.items() if v}
        best = self.candidates[0]  # the most threads: kept unless fewer are clearly faster
        for count in self.candidates[1:]:
            if count in self.cycles_ms and best in self.cycles_ms and \
                    self.cycles_ms[count] < (1 - self.margin) * self.cycles_ms[best]:
                best = count
        self.chosen = best
        self.engine.session = self._sessions[best]
        self._sessions = {best: self._sessions[best]}
        log.info("%s", self.report)


def tune_threads(engine: Any, candidates: tuple[int, ...] | None = None, **kwargs: Any) -> Any:
    """Wrap ``engine`` in a :class:`ThreadTuner` when it is a CPU onnxruntime engine; else return it."""
    if getattr(engine, "provider", None) != CPU or not hasattr(engine, "session") or not hasattr(engine, "path"):
        return engine
    tuner = ThreadTuner(engine, candidates, **kwargs)
    return engine if len(tuner.candidates) == 1 else tuner
