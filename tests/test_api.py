"""The Python API: ``rtseg.load_model`` and ``rtseg.process``."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import rtseg
from rtseg.errors import RtsegError
from rtseg.realtime.options import OptionError

from factories import BLUE, GREEN, MASK_BGR, RED, audio_summary, color_frame, make_video, read_video

pytestmark = pytest.mark.timeout(60)


def test_version_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert rtseg.__version__ == version("rtseg")


def test_load_model_default_and_by_name() -> None:
    engine = rtseg.load_model()
    assert engine.info.name == "camvid-road" and engine.provider == "CPUExecutionProvider"
    labels = rtseg.load_model("otsu")(color_frame(RED, 40, 30))
    assert labels.shape == (30, 40) and labels.dtype == np.uint8


def test_load_model_errors_are_one_line() -> None:
    with pytest.raises(RtsegError, match="unknown model 'nope'"):
        rtseg.load_model("nope")
    with pytest.raises(RtsegError, match="unknown device"):
        rtseg.load_model("otsu", device="tpu")


def test_process_writes_every_frame_with_timestamps_and_audio(tmp_path: Path, channel_model: Path) -> None:
    pts = [0, 40, 80, 200, 240, 400]
    clip = make_video(tmp_path / "in.mp4", pts_ms=pts, audio=True)
    result = rtseg.process(clip, tmp_path / "out.mp4", model=channel_model, view="mask", progress=False,
                           stats=tmp_path / "s.jsonl")
    assert result.stats.captured == result.stats.written == len(pts) and result.output == tmp_path / "out.mp4"
    assert result.model == channel_model.stem
    times, images = read_video(tmp_path / "out.mp4")
    assert times == [Fraction(p, 1000) for p in pts]
    for i, image in enumerate(images):
        assert np.abs(image[20, 20].astype(int) - MASK_BGR[(RED, GREEN, BLUE)[i % 3]]).max() <= 12
    assert audio_summary(tmp_path / "out.mp4") == pytest.approx(audio_summary(clip))
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == len(pts)


def test_process_accepts_a_loaded_engine(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=3)
    engine = rtseg.load_model("otsu")
    result = rtseg.process(str(clip), save_masks=tmp_path / "m", model=engine, progress=False)
    assert result.stats.written == 3 and len(list((tmp_path / "m").glob("*_color.png"))) == 3


def test_process_checks_its_keywords(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=2)
    with pytest.raises(TypeError, match="unknown option 'colour'"):
        rtseg.process(clip, tmp_path / "o.mp4", colour="red")
    with pytest.raises(OptionError, match="alpha must be between 0 and 1"):
        rtseg.process(clip, tmp_path / "o.mp4", alpha=1.5)
    with pytest.raises(OptionError, match="crf must be between 0 and 51"):
        rtseg.process(clip, tmp_path / "o.mp4", crf=99)
    with pytest.raises(OptionError, match="nothing to produce"):
        rtseg.process(clip)
    assert not (tmp_path / "o.mp4").exists()


def test_process_runs_the_built_in_demo_clip(tmp_path: Path) -> None:
    result = rtseg.process("demo", tmp_path / "demo.mp4", model="otsu", progress=False)
    assert result.stats.written == 221
    assert len(read_video(tmp_path / "demo.mp4")[0]) == 221 and audio_summary(tmp_path / "demo.mp4") is not None
