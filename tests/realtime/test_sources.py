import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import pytest

from rtseg.errors import SourceError
from rtseg.realtime.sources import CameraSource, ImageSource, VideoSource, open_source

from factories import BLUE, GREEN, RED, FakeCapture, color_frame, corrupt_middle, make_video


def test_video_source_keeps_variable_timestamps(tmp_path: Path) -> None:
    pts = [0, 40, 120, 130, 300, 310]
    path = make_video(tmp_path / "vfr.mp4", pts_ms=pts)
    with VideoSource(str(path)) as src:
        frames = list(src)
        assert not src.live and src.info.width == 64 and src.info.height == 48
    assert [f.index for f in frames] == list(range(6))
    assert [f.pts * f.time_base for f in frames] == [Fraction(p, 1000) for p in pts]
    assert frames[1].image[10, 10].tolist() == pytest.approx(GREEN, abs=3)


def test_video_source_attaches_audio_packets_in_order(tmp_path: Path) -> None:
    path = make_video(tmp_path / "a.mp4", n=25, audio=True)
    with VideoSource(str(path)) as src:
        assert len(src.info.passthrough_streams) == 1
        frames = list(src)
    packets = [p for f in frames for p in f.passthrough]
    assert len(packets) > 30
    assert [p.pts for p in packets] == sorted(p.pts for p in packets)


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000), p)[1], "cannot open video"),
])
def test_bad_video_files_are_clear_errors(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path / "bad.mp4")
    with pytest.raises(SourceError, match=message):
        VideoSource(str(path))


def test_truncated_mp4_without_moov_is_a_clear_error(tmp_path: Path) -> None:
    good = make_video(tmp_path / "good.mp4", n=30)
    data = good.read_bytes()
    moov = data.find(b"moov")
    assert moov > 0
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: moov - 4] if moov > len(data) // 2 else data[: len(data) // 2])
    with pytest.raises(SourceError, match=str(cut)):
        with VideoSource(str(cut)) as src:
            list(src)


def test_pixel_cap_is_checked_before_decoding(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", n=3)
    with pytest.raises(SourceError, match="64x48.*over the cap of 1000 pixels"):
        VideoSource(str(path), max_pixels=1000)


def test_image_folder_glob_and_single_file(tmp_path: Path) -> None:
    for name, color in (("b", GREEN), ("a", RED), ("c", BLUE)):
        cv2.imwrite(str(tmp_path / f"{name}.png"), color_frame(color))
    (tmp_path / "notes.txt").write_text("not an image")
    names = [f.name for f in ImageSource(str(tmp_path))]
    assert names == ["a", "b", "c"]
    assert [f.name for f in ImageSource(str(tmp_path / "[ab].png"))] == ["a", "b"]
    frames = list(open_source(str(tmp_path / "c.png")))
    assert len(frames) == 1 and frames[0].image[0, 0].tolist() == list(BLUE)


def test_image_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        ImageSource(str(tmp_path))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(SourceError, match="cannot read image"):
        list(ImageSource(str(bad)))
    cv2.imwrite(str(tmp_path / "big.png"), color_frame(RED, 100, 100))
    with pytest.raises(SourceError, match="over the cap"):
        list(ImageSource(str(tmp_path / "big.png"), max_pixels=5000))


def test_camera_source_stamps_frames_and_releases() -> None:
    capture = FakeCapture(n=5)
    with CameraSource(capture, name="fake") as cam:
        frames = list(zip(range(5), cam))
    assert [f.index for _, f in frames] == list(range(5))
    assert all(f.pts is None and f.capture_time > 0 for _, f in frames)
    assert capture.released


@pytest.mark.parametrize("stall", ["fail", "repeat"])
@pytest.mark.timeout(10)
def test_camera_yields_only_fresh_frames_until_interrupted(stall: str) -> None:
    """Failed reads and repeated (stale) frames are not frames; the pipeline's watchdog
    decides when that is a stall (tests/realtime/test_pipeline.py)."""
    cam = CameraSource(FakeCapture(n=3, stall=stall), name="fake cam")
    threading.Timer(0.3, cam.interrupt).start()
    t0 = time.perf_counter()
    frames = list(cam)
    assert len(frames) == 3 and time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("index", [-1, 99999999999])
def test_camera_index_out_of_range_is_one_clear_line(index: int) -> None:
    with pytest.raises(SourceError, match=f"camera index {index} is out of range"):
        open_source(index)


def test_camera_index_that_does_not_open_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="camera 97 could not be opened"):
        open_source(97)


def test_corrupt_packets_mid_file_are_skipped_and_counted(tmp_path: Path) -> None:
    """Plain PyAV decoding stops at the first bad packet; the source goes on past it."""
    clip = corrupt_middle(make_video(tmp_path / "c.mp4", n=30, width=160, height=96, noise=True))
    with VideoSource(str(clip)) as src:
        frames = list(src)
        assert src.skipped >= 1
    assert 20 <= len(frames) < 30
    assert frames[-1].seconds == pytest.approx(29 / 25)  # decoding went on to the end
