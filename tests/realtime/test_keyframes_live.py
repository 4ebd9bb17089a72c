"""Keyframes on live sources: ``auto`` propagates instead of running the model when the frame
is already late (reason ``"behind"``), but never past ``auto_max`` frames or across a cut.
Lateness is driven by a fake clock, or by a model that is many frame intervals slow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_keyframes import OracleEngine, square_scene, write_clip

from rtseg.realtime.app import process
from rtseg.realtime.frame import Frame
from rtseg.realtime.keyframes import KeyframeEngine, live_budget
from rtseg.realtime.sources import PacedSource, VideoSource

pytestmark = pytest.mark.timeout(60)

INTERVAL = 0.04  # 25 fps


class FakeClock:
    """``now`` is each frame's capture time plus the age the test gives that frame."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_late(engine: KeyframeEngine, clock: FakeClock, images: list[np.ndarray], ages: list[float]) -> list[Frame]:
    frames = []
    for index, (image, age) in enumerate(zip(images, ages)):
        frame = Frame(image=image, index=index, capture_time=INTERVAL * index)
        clock.now = frame.capture_time + age
        engine.segment(frame)
        frames.append(frame)
    return frames


def test_auto_propagates_late_frames_but_never_past_auto_max() -> None:
    images, truth = square_scene(12)  # the square moves every frame: "moved" asks for the model each time
    ages = [0.1] * 7 + [0.0] * 2 + [0.1] * 3  # late from the start, caught up at frames 7 and 8
    clock = FakeClock()
    oracle = OracleEngine(truth)
    engine = KeyframeEngine(oracle, every="auto", auto_change=0.0, behind=INTERVAL, clock=clock)
    frames = run_late(engine, clock, images, ages)
    # 0: the first frame always runs; 4: auto_max (4) frames since it; 7, 8: in time again; 11: auto_max
    assert oracle.calls == [0, 4, 7, 8], oracle.calls
    assert engine.reasons == {"start": 1, "max": 1, "moved": 2, "behind": 8}, engine.reasons
    assert [f.inferred for f in frames] == [i in (0, 4, 7, 8) for i in range(12)]
    assert all(f.labels is not None and f.labels.shape == truth[0].shape for f in frames)  # every frame labelled


def test_without_a_budget_late_frames_still_run_the_model() -> None:
    """Files (no ``behind``): lateness is ignored, every frame that moved runs the model."""
    images, truth = square_scene(8)
    clock = FakeClock()
    oracle = OracleEngine(truth)
    engine = KeyframeEngine(oracle, every="auto", auto_change=0.0, clock=clock)
    run_late(engine, clock, images, [1.0] * 8)
    assert oracle.calls == list(range(8)) and engine.reasons["behind"] == 0


def test_a_scene_cut_runs_the_model_even_when_late() -> None:
    first, first_truth = square_scene(6, seed=0)
    second, second_truth = square_scene(4, seed=100)
    second = [cv2.flip(image, -1) for image in second]
    second_truth = [cv2.flip(labels, -1) for labels in second_truth]
    clock = FakeClock()
    oracle = OracleEngine(first_truth + second_truth)
    engine = KeyframeEngine(oracle, every="auto", behind=INTERVAL, clock=clock, auto_max=100)
    run_late(engine, clock, first + second, [0.0] + [0.5] * 9)
    assert 6 in oracle.calls and engine.reasons["cut"] == 1, (oracle.calls, engine.reasons)


def test_fixed_n_keeps_its_cadence_when_late() -> None:
    """Only ``auto`` trades keyframes for latency; ``--infer-every N`` is a promise."""
    images, truth = square_scene(7)
    clock = FakeClock()
    oracle = OracleEngine(truth)
    run_late(KeyframeEngine(oracle, every=3, behind=INTERVAL, clock=clock), clock, images, [1.0] * 7)
    assert oracle.calls == [0, 3, 6]


def test_live_budget_is_one_frame_interval_for_paced_and_live_sources(tmp_path: Path) -> None:
    images, _ = square_scene(3)
    clip = write_clip(tmp_path / "in.mp4", images, [0, 40, 80])
    with VideoSource(str(clip)) as plain:
        assert live_budget(plain) is None  # a file read as fast as it decodes
        assert live_budget(PacedSource(plain, live=False)) == pytest.approx(1 / 25)  # --realtime
        assert live_budget(PacedSource(plain, live=True)) == pytest.approx(1 / 25)  # --live on a file
    with VideoSource(str(clip), live=True) as live:
        assert live_budget(live) == pytest.approx(1 / 25)
    assert live_budget(None) is None


class SlowOracle(OracleEngine):
    """The oracle, but each model run takes 4 frame intervals (the pipeline must fall behind)."""

    def segment(self, frame: Frame) -> None:
        time.sleep(4 * INTERVAL)
        super().segment(frame)


@pytest.mark.parametrize("paced", [True, False])
def test_a_slow_model_on_a_paced_file_propagates_to_keep_up(tmp_path: Path, monkeypatch, paced: bool) -> None:
    """End to end: ``--realtime`` (paced, nothing dropped) with a model 4x slower than the frame
    rate. Every frame is still written; the frames after a model run are late by several
    intervals, so auto propagates them ("behind") instead of running the model, until
    ``auto_max``. The same file read unpaced runs the model whenever the square moved."""
    import rtseg.realtime.keyframes as keyframes

    made: list[KeyframeEngine] = []

    class Recording(KeyframeEngine):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["auto_change"] = 0.0  # the square moves every frame: every frame asks for the model
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(keyframes, "KeyframeEngine", Recording)
    n = 12
    images, truth = square_scene(n)
    clip = write_clip(tmp_path / "in.mp4", images, [40 * i for i in range(n)])
    source = PacedSource(VideoSource(str(clip)), live=False) if paced else VideoSource(str(clip))
    jsonl = tmp_path / "stats.jsonl"
    result = process(source, tmp_path / "out.mp4", model=SlowOracle(truth), infer_every="auto", stats=jsonl,
                     progress=False, hud=False)
    assert result.complete and result.stats.written == n
    inferred = [json.loads(line)["inferred"] for line in jsonl.read_text().splitlines()]
    assert len(inferred) == n and inferred[0]
    engine = made[0]
    if paced:
        assert engine.behind == pytest.approx(INTERVAL)
        assert engine.reasons["behind"] >= 3 and sum(inferred) <= n - 3, (engine.reasons, inferred)
        runs = "".join("k" if i else "p" for i in inferred).split("k")
        assert max(len(run) for run in runs) <= engine.auto_max - 1, inferred  # never past auto_max
    else:
        assert engine.behind is None and engine.reasons["behind"] == 0 and all(inferred), engine.reasons
