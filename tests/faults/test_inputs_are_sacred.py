"""Issue #11 section 1: no output path may write through an input, a hard link or a planted symlink."""

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from factories import BLUE, RED, color_frame, make_video, read_video

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def rtseg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtseg", *args, "--model", "otsu", "--quiet"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def _refused(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: error:") and words in lines[0], result.stderr


def test_stats_pointing_at_the_input_video_is_refused(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    before = clip.read_bytes()
    _refused(rtseg(str(clip), "--stats", str(clip)), "is the same file as an input")
    assert clip.read_bytes() == before


def test_output_spelled_differently_is_still_the_input(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    before = clip.read_bytes()
    _refused(rtseg(str(clip), "--output", str(tmp_path / "." / "sub" / ".." / "in.mp4")), "same file as an input")
    assert clip.read_bytes() == before


def test_output_symlink_to_the_input_is_refused(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    before = clip.read_bytes()
    (tmp_path / "out.mp4").symlink_to(clip)
    _refused(rtseg(str(clip), "--output", str(tmp_path / "out.mp4")), "same file as an input")
    assert clip.read_bytes() == before


def test_masks_into_the_input_image_folder_are_refused(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    for name, color in (("a", RED), ("b", BLUE)):
        cv2.imwrite(str(tmp_path / "frames" / f"{name}.png"), color_frame(color))
    before = {p.name: p.read_bytes() for p in (tmp_path / "frames").iterdir()}
    _refused(rtseg(str(tmp_path / "frames"), "--save-masks", str(tmp_path / "frames")), "holds the input images")
    assert {p.name: p.read_bytes() for p in (tmp_path / "frames").iterdir()} == before


def test_output_over_the_model_file_is_refused(tmp_path: Path, channel_model: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    before = channel_model.read_bytes()
    result = subprocess.run([sys.executable, "-m", "rtseg", str(clip), "--model", str(channel_model),
                             "--stats", str(channel_model), "--quiet"], capture_output=True, text=True, cwd=ROOT)
    _refused(result, "same file as an input or the model")
    assert channel_model.read_bytes() == before


def test_two_outputs_on_one_file_are_refused(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    (tmp_path / "o.jsonl").write_text("")
    result = rtseg(str(clip), "--output", str(tmp_path / "o.jsonl"), "--stats", str(tmp_path / "o.jsonl"))
    assert result.returncode == 2  # .jsonl is no video extension; either refusal is one line
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_planted_symlink_at_the_output_is_replaced_not_followed(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    victims = [tmp_path / "victim1.txt", tmp_path / "victim2.txt"]
    for victim in victims:
        victim.write_text("precious")
    (tmp_path / "out.mp4").symlink_to(victims[0])
    (tmp_path / "s.jsonl").symlink_to(victims[1])
    result = rtseg(str(clip), "--output", str(tmp_path / "out.mp4"), "--stats", str(tmp_path / "s.jsonl"))
    assert result.returncode == 0, result.stderr
    assert [v.read_text() for v in victims] == ["precious", "precious"]
    assert not (tmp_path / "out.mp4").is_symlink() and len(read_video(tmp_path / "out.mp4")[0]) == 3
    assert not (tmp_path / "s.jsonl").is_symlink() and len((tmp_path / "s.jsonl").read_text().splitlines()) == 3


def test_a_hard_link_at_the_output_keeps_its_other_name_intact(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"another file")
    (tmp_path / "out.mp4").hardlink_to(other)
    assert rtseg(str(clip), "--output", str(tmp_path / "out.mp4")).returncode == 0
    assert other.read_bytes() == b"another file"
    assert len(read_video(tmp_path / "out.mp4")[0]) == 3


def test_a_planted_symlink_among_mask_files_is_replaced(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=2)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "000001.png").symlink_to(victim)
    assert rtseg(str(clip), "--save-masks", str(tmp_path / "masks")).returncode == 0
    assert victim.read_text() == "precious"
    assert cv2.imread(str(tmp_path / "masks" / "000001.png"), cv2.IMREAD_UNCHANGED).shape == (48, 64)


def test_an_existing_output_is_replaced_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous result")
    missing = rtseg(str(tmp_path / "missing.mp4"), "--output", str(out))
    assert missing.returncode == 2 and out.read_bytes() == b"the previous result"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.mp4")], "no temp file left behind"
