"""Issue #11 section 3: a partial result is never reported as a success."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from factories import corrupt_middle, make_video, read_video

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


def rtseg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtseg", *args, "--model", "otsu"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs ffmpeg to move the moov atom to the front")
def test_a_file_cut_in_half_is_a_warning_and_exit_3(tmp_path: Path) -> None:
    """Regression: a faststart MP4 cut at 50 % gave 110 of 221 frames, exit 0, no word."""
    clip = make_video(tmp_path / "in.mp4", n=60, width=160, height=96, noise=True)
    front = tmp_path / "front.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy", "-movflags", "+faststart", str(front)],
                   check=True)
    data = front.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    result = rtseg(str(cut), "--output", str(tmp_path / "out.mp4"))
    assert result.returncode == 3, result.stderr
    assert "rtseg: warning: input ended early:" in result.stderr and " s of 2.40 s" in result.stderr
    written = len(read_video(tmp_path / "out.mp4")[0])
    assert 0 < written < 60, "what could be read is still written"


def test_damaged_packets_are_a_warning_and_exit_3(tmp_path: Path) -> None:
    clip = corrupt_middle(make_video(tmp_path / "c.mp4", n=30, width=160, height=96, noise=True))
    result = rtseg(str(clip), "--output", str(tmp_path / "o.mp4"))
    assert result.returncode == 3, result.stderr
    assert "damaged packets were skipped" in result.stderr


def test_a_file_with_no_decodable_frame_is_an_error_and_no_output(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=10, width=160, height=96, noise=True)
    data = bytearray(clip.read_bytes())
    mdat = data.find(b"mdat")
    for i in range(mdat + 8, len(data) - 2000):  # scramble every packet payload
        data[i] = (data[i] * 7 + 13) & 255
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    result = rtseg(str(broken), "--output", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("rtseg: error: wrote 0 frames")
    assert not out.exists() or len(read_video(out)[0]) == 0


def test_a_complete_run_is_exit_0_without_warnings(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=10, audio=True)
    result = rtseg(str(clip), "--output", str(tmp_path / "o.mp4"))
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


def test_an_mp4_cut_before_its_index_says_so(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mp4", n=20, noise=True)  # moov written last, as recorders do
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    result = rtseg(str(cut), "--output", str(tmp_path / "out.mp4"))
    assert result.returncode == 2
    assert "no moov atom" in result.stderr.strip().splitlines()[-1] and "truncated" in result.stderr


def test_a_live_stream_that_ends_by_itself_is_a_shortfall(tmp_path: Path) -> None:
    """Regression: a killed stream ended with exit 0, as if that were the normal end (the CLI
    exit code 3 for it is in tests/realtime/test_rtsp.py with a real server)."""
    import numpy as np

    from rtseg import process
    from rtseg.realtime.frame import Frame
    from rtseg.realtime.sources import Source, SourceInfo

    class Stream(Source):
        live = endless = True

        def __init__(self) -> None:
            self.info = SourceInfo(name="cam", fps=25.0)

        def __iter__(self):
            for index in range(5):
                yield Frame(np.zeros((8, 8, 3), np.uint8), index)

    result = process(Stream(), stats=tmp_path / "s.jsonl", model="otsu", progress=False)
    assert not result.complete and "the live source cam ended by itself" in result.check.shortfalls[0]
    clip = make_video(tmp_path / "in.mp4", n=10)
    assert rtseg(str(clip), "--live", "--stats", str(tmp_path / "s.jsonl")).returncode == 0, "a file has an end"
