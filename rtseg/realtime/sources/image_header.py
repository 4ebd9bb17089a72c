"""Image width and height from the first bytes of the file, before anything is decoded.

FFmpeg's probe (``av.open``) decodes a PNG to learn its size, so a 20000 x 20000 "bomb"
costs its full pixel memory before the pixel cap can refuse it. PNG, JPEG, BMP, GIF and
WebP keep their size in a few header bytes; other formats return None (the caller probes).
"""

from __future__ import annotations

import struct
from pathlib import Path

JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) read from the header of a PNG, JPEG, BMP, GIF or WebP file, else None."""
    with open(path, "rb") as file:
        head = file.read(64)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:2] == b"BM" and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return width, abs(height)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(head)
        if head[:2] == b"\xff\xd8":
            file.seek(2)
            return _jpeg_size(file)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(file) -> tuple[int, int] | None:
    """Walk the JPEG markers to the first start-of-frame; its header holds the size."""
    for _ in range(10000):
        byte = file.read(1)
        while byte == b"\xff":
            byte = file.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        length = file.read(2)
        if len(length) < 2:
            return None
        if marker in JPEG_SOF:
            data = file.read(5)
            return (struct.unpack(">H", data[3:5])[0], struct.unpack(">H", data[1:3])[0]) if len(data) == 5 else None
        file.seek(struct.unpack(">H", length)[0] - 2, 1)
    return None
