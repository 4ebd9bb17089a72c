"""Issue #11 section 6: the pixel cap is checked from the header, before any decoding."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.errors import SourceError
from rtseg.realtime.sources import ImageSource
from rtseg.realtime.sources.image_header import header_size

ROOT = Path(__file__).resolve().parents[2]


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height, followed by a tiny (wrong) image body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_png_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(SourceError, match=r"60000x60000 .* over the cap"):
        list(ImageSource(str(bomb)))


def test_the_cli_refuses_it_in_one_line_without_decoding(tmp_path: Path) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    # VmHWM: this process's peak resident memory (ru_maxrss would include the forking parent's)
    code = ("import re, sys; from rtseg.cli import main; rc = main(sys.argv[1:]); "
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(bomb), "--output", str(tmp_path / "o.png"),
                             "--model", "otsu", "--quiet"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and "over the cap" in result.stderr.strip().splitlines()[-1]
    assert int(result.stdout.strip()) < 400_000, "peak memory stayed far below the 2.7 GB the frame would need"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_header_sizes_match_the_decoded_images(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"a{suffix}"
    cv2.imwrite(str(path), np.zeros((37, 53, 3), np.uint8))
    assert header_size(path) == (53, 37)


def test_a_stream_without_picture_size_says_what_that_means() -> None:
    """An RTSP URL with no media gave "invalid frame size 0x0"."""
    from rtseg.realtime.sources.base import check_pixel_cap

    with pytest.raises(SourceError, match=r"rtsp://cam/x: no picture size .* \(0x0\): no video in it"):
        check_pixel_cap("rtsp://cam/x", 0, 0, 1000)
