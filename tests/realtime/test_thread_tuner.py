"""``--threads auto``: the tuner keeps the thread count that runs the job faster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtseg.errors import OptionError
from rtseg.realtime.app import process
from rtseg.realtime.engine import load_model
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import ModelOptions
from rtseg.realtime.session import CPU
from rtseg.realtime.thread_tuner import ThreadTuner, thread_candidates, tune_threads
from tests.factories import make_video


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeEngine:
    """An engine whose 'session' is its thread count; each call advances a fake clock by the
    cycle that count gives."""

    provider = CPU
    path = Path("model.onnx")
    info = None

    def __init__(self, clock: Clock, cycle_ms: dict[int, float], threads: int) -> None:
        self.clock, self.cycle_ms, self.session = clock, cycle_ms, threads
        self.calls: list[int] = []

    def segment(self, frame: Frame) -> None:
        self.calls.append(self.session)
        frame.labels = np.zeros(frame.image.shape[:2], np.uint8)
        self.clock.now += self.cycle_ms[self.session] / 1000


def _run(cycle_ms: dict[int, float], frames: int, **kwargs) -> tuple[ThreadTuner, FakeEngine]:
    clock = Clock()
    engine = FakeEngine(clock, cycle_ms, threads=max(cycle_ms))
    tuner = ThreadTuner(engine, tuple(sorted(cycle_ms, reverse=True)), clock=clock,
                        open_session=lambda path, count: count, **kwargs)
    for index in range(frames):
        tuner.segment(Frame(image=np.zeros((4, 4, 3), np.uint8), index=index))
    return tuner, engine


def test_fewer_threads_are_kept_when_they_run_the_job_faster() -> None:
    tuner, engine = _run({2: 20.0, 1: 15.0}, frames=60, window=5, rounds=2, warmup=2)
    assert tuner.chosen == 1 and engine.calls[-10:] == [1] * 10
    assert tuner.cycles_ms == {2: pytest.approx(20.0), 1: pytest.approx(15.0)}
    assert tuner.report == "threads auto: 1 (15.0 ms per inference cycle; 2: 20.0 ms)"
    assert set(engine.calls[:22]) == {1, 2}  # both were tried, interleaved


def test_all_cores_stay_unless_fewer_are_clearly_faster() -> None:
    tuner, engine = _run({2: 20.0, 1: 19.5}, frames=40, window=5, rounds=2, warmup=2)
    assert tuner.chosen == 2 and engine.calls[-5:] == [2] * 5
    tuner, _ = _run({2: 15.0, 1: 20.0}, frames=40, window=5, rounds=2, warmup=2)
    assert tuner.chosen == 2


def test_a_job_shorter_than_the_trial_says_so() -> None:
    tuner, _ = _run({2: 20.0, 1: 15.0}, frames=6, window=5, rounds=2, warmup=2)
    assert tuner.chosen is None and "ended before the trial" in tuner.report


def test_candidates_are_all_cores_and_fewer() -> None:
    assert thread_candidates(1) == (1,)
    assert thread_candidates(2) == (2, 1)
    assert thread_candidates(16) == (16, 14)


def test_non_cpu_engines_are_not_wrapped(channel_model: Path) -> None:
    engine = load_model("otsu")
    assert tune_threads(engine) is engine
    onnx = load_model(channel_model, threads=2)
    assert isinstance(tune_threads(onnx, (2, 1)), ThreadTuner)
    assert tune_threads(onnx, (1,)) is onnx


def test_auto_threads_give_the_same_labels_and_report_the_choice(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=40, width=96, height=64, noise=True)
    auto = process(str(clip), None, model=str(channel_model), threads="auto", streams=1,
                   save_masks=tmp_path / "auto", progress=False)
    fixed = process(str(clip), None, model=str(channel_model), threads=1, save_masks=tmp_path / "one",
                    progress=False)
    assert auto.stats.written == fixed.stats.written == 40
    auto_masks = sorted((tmp_path / "auto").rglob("*.png"))
    assert auto_masks and [p.read_bytes() for p in auto_masks] == \
        [p.read_bytes() for p in sorted((tmp_path / "one").rglob("*.png"))]
    report = auto.stats.summary()["threads"]
    if len(thread_candidates()) > 1:
        assert report.startswith("threads auto: ")
    assert fixed.stats.summary()["threads"] is None


def test_threads_option_accepts_auto_and_counts_only() -> None:
    assert ModelOptions().threads == "auto"
    assert ModelOptions(threads=0).threads == 0
    with pytest.raises(OptionError, match="threads must be 'auto'"):
        ModelOptions(threads="fast")
    with pytest.raises(OptionError):
        ModelOptions(threads=-1)
