"""benchmarks/road_clip_compare.py: the error regions it counts, and a run on a tiny clip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from factories import make_video

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "road_clip_compare.py"
CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian", "bicyclist")


def _load_script():
    spec = importlib.util.spec_from_file_location("road_clip_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_errors_count_only_in_their_region() -> None:
    shares = _load_script().error_shares
    labels = np.full((100, 10), CLASSES.index("road"), np.uint8)
    labels[0:10, :] = CLASSES.index("sign")  # in the sky band (top 35 rows)
    labels[50:60, :] = CLASSES.index("sign")  # below it: a real sign, not counted
    labels[40:50, :5] = CLASSES.index("building")  # inside the top 55 rows
    labels[90:, :] = CLASSES.index("sidewalk")  # counted anywhere
    assert shares(labels, CLASSES) == {"sign in the sky": pytest.approx(0.10), "building on the horizon":
                                       pytest.approx(0.05), "sidewalk anywhere": pytest.approx(0.10)}
    other = tuple(name.replace("building", "house").replace("sidewalk", "pavement") for name in CLASSES)
    assert shares(labels, other) == {"sign in the sky": pytest.approx(0.10)}  # classes a model lacks: skipped


def test_compares_two_models_and_writes_the_frame(tmp_path: Path, channel_model: Path, capsys) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    image = tmp_path / "side.png"
    assert _load_script().main(["--before", "otsu", "--after", str(channel_model), "--source", str(clip),
                                "--frame", "1", "--image", str(image), "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "(3 frames)" in table and f"wrote {image}" in table
    import cv2

    side = cv2.imread(str(image))
    assert side.shape[1] == 2 * 64 and side.shape[0] == 48
