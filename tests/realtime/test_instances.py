"""Instances, tracks and counts (``--instances``, ``--count-line``) on synthetic moving blobs made here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.cli import main
from rtseg.contract import CAMVID_CLASSES, ModelInfo
from rtseg.errors import ModelError
from rtseg.realtime.app import process
from rtseg.realtime.controls import Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.instances.components import find_instances, split_touching
from rtseg.realtime.instances.counting import CountLine
from rtseg.realtime.instances.evaluate import compare_counts
from rtseg.realtime.instances.records import thing_classes
from rtseg.realtime.instances.stage import InstanceEngine
from rtseg.realtime.options import OptionError, RenderOptions
from rtseg.realtime.preview.status import preview_status
from rtseg.realtime.render import Renderer, hud_lines
from rtseg.realtime.stats import PipelineStats

from factories import CAMVID, make_channel_argmax_model

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 160)  # height, width
CLASSES = ("road", "car", "pedestrian")
INFO = ModelInfo(name="blobs", classes=CLASSES, palette=((128, 64, 128), (64, 0, 128), (64, 64, 0)))
CAR, PED = 1, 2


def blobs(objects: list[tuple[int, int, list[tuple[float, float] | None]]], n: int) -> list[np.ndarray]:
    """Label maps of discs: each object is (class, radius, centre per frame or None when absent)."""
    maps = []
    for i in range(n):
        labels = np.zeros(SIZE, np.uint8)
        for cls, radius, path in objects:
            if path[i] is not None:
                cv2.circle(labels, (int(round(path[i][0])), int(round(path[i][1]))), radius, cls, -1)
        maps.append(labels)
    return maps


def straight(start: tuple[float, float], step: tuple[float, float], n: int) -> list[tuple[float, float]]:
    return [(start[0] + step[0] * i, start[1] + step[1] * i) for i in range(n)]


class ReplayEngine:
    """An engine whose label maps are given in advance (one per call, in order)."""

    def __init__(self, maps: list[np.ndarray], info: ModelInfo = INFO) -> None:
        self.maps, self.info, self.provider = iter(maps), info, "replay"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return next(self.maps)

    def segment(self, frame: Frame) -> None:
        frame.labels = next(self.maps)


def track(maps: list[np.ndarray], **kwargs) -> list[Frame]:
    engine = InstanceEngine(ReplayEngine(maps), **kwargs)
    frames = []
    for i in range(len(maps)):
        frame = Frame(np.zeros((*SIZE, 3), np.uint8), i)
        engine.segment(frame)
        frames.append(frame)
    return frames



# --- components -------------------------------------------------------------------------------


def test_components_count_each_class_drop_small_ones_and_give_box_area_centre() -> None:
    labels = np.zeros(SIZE, np.uint8)
    labels[10:30, 10:40] = CAR  # 20 x 30
    labels[50:70, 100:110] = CAR
    labels[80:100, 20:30] = PED
    labels[5:7, 150:152] = PED  # 4 px of noise
    found = find_instances(labels, {CAR: "car", PED: "pedestrian"}, min_area=20)
    assert sorted((i.class_name, i.box, i.area) for i in found) == [
        ("car", (10, 10, 40, 30), 600), ("car", (100, 50, 110, 70), 200), ("pedestrian", (20, 80, 30, 100), 200)]
    car = next(i for i in found if i.area == 600)
    assert car.centroid == (24.5, 19.5) and car.mask.shape == (20, 30) and car.mask.all()


def test_touching_objects_split_only_when_asked_and_only_at_a_neck() -> None:
    mask = np.zeros((40, 90), bool)
    cv2.circle(mask.view(np.uint8), (20, 20), 16, 1, -1)
    cv2.circle(mask.view(np.uint8), (66, 20), 16, 1, -1)
    mask[18:22, 30:60] = True  # a 4 px neck between two discs of radius 16
    parts = split_touching(mask, min_area=50)
    assert len(parts) == 2 and sum(int(p.sum()) for p in parts) == int(mask.sum())
    labels = mask.astype(np.uint8) * CAR
    assert len(find_instances(labels, {CAR: "car"}, 50)) == 1
    assert len(find_instances(labels, {CAR: "car"}, 50, split=True)) == 2
    rectangle = np.zeros((40, 90), bool)
    rectangle[5:35, 5:85] = True  # one long object: one core, no split
    assert len(split_touching(rectangle, 50)) == 1


def test_thing_classes_from_names_from_metadata_and_errors() -> None:
    assert thing_classes(ModelInfo(classes=CAMVID_CLASSES)) == {8: "car", 9: "pedestrian", 10: "bicyclist"}
    assert thing_classes(ModelInfo(classes=("bg", "boat", "buoy"), extra={"things": '["boat", 2]'})) == {
        1: "boat", 2: "buoy"}
    for meta in ('["ship"]', "{bad json", '{"a": 1}'):
        with pytest.raises(ValueError, match="things|ship"):
            thing_classes(ModelInfo(classes=("bg", "boat"), extra={"things": meta}))
    with pytest.raises(ModelError, match="no thing classes"):
        InstanceEngine(ReplayEngine([], ModelInfo(classes=("sky", "road"))))
    with pytest.raises(ModelError, match="not valid JSON"):
        InstanceEngine(ReplayEngine([], ModelInfo(classes=("sky", "car"), extra={"things": "["})))


# --- tracking -----------------------------------------------------------------------------------


def test_ids_stay_stable_for_blobs_passing_each_other_and_counts_match() -> None:
    n = 40
    objects = [
        (CAR, 9, straight((10, 40), (3.5, 0), n)),     # right along y=40
        (CAR, 9, straight((150, 61), (-3.5, 0), n)),   # left along y=61: passes the first 3 px apart
        (PED, 6, straight((80, 5), (0, 2.5), n)),      # down through both lanes (drawn on top)
    ]
    frames = track(blobs(objects, n), min_area=30)
    first = {(i.class_name, round(i.centroid[1] / 20)): i.id for i in frames[1].instances.instances}
    assert sorted(i for i in first.values()) == [1, 2, 3]
    cars = [sorted((i.centroid[1] < 50, i.id) for i in f.instances.instances if i.class_name == "car")
            for f in frames[1:]]
    upper = {ids[-1][1] for ids in cars if len(ids) == 2}  # the car on y=40 sorts last (True)
    lower = {ids[0][1] for ids in cars if len(ids) == 2}
    assert len(upper) == 1 and len(lower) == 1 and upper != lower, "a car changed ID"
    ped_ids = {i.id for f in frames[1:] for i in f.instances.instances if i.class_name == "pedestrian"}
    assert len(ped_ids) == 1
    last = frames[-1].instances
    assert last.unique == {"car": 2, "pedestrian": 1}
    for f in frames:
        truth = {"car": 0, "pedestrian": 0}
        for inst in f.instances.instances:
            truth[inst.class_name] += 1
        assert f.instances.counts == truth
    assert frames[0].instances.counts["car"] == 2 and all(i.id is None for i in frames[0].instances.instances)


def test_a_fast_small_object_keeps_its_id_by_predicted_position() -> None:
    """It moves more than its own size per frame (no overlap from frame to frame): matched where its
    velocity puts it."""
    xs = np.cumsum([4, 2, 4, 6, 8, 10, 11, 11, 11, 11, 11, 11, 11])
    frames = track(blobs([(PED, 4, [(float(x), 60.0) for x in xs])], len(xs)), min_area=20)
    assert [f.instances.instances[0].id for f in frames[1:]] == [1] * (len(xs) - 1)


def test_short_memory_keeps_an_id_through_a_gap_and_forgets_after_it() -> None:
    n = 30
    path: list = straight((20, 60), (3, 0), n)
    for i in range(8, 11):  # hidden for 3 frames
        path[i] = None
    for i in range(16, 27):  # hidden for 11 frames: longer than the memory (8)
        path[i] = None
    frames = track(blobs([(CAR, 8, path)], n), min_area=30)
    ids = [f.instances.instances[0].id if f.instances.instances else "-" for f in frames]
    assert ids[1:8] == [1] * 7 and ids[11:16] == [1] * 5, ids
    assert ids[27] is None and ids[28:] == [2, 2], ids  # a new track: tentative for one frame, then ID 2


def test_a_one_frame_blob_never_gets_an_id() -> None:
    maps = blobs([(CAR, 8, straight((30, 60), (2, 0), 10))], 10)
    cv2.circle(maps[5], (120, 20), 6, PED, -1)  # noise in one frame
    frames = track(maps, min_area=30)
    assert frames[5].instances.counts == {"car": 1, "pedestrian": 1}
    assert frames[-1].instances.unique == {"car": 1, "pedestrian": 0}


# --- counting line ------------------------------------------------------------------------------


def test_crossings_count_each_direction_once() -> None:
    n = 40
    back_and_forth = [(40, 40 + 2.5 * i) if i < 20 else (40, 90 - 2.5 * (i - 20)) for i in range(n)]
    jitter = [(90 + 2 * i, 60 + (1 if i % 2 else -1)) for i in range(n)]  # rides the line, 1 px off
    objects = [
        (PED, 6, straight((20, 10), (0, 2.5), n)),       # down through the line at x=20
        (CAR, 7, straight((70, 110), (0, -2.5), n)),     # up at x=70
        (CAR, 7, back_and_forth),                        # down, then back up at x=40
        (PED, 5, jitter),                                # along the line: never counts
        (CAR, 7, straight((150, 10), (0, 2.5), n)),      # down, but beside the segment's end (x<=130)
    ]
    frames = track(blobs(objects, n), min_area=30, count_line=(0, 60, 130, 60))
    last = frames[-1].instances
    assert last.crossings == {"down": {"car": 1, "pedestrian": 1}, "up": {"car": 2, "pedestrian": 0}}
    crossed = [c for f in frames for c in f.instances.crossed]
    assert len(crossed) == 4 and {c["direction"] for c in crossed} == {"down", "up"}
    assert all(c["id"] is not None for c in crossed)
    assert last.totals()["crossings"] == last.crossings


def test_line_directions_are_named_by_screen_direction_whatever_the_point_order() -> None:
    assert CountLine((0, 50, 100, 50)).crossing((50, 40), (50, 60)) == "down"
    assert CountLine((100, 50, 0, 50)).crossing((50, 40), (50, 60)) == "down"
    vertical = CountLine((50, 100, 50, 0))
    assert vertical.directions == ("right", "left")
    assert vertical.crossing((60, 50), (40, 50)) == "left"
    assert vertical.crossing((60, 150), (40, 150)) is None  # past the segment's end
    with pytest.raises(ValueError, match="two different points"):
        CountLine((1, 1, 1, 1))


# --- drawing, HUD, preview, options -----------------------------------------------------------


def _tracked_frame() -> Frame:
    maps = blobs([(CAR, 10, straight((40, 60), (2, 0), 3))], 3)
    frame = track(maps, count_line=(0, 90, 160, 90))[-1]
    frame.image = np.full((*SIZE, 3), 90, np.uint8)
    return frame


def test_renderer_draws_instances_on_the_view_and_counts_in_a_panel_without_hud() -> None:
    frame = _tracked_frame()
    plain = Renderer(INFO, RenderOptions(alpha=0.0)).render(Frame(frame.image, 0, labels=frame.labels))
    drawn = Renderer(INFO, RenderOptions(alpha=0.0)).render(frame)
    changed = np.any(drawn != plain, axis=2)
    x0, y0, x1, y1 = frame.instances.instances[0].box
    assert changed[y0:y1, x0:x1].mean() > 0.5  # the instance is tinted
    assert changed[90, 5:150].all()  # the counting line
    assert changed[-12:, :40].any()  # the counts panel (no HUD)
    wide = Renderer(INFO, RenderOptions(view="side-by-side", alpha=0.0)).render(frame)
    assert np.any(wide[y0:y1, 2 * SIZE[1] + x0:2 * SIZE[1] + x1] != 90)  # drawn on the overlay panel
    hidden = Renderer(INFO, RenderOptions(alpha=0.0, hide=["car"])).render(frame)
    assert not np.any(hidden[y0:y1, x0:x1] != plain[y0:y1, x0:x1])  # hidden classes: not drawn either


def test_hud_and_preview_show_the_written_frames_counts() -> None:
    frame = _tracked_frame()
    stats = PipelineStats()
    stats.wrote_frame(frame, 0.0)
    lines = hud_lines(stats, "blobs", "CPUExecutionProvider")
    assert "now/seen: car 1/1  ped 0/0" in lines and "line: down 0  up 0" in lines
    engine = ReplayEngine([])
    status = preview_status(stats, engine, Controls())()
    assert status["instances"] == {"counts": {"car": 1, "pedestrian": 0}, "unique_ids": {"car": 1, "pedestrian": 0},
                                   "crossings": {"down": 0, "up": 0}}
    assert preview_status(PipelineStats(), engine, Controls())()["instances"] is None


def test_options_and_flags_check_the_line() -> None:
    assert RenderOptions(count_line=(0, 1, 2, 3)).instances  # a line implies instances
    with pytest.raises(OptionError, match="count_line"):
        RenderOptions(count_line=(5, 5, 5, 5))
    with pytest.raises(OptionError, match="min_area"):
        RenderOptions(instances=True, min_area=0)
    for bad in ("1,2,3", "a,b,c,d", "4,4,4,4", "0,0,nan,1"):
        with pytest.raises(SystemExit) as stop:
            main(["--source", "demo", "--stats", "x.jsonl", "--count-line", bad])
        assert stop.value.code == 2


# --- end to end ---------------------------------------------------------------------------------


def test_a_run_writes_instances_counts_and_crossings_to_the_jsonl(tmp_path: Path) -> None:
    """Green discs are cars, blue discs pedestrians (a channel-argmax model), on a red road."""
    model = make_channel_argmax_model(tmp_path / "m.onnx", metadata={
        "rtseg_contract": "1", "name": "rgb", "classes": json.dumps(list(CLASSES)), "mean": "[0, 0, 0]",
        "std": "[1, 1, 1]", "channel_order": "RGB", "output": "logits"})
    n = 24
    maps = blobs([(CAR, 9, straight((20, 20), (0, 4), n)), (PED, 7, straight((120, 100), (0, -3.5), n))], n)
    frames = tmp_path / "frames"
    frames.mkdir()
    colours = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0)], np.uint8)  # BGR: red road, green car, blue ped
    for i, labels in enumerate(maps):
        cv2.imwrite(str(frames / f"{i:03d}.png"), colours[labels])
    stats_path = tmp_path / "stats.jsonl"
    result = process(str(frames), tmp_path / "out.mp4", model=str(model), count_line=(0, 60, 160, 60),
                     stats=stats_path, progress=False)
    assert result.complete
    lines = [json.loads(line) for line in stats_path.read_text().splitlines()]
    per_frame, summary = lines[:-1], lines[-1]
    assert len(per_frame) == n
    for record, labels in zip(per_frame, maps):
        found = find_instances(labels, {CAR: "car", PED: "pedestrian"})
        truth = {name: sum(i.class_name == name for i in found) for name in ("car", "pedestrian")}
        assert record["counts"] == truth == {"car": 1, "pedestrian": 1}
        assert {"id", "class", "box", "area"} <= set(record["instances"][0])
    assert per_frame[0]["instances"][0]["id"] is None and per_frame[-1]["instances"][0]["id"] is not None
    assert summary == {"summary": {"unique_ids": {"car": 1, "pedestrian": 1},
                                   "crossings": {"down": {"car": 1, "pedestrian": 0},
                                                 "up": {"car": 0, "pedestrian": 1}}}}
    assert sum(len(r["crossed"]) for r in per_frame) == 2
    assert result.stats.last_instances.unique == {"car": 1, "pedestrian": 1}


@pytest.mark.skipif(not (CAMVID / "val.txt").exists(), reason=f"CamVid not found at {CAMVID}")
def test_camvid_counts_from_the_model_and_from_the_ground_truth_under_one_rule() -> None:
    from rtseg.realtime.engine import load_model

    engine = load_model(device="cpu", threads=2)
    things = thing_classes(engine.info)
    pairs = []
    for line in (CAMVID / "val.txt").read_text().split("\n")[:6]:
        image_path, label_path = line.split()
        truth = cv2.imread(str(CAMVID / label_path), cv2.IMREAD_GRAYSCALE)
        pairs.append((engine(cv2.imread(str(CAMVID / image_path))), truth))
    table = compare_counts(pairs, things).table()
    assert set(table) == {"car", "pedestrian", "bicyclist"}
    assert all(row["images"] == 6 and row["mae"] >= 0 for row in table.values())
    same = compare_counts([(t, t) for _, t in pairs], things).table()  # the rule against itself: no error
    assert all(row["mae"] == 0 for row in same.values())
