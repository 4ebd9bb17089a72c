"""Inference streams: several frames segmented at once on files, written back in order."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtseg.errors import OptionError
from rtseg.realtime.app import process
from rtseg.realtime.controls import Controls
from rtseg.realtime.engine import load_model
from rtseg.realtime.frame import Frame
from rtseg.realtime.pipeline import Pipeline, PipelineError
from rtseg.realtime.render import Renderer
from rtseg.realtime.session import CPU
from rtseg.realtime.sinks import Sink
from rtseg.realtime.sources import VideoSource
from rtseg.realtime.streams import StreamPlan, is_stateful, plan_streams
from rtseg.realtime.wrapper import EngineWrapper

from factories import make_video, read_video

pytestmark = pytest.mark.timeout(60)


class ListSink(Sink):
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


class JitteryEngine(EngineWrapper):
    """Takes a random 0-8 ms per frame, so that with two streams frames overtake each other;
    records which threads ran it and how many calls overlapped."""

    def __init__(self, engine, fail_at: int | None = None) -> None:
        super().__init__(engine)
        self.provider = CPU
        self.rng = random.Random(0)
        self.lock = threading.Lock()
        self.threads: set[str] = set()
        self.running = self.overlap = 0
        self.fail_at = fail_at

    def segment(self, frame: Frame) -> None:
        if frame.index == self.fail_at:
            raise RuntimeError("boom")
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.overlap = max(self.overlap, self.running)
            delay = self.rng.uniform(0, 0.008)
        time.sleep(delay)
        self.engine.segment(frame)
        with self.lock:
            self.running -= 1


def test_plans() -> None:
    file = dict(live=False, stateful=[], device="auto", cores=2)
    assert plan_streams("auto", "auto", **file) == StreamPlan(2, 1, tune=False)
    assert plan_streams("auto", 4, **file) == StreamPlan(2, 2, tune=False)  # --threads is the total
    assert plan_streams("auto", 1, **file) == StreamPlan(1, 1, tune=False)
    assert plan_streams("auto", None, **file) == StreamPlan(1, None, tune=False)  # onnxruntime's choice: as asked
    assert plan_streams("auto", "auto", **{**file, "cores": 1}) == StreamPlan(1, None, tune=True)
    assert plan_streams("auto", "auto", **{**file, "live": True}) == StreamPlan(1, None, tune=True)
    assert plan_streams("auto", "auto", **{**file, "stateful": ["--smooth"]}).streams == 1
    assert plan_streams("auto", "auto", **{**file, "device": "cuda"}).streams == 1
    assert plan_streams(3, "auto", **{**file, "cores": 6}) == StreamPlan(3, 2, tune=False)
    with pytest.raises(OptionError, match="needs a file source"):
        plan_streams(2, "auto", **{**file, "live": True})
    with pytest.raises(OptionError, match="cannot be combined with --infer-every"):
        plan_streams(2, "auto", **{**file, "stateful": ["--infer-every"]})
    assert StreamPlan(2, 1, False).report == "2 inference streams x 1 thread"


def test_two_streams_write_every_frame_in_order_with_its_labels(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=60, noise=True)
    otsu = load_model("otsu")
    engine = JitteryEngine(otsu)
    sink = ListSink()
    stats = Pipeline(VideoSource(str(clip)), engine, Renderer(otsu.info), [sink], workers=2).run()
    assert stats.written == stats.captured == 60
    assert [f.index for f in sink.frames] == list(range(60)) and [f.seq for f in sink.frames] == list(range(60))
    assert engine.overlap == 2 and len(engine.threads) == 2, "two frames were segmented at once"
    with VideoSource(str(clip)) as src:
        expected = [otsu(f.image) for f in src]
    assert all(np.array_equal(f.labels, e) for f, e in zip(sink.frames, expected))


def test_two_streams_drain_in_order_on_stop_and_surface_errors(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=300)
    otsu = load_model("otsu")
    controls = Controls()
    sink = ListSink()
    pipeline = Pipeline(VideoSource(str(clip)), JitteryEngine(otsu), Renderer(otsu.info, controls=controls), [sink],
                        workers=2)
    threading.Timer(0.15, controls.request_stop, args=("key",)).start()
    stats = pipeline.run()
    assert stats.stop_reason == "key" and 0 < stats.written < 300 and stats.written == stats.captured
    assert [f.index for f in sink.frames] == list(range(stats.written))
    before = set(threading.enumerate())
    with pytest.raises(PipelineError, match="inference stage failed: RuntimeError: boom"):
        Pipeline(VideoSource(str(clip)), JitteryEngine(otsu, fail_at=7), Renderer(otsu.info), [ListSink()],
                 workers=2).run()
    time.sleep(0.1)
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("rtseg-")]


def test_streams_need_a_file_source() -> None:
    class Live(VideoSource):
        live = True

    with pytest.raises(ValueError, match="workers must be 1 for a live source"):
        Pipeline(Live.__new__(Live), load_model("otsu"), Renderer(load_model("otsu").info), [], workers=2)


def test_default_file_run_uses_two_streams_and_matches_one(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=24, width=96, height=64, noise=True)
    two = process(str(clip), tmp_path / "two.mp4", model=str(channel_model), save_masks=tmp_path / "m2",
                  progress=False)
    one = process(str(clip), tmp_path / "one.mp4", model=str(channel_model), streams=1, threads=1,
                  save_masks=tmp_path / "m1", progress=False)
    if len(__import__("os").sched_getaffinity(0)) >= 2:
        assert two.stats.summary()["threads"].startswith("2 inference streams")
    assert one.stats.summary()["threads"] is None
    masks = sorted(p.name for p in (tmp_path / "m1").rglob("*.png"))
    assert masks and masks == sorted(p.name for p in (tmp_path / "m2").rglob("*.png"))
    assert all((tmp_path / "m1" / n).read_bytes() == (tmp_path / "m2" / n).read_bytes()
               for n in (p.relative_to(tmp_path / "m1") for p in (tmp_path / "m1").rglob("*.png")))
    assert read_video(tmp_path / "two.mp4")[0] == read_video(tmp_path / "one.mp4")[0]  # same timestamps


def test_stateful_jobs_run_one_stream_and_say_why_when_asked_for_more(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=6)
    result = process(str(clip), tmp_path / "o.mp4", model=str(channel_model), infer_every=2, progress=False)
    assert "inference streams" not in (result.stats.summary()["threads"] or "")
    with pytest.raises(OptionError, match="cannot be combined with --smooth"):
        process(str(clip), tmp_path / "o.mp4", model=str(channel_model), smooth=True, streams=2, progress=False)
    assert is_stateful(EngineWrapper(load_model("otsu"))) is False


def test_opencv_uses_one_thread_during_a_run_on_small_machines(tmp_path: Path, monkeypatch) -> None:
    import cv2

    import rtseg.realtime.cpu as cpu

    seen: list[int] = []

    class Spy(EngineWrapper):
        def segment(self, frame: Frame) -> None:
            seen.append(cv2.getNumThreads())
            super().segment(frame)

    clip = make_video(tmp_path / "in.mp4", n=4)
    otsu = load_model("otsu")
    before = cv2.getNumThreads()
    for cores, expected in ((2, 1), (64, before)):
        monkeypatch.setattr(cpu, "available_cores", lambda cores=cores: cores)
        seen.clear()
        Pipeline(VideoSource(str(clip)), Spy(otsu), Renderer(otsu.info), [ListSink()]).run()
        assert seen and set(seen) == {expected}
        assert cv2.getNumThreads() == before, "the process's OpenCV setting is restored"
