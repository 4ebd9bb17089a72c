import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from rtseg.errors import SinkError, SourceStalledError
from rtseg.realtime.app import process
from rtseg.realtime.controls import Controls
from rtseg.realtime.engine import load_model
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import RenderOptions
from rtseg.realtime.pipeline import Pipeline, PipelineError
from rtseg.realtime.render import Renderer
from rtseg.realtime.sinks import Sink, VideoFileSink
from rtseg.realtime.sources import CameraSource, VideoSource
from rtseg.realtime.stats import PipelineStats

from factories import BLUE, GREEN, MASK_BGR, RED, FakeCapture, audio_summary, make_video, read_video

pytestmark = pytest.mark.timeout(30)


class ListSink(Sink):
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.closed = False

    def write(self, frame: Frame, image: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


class SlowEngine:
    """Wraps an engine and adds a fixed delay, like a heavier model would."""

    def __init__(self, engine, delay: float, fail_at: int | None = None) -> None:
        self.engine, self.delay, self.fail_at = engine, delay, fail_at
        self.info, self.provider = engine.info, engine.provider

    def segment(self, frame: Frame) -> None:
        if frame.index == self.fail_at:
            raise RuntimeError("boom")
        time.sleep(self.delay)
        self.engine.segment(frame)


def test_file_pipeline_keeps_every_frame_timestamp_and_audio(tmp_path: Path, channel_model: Path) -> None:
    pts = [0, 40, 80, 200, 240, 250, 400, 440, 480, 700]
    clip = make_video(tmp_path / "in.mp4", pts_ms=pts, audio=True)
    engine = load_model(channel_model, device="cpu")
    source = VideoSource(str(clip))
    sink = VideoFileSink(tmp_path / "out.mp4", fps=source.info.fps, passthrough_streams=source.info.passthrough_streams)
    stats = Pipeline(source, SlowEngine(engine, 0.01), Renderer(engine.info, RenderOptions(view="mask")), [sink]).run()
    assert stats.captured == stats.written == len(pts) and stats.dropped == 0
    times, images = read_video(tmp_path / "out.mp4")
    assert times == [Fraction(p, 1000) for p in pts]
    colors = [RED, GREEN, BLUE]
    for i, image in enumerate(images):
        assert np.abs(image[24, 32].astype(int) - MASK_BGR[colors[i % 3]]).max() <= 12, i
    n_in, seconds_in = audio_summary(clip)
    n_out, seconds_out = audio_summary(tmp_path / "out.mp4")
    assert n_out == n_in and seconds_out == pytest.approx(seconds_in, abs=1e-6)


def test_live_source_keeps_the_newest_frame_and_counts_drops(channel_model: Path) -> None:
    engine = load_model(channel_model, device="cpu")
    capture = FakeCapture(n=60, fps=200, stall="fail")
    source = CameraSource(capture, name="fake")
    sink = ListSink()
    controls = Controls()
    pipeline = Pipeline(source, SlowEngine(engine, 0.03), Renderer(engine.info, controls=controls), [sink],
                        stall_timeout=5.0)

    def stop_when_done() -> None:
        while capture.sent < 60:
            time.sleep(0.01)
        time.sleep(0.2)
        controls.request_stop("test")

    threading.Thread(target=stop_when_done, daemon=True).start()
    stats = pipeline.run()
    seen = [int(f.image[0, 0, 0]) + 256 * int(f.image[0, 0, 1]) for f in sink.frames]
    assert stats.dropped > 20, "a slow engine on a fast camera must drop frames"
    assert stats.written + stats.dropped == stats.captured, "every frame is either shown or counted as dropped"
    assert seen == sorted(seen) and seen[-1] >= 57, "the newest frames win"
    assert sink.closed and capture.released


def test_blocking_camera_read_is_reported_as_a_stall() -> None:
    """A driver read that never returns must not hang the app."""
    engine = load_model("otsu")
    source = CameraSource(FakeCapture(n=3, stall="block"), name="frozen cam")
    t0 = time.perf_counter()
    with pytest.raises(SourceStalledError, match="frozen cam delivered no new frame"):
        Pipeline(source, engine, Renderer(engine.info), [ListSink()], stall_timeout=0.5).run()
    assert time.perf_counter() - t0 < 3.0


def test_worker_exception_stops_everything_and_surfaces(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=30)
    engine = load_model(channel_model, device="cpu")
    sink = ListSink()
    before = set(threading.enumerate())
    with pytest.raises(PipelineError, match="inference stage failed: RuntimeError: boom"):
        Pipeline(VideoSource(str(clip)), SlowEngine(engine, 0, fail_at=5), Renderer(engine.info), [sink]).run()
    assert sink.closed and len(sink.frames) <= 5
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("rtseg-")]


def test_sink_error_is_raised_as_is(tmp_path: Path) -> None:
    class FullDisk(ListSink):
        def write(self, frame, image):
            if frame.index == 2:
                raise SinkError("writing out.mp4 failed: No space left on device")
            super().write(frame, image)

    clip = make_video(tmp_path / "in.mp4", n=20)
    engine = load_model("otsu")
    with pytest.raises(SinkError, match="No space left"):
        Pipeline(VideoSource(str(clip)), engine, Renderer(engine.info), [FullDisk()]).run()


def test_stop_request_drains_frames_in_flight(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=100)
    engine = load_model("otsu")
    controls = Controls()
    sink = ListSink()
    pipeline = Pipeline(VideoSource(str(clip)), SlowEngine(engine, 0.01), Renderer(engine.info, controls=controls),
                        [sink])
    threading.Timer(0.2, controls.request_stop, args=("key",)).start()
    stats = pipeline.run()
    assert stats.stop_reason == "key" and not stats.interrupted
    assert 0 < stats.written < 100
    assert stats.written == stats.captured, "frames read before the stop are all written"
    assert [f.index for f in sink.frames] == list(range(stats.written))


@pytest.mark.parametrize("stall", ["fail", "repeat"])
def test_stall_timeout_applies_to_cameras(tmp_path: Path, stall: str) -> None:
    """Regression: --stall-timeout was not passed to cameras, which used a fixed 2 s."""
    source = CameraSource(FakeCapture(n=5, stall=stall), name="fake cam")
    t0 = time.perf_counter()
    with pytest.raises(SourceStalledError, match="fake cam delivered no new frame"):
        process(source, stats=tmp_path / "s.jsonl", model="otsu", stall_timeout=0.4, progress=False)
    assert time.perf_counter() - t0 < 1.8, "0.4 s stall timeout, not the old fixed 2 s"


def test_stats_counters_are_exact_under_concurrent_writers() -> None:
    """Regression: PipelineStats.dropped was written from two threads without a lock."""
    stats = PipelineStats()

    def hammer() -> None:
        for _ in range(20000):
            stats.dropped_frame()
            stats.captured_frame(time.perf_counter())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.dropped == stats.captured == 80000


def test_pause_holds_the_render_thread_until_resumed(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=20)
    engine = load_model("otsu")
    controls = Controls(paused=True)
    sink = ListSink()
    pipeline = Pipeline(VideoSource(str(clip)), engine, Renderer(engine.info, controls=controls), [sink])
    threading.Timer(0.5, controls.set_paused, args=(False,)).start()
    t0 = time.perf_counter()
    stats = pipeline.run()
    assert stats.written == 20 and time.perf_counter() - t0 >= 0.45
