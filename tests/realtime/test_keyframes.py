"""Keyframe inference (--infer-every N|auto), label propagation by optical flow, --smooth, and the
keyframe benchmark, on tiny synthetic scenes made here."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rtseg.contract import ModelInfo
from rtseg.realtime.app import process
from rtseg.realtime.frame import Frame
from rtseg.realtime.keyframes import KeyframeEngine
from rtseg.realtime.render import hud_lines
from rtseg.realtime.stats import PipelineStats

from factories import read_video

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 160)  # height, width
SQUARE = 40
STEP = (3, 2)  # the square moves this many pixels (x, y) per frame


def texture(seed: int, low: int, high: int, shape: tuple[int, int] = SIZE) -> np.ndarray:
    """Smooth random grey texture (blobs a few pixels wide) between ``low`` and ``high``."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (low + noise * (high - low)).astype(np.uint8)


def square_scene(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A red textured square moving over a green textured background; images (BGR) and true labels.

    Labels follow the channel model of tests/factories.py: 0 where red is brightest (the
    square), 1 where green is (the background).
    """
    background = np.dstack([texture(seed + 1, 0, 60), texture(seed + 2, 120, 230), texture(seed + 3, 0, 60)])
    patch = np.dstack([texture(seed + 4, 0, 60, (SQUARE, SQUARE)), texture(seed + 5, 0, 60, (SQUARE, SQUARE)),
                       texture(seed + 6, 130, 250, (SQUARE, SQUARE))])
    images, labels = [], []
    for i in range(n):
        x, y = 20 + STEP[0] * i, 20 + STEP[1] * i
        image = background.copy()
        image[y:y + SQUARE, x:x + SQUARE] = patch
        truth = np.ones(SIZE, np.uint8)
        truth[y:y + SQUARE, x:x + SQUARE] = 0
        images.append(image)
        labels.append(truth)
    return images, labels


class OracleEngine:
    """An engine that knows the true labels of each frame (by index) and counts its calls."""

    def __init__(self, labels: list[np.ndarray], flicker: float = 0.0,
                 confidence: list[np.ndarray] | None = None, blip_confidence: int = 0) -> None:
        self.labels, self.flicker = labels, flicker
        self.confidence, self.blip_confidence = confidence, blip_confidence
        self.info = ModelInfo(name="oracle", classes=("square", "background"), output="labels").with_classes(2)
        self.provider = "CPUExecutionProvider"
        self.calls: list[int] = []
        self._rng = np.random.default_rng(7)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def segment(self, frame: Frame) -> None:
        self.calls.append(frame.index)
        labels = self.labels[frame.index].copy()
        if self.flicker:  # one-frame blips: blocks of 4 x 4 pixels take the other class
            blocks = self._rng.random((SIZE[0] // 4, SIZE[1] // 4)) < self.flicker
            flip = np.kron(blocks, np.ones((4, 4), bool))
            labels[flip] = 1 - labels[flip]
        frame.labels = labels
        if self.confidence is not None:
            frame.confidence = self.confidence[frame.index].copy()
            if self.flicker and self.blip_confidence:
                frame.confidence[flip] = self.blip_confidence  # the model is unsure of its blips
        frame.timings["infer"] = 0.0


def run_engine(engine: KeyframeEngine, images: list[np.ndarray]) -> list[Frame]:
    frames = []
    for index, image in enumerate(images):
        frame = Frame(image=image, index=index)
        engine.segment(frame)
        frames.append(frame)
    return frames


def iou(a: np.ndarray, b: np.ndarray, cls: int = 0) -> float:
    return float(np.sum((a == cls) & (b == cls)) / np.sum((a == cls) | (b == cls)))


def flip_rate(labels: list[np.ndarray]) -> float:
    return float(np.mean([np.mean(a != b) for a, b in zip(labels, labels[1:])]))


def write_clip(path: Path, images: list[np.ndarray], pts_ms: list[int]) -> Path:
    """Encode BGR images as H.264 with the given (variable) timestamps in milliseconds."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv444p"  # no chroma subsampling: the colour labels stay sharp
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0", "preset": "ultrafast", "crf": "12"}
        for image, pts in zip(images, pts_ms):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_propagated_frames_of_a_translating_square_match_the_truth() -> None:
    images, truth = square_scene(10)
    oracle = OracleEngine(truth)
    frames = run_engine(KeyframeEngine(oracle, every=3), images)
    assert oracle.calls == [0, 3, 6, 9]
    assert [f.inferred for f in frames] == [True, False, False] * 3 + [True]
    for frame in frames:
        if frame.inferred:
            continue
        key = frame.index - frame.index % 3
        propagated, held = iou(frame.labels, truth[frame.index]), iou(truth[key], truth[frame.index])
        assert propagated > 0.85, (frame.index, propagated)  # measured 0.88-0.95 (DIS blurs motion edges)
        assert propagated > held + 0.1, (frame.index, propagated, held)  # holding: 0.78, then 0.62
        assert frame.labels.shape == SIZE and frame.labels.dtype == np.uint8
        assert "flow" in frame.timings and "infer" not in frame.timings


def test_every_one_without_smoothing_is_the_model_itself() -> None:
    images, truth = square_scene(4)
    oracle = OracleEngine(truth)
    frames = run_engine(KeyframeEngine(oracle, every=1), images)
    assert oracle.calls == [0, 1, 2, 3] and all(f.inferred for f in frames)
    assert all(np.array_equal(f.labels, t) for f, t in zip(frames, truth))


def test_a_scene_cut_fires_a_keyframe() -> None:
    first, first_truth = square_scene(10, seed=0)
    second, second_truth = square_scene(10, seed=100)
    second = [cv2.flip(image, -1) for image in second]  # another scene, upside down
    second_truth = [cv2.flip(labels, -1) for labels in second_truth]
    for every in ("auto", 8):
        oracle = OracleEngine(first_truth + second_truth)
        engine = KeyframeEngine(oracle, every=every)
        frames = run_engine(engine, first + second)
        assert frames[10].inferred, every
        assert engine.reasons["cut"] == 1, engine.reasons
        assert not all(f.inferred for f in frames), "auto propagates while the scene moves little"
        assert iou(frames[11].labels, second_truth[1]) > 0.9  # carried from the new scene, not the old


def test_auto_runs_the_model_more_often_when_the_scene_moves_faster() -> None:
    slow_images, slow_truth = square_scene(30)
    fast_images, fast_truth = slow_images[::3], slow_truth[::3]  # the same motion, 3x as fast
    slow, fast = OracleEngine(slow_truth), OracleEngine(fast_truth)
    run_engine(KeyframeEngine(slow, every="auto"), slow_images)
    run_engine(KeyframeEngine(fast, every="auto"), fast_images)
    assert len(fast.calls) / len(fast_images) > len(slow.calls) / len(slow_images)


def test_smooth_reduces_the_flip_rate_of_a_flickery_model() -> None:
    images, truth = square_scene(24)
    raw = [f.labels for f in run_engine(KeyframeEngine(OracleEngine(truth, flicker=0.05), every=1), images)]
    smoothed = run_engine(KeyframeEngine(OracleEngine(truth, flicker=0.05), every=1, smooth=True), images)
    labels = [f.labels for f in smoothed]
    assert flip_rate(labels) < 0.5 * flip_rate(raw), (flip_rate(labels), flip_rate(raw))
    truth_agreement = np.mean([np.mean(a == b) for a, b in zip(labels, truth)])
    raw_agreement = np.mean([np.mean(a == b) for a, b in zip(raw, truth)])
    assert truth_agreement > raw_agreement  # the blips are gone, the moving square is kept
    assert all(f.inferred for f in smoothed)


def test_smooth_halves_the_flips_of_a_flickering_confident_model_and_keeps_agreement() -> None:
    """The goal of --smooth on a flickery clip: half the flips, no agreement lost where it counts.

    The model is sure of the scene (230) and unsure of its blips (90), as camvid-road is unsure
    where it flickers. Agreement with the flickery every-frame output must fall: any filter
    that removes flips disagrees with it on at least half the flips removed (see
    docs/performance.md), so that is the bound checked; against the true labels it gains.
    """
    images, truth = square_scene(24)
    confidence = [np.full(SIZE, 230, np.uint8) for _ in truth]

    def oracle() -> OracleEngine:
        return OracleEngine(truth, flicker=0.08, confidence=confidence, blip_confidence=90)

    raw = [f.labels for f in run_engine(KeyframeEngine(oracle(), every=1), images)]
    labels = [f.labels for f in run_engine(KeyframeEngine(oracle(), every=1, smooth=True), images)]
    raw_flips, flips = flip_rate(raw), flip_rate(labels)
    assert flips < 0.5 * raw_flips, (flips, raw_flips)
    vs_truth = np.mean([np.mean(a == b) for a, b in zip(labels, truth)])
    raw_vs_truth = np.mean([np.mean(a == b) for a, b in zip(raw, truth)])
    assert vs_truth >= raw_vs_truth, (vs_truth, raw_vs_truth)  # the blips go, the moving square stays
    vs_raw = np.mean([np.mean(a == b) for a, b in zip(labels, raw)])
    assert vs_raw >= 1 - (raw_flips - flips), (vs_raw, raw_flips, flips)  # not far from the bound


def test_smooth_weighs_votes_by_confidence() -> None:
    """Two unsure outputs in a row do not change a confident label; two sure ones do."""
    images, truth = square_scene(8)
    for unsure, shows in ((60, False), (230, True)):
        labels = [t.copy() for t in truth]
        confidence = [np.full(SIZE, 230, np.uint8) for _ in truth]
        for index in (4, 5):  # a patch of background says "square", twice
            labels[index][4:14, 120:130] = 0
            confidence[index][4:14, 120:130] = unsure
        frames = run_engine(KeyframeEngine(OracleEngine(labels, confidence=confidence), every=1, smooth=True),
                            images)
        assert (frames[4].labels[4:14, 120:130] == 1).all()  # one output is never enough
        assert (frames[5].labels[4:14, 120:130] == 0).all() == shows, unsure
        assert (frames[6].labels[4:14, 120:130] == 1).all() or shows  # back to the background when it was a blip


def replaced_scene(n: int, at: int) -> list[np.ndarray]:
    """A still textured scene whose left part (45 % of the image) is new content from frame ``at``."""
    before = np.dstack([texture(1, 0, 100), texture(2, 0, 100), texture(3, 0, 100)])
    after = before.copy()
    after[:, :72] = np.dstack([texture(4, 150, 250), texture(5, 150, 250), texture(6, 150, 250)])[:, :72]
    return [before if i < at else after for i in range(n)]


def test_auto_runs_the_model_when_the_carried_confidence_drops() -> None:
    """New content the model was sure of before: its carried confidence falls (untracked pixels
    carry none), and with the other triggers off, that alone brings a keyframe."""
    images = replaced_scene(6, at=3)
    labels = [np.ones(SIZE, np.uint8)] * 6
    sure = [np.full(SIZE, 240, np.uint8)] * 6
    unsure_there = [np.where(np.arange(SIZE[1]) < 72, 20, 240).astype(np.uint8)[None].repeat(SIZE[0], 0)] * 6
    only_confidence = dict(every="auto", auto_change=1.0, auto_untracked=1.0, auto_max=100)
    engine = KeyframeEngine(OracleEngine(labels, confidence=sure), **only_confidence)
    frames = run_engine(engine, images)
    assert [f.inferred for f in frames] == [True, False, False, True, False, False]
    assert engine.reasons == {"start": 1, "confidence": 1}
    assert engine._confidence_drop() < 0.01  # the new keyframe's confidence is carried intact
    # the same new content where the model was unsure anyway, or a model without confidence: no keyframe
    for confidence in (unsure_there, None):
        engine = KeyframeEngine(OracleEngine(labels, confidence=confidence), **only_confidence)
        assert [f.inferred for f in run_engine(engine, images)] == [True] + [False] * 5
    # with its default threshold the confidence trigger stays quiet on the moving square
    images, truth = square_scene(12)
    engine = KeyframeEngine(OracleEngine(truth, confidence=[np.full(SIZE, 240, np.uint8)] * 12), every="auto")
    run_engine(engine, images)
    assert engine.reasons["confidence"] == 0, engine.reasons


def test_stats_and_hud_count_inferred_and_propagated_frames() -> None:
    images, truth = square_scene(6)
    stats = PipelineStats()
    run_engine(KeyframeEngine(OracleEngine(truth), every=3, stats=stats), images)
    assert stats.propagated == 4
    lines = hud_lines(stats, "oracle", "CPUExecutionProvider")
    assert any("model" in line and "propagated" in line for line in lines)
    assert not any("propagated" in line for line in hud_lines(PipelineStats(), "oracle", "CPU"))


@pytest.mark.parametrize("via", ["process", "cli"])
def test_every_frame_is_written_with_its_timestamps_stats_and_mask(tmp_path: Path, channel_model: Path,
                                                                   via: str) -> None:
    images, truth = square_scene(9)
    pts = [0, 40, 80, 200, 240, 250, 400, 440, 480]  # variable frame rate
    clip = write_clip(tmp_path / "in.mp4", images, pts)
    out, jsonl, masks = tmp_path / "out.mp4", tmp_path / "stats.jsonl", tmp_path / "masks"
    if via == "process":
        result = process(str(clip), out, model=str(channel_model), infer_every=3, stats=jsonl, save_masks=masks,
                         progress=False, view="mask")
        assert result.complete and result.stats.written == 9 and result.stats.propagated == 6
    else:
        from rtseg.cli import main

        assert main(["--source", str(clip), "--output", str(out), "--model", str(channel_model), "--infer-every",
                     "3", "--stats", str(jsonl), "--save-masks", str(masks), "--view", "mask", "--quiet"]) == 0
    times, _ = read_video(out)
    assert times == [Fraction(p, 1000) for p in pts]
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["inferred"] for r in records] == [True, False, False] * 3
    assert all(r["timings_ms"] for r in records)
    for index, labels in enumerate(truth):
        mask = cv2.imread(str(masks / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None and (masks / f"{index:06d}_color.png").exists()
        assert iou(mask, labels) > 0.85, index  # propagated frames' label maps are written like inferred ones


def test_cli_auto_and_smooth_run_end_to_end(tmp_path: Path, channel_model: Path) -> None:
    from rtseg.cli import main

    images, _ = square_scene(8)
    clip = write_clip(tmp_path / "in.mp4", images, [40 * i for i in range(8)])
    jsonl = tmp_path / "stats.jsonl"
    assert main(["--source", str(clip), "--stats", str(jsonl), "--model", str(channel_model), "--infer-every",
                 "auto", "--smooth", "--no-display", "--quiet"]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 8 and records[0]["inferred"] is True


def test_keyframe_bench_prints_the_table(tmp_path: Path, channel_model: Path, capsys) -> None:
    from rtseg.cli import main

    images, _ = square_scene(8)
    clip = write_clip(tmp_path / "in.mp4", images, [40 * i for i in range(8)])
    assert main(["bench", "--keyframes", "--model", str(channel_model), "--source", str(clip), "--frames", "8",
                 "--repeats", "1"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ") and "mode" not in line]
    names = [row.split("|")[1].strip() for row in rows]
    assert names == ["every frame", "N=2", "N=3", "N=5", "auto", "every frame + smooth", "N=3 + smooth",
                     "auto + smooth"]
    assert rows[0].split("|")[5].strip() == "100.00 / 100.00"  # every frame agrees with itself
    assert "N=3 pipeline / raw inference" in table and "propagation beats holding" in table


def test_keyframe_bench_on_a_noisy_clip_scores_against_the_clean_frames(tmp_path: Path, channel_model: Path) -> None:
    from rtseg.realtime.bench_keyframes import format_keyframe_table, run_keyframe_bench
    from rtseg.realtime.engine import load_model

    images, _ = square_scene(8)
    clip = write_clip(tmp_path / "in.mp4", images, [40 * i for i in range(8)])
    bench = run_keyframe_bench(load_model(str(channel_model)), str(clip), frames=8, repeats=1, noise=12,
                               pipeline=False)
    assert all(len(m.clean) == 8 for m in bench.modes)
    table = format_keyframe_table(bench, "noisy")
    assert "vs clean frames" in table and "Gaussian noise sigma 12" in table
    smooth = next(line for line in table.splitlines() if line.startswith("smooth: "))
    assert "clean frames' labels" in smooth and "for any filter removing these flips" in smooth
