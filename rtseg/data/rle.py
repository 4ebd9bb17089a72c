"""COCO run-length encoding (RLE) decoding without pycocotools."""

from __future__ import annotations

import numpy as np


def decode_counts_string(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string (LEB128-like, 5 bits per char, delta-coded)."""
    values: list[int] = []
    pos = 0
    data = counts.encode("ascii")
    while pos < len(data):
        x, k, more = 0, 0, True
        while more:
            c = data[pos] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(values) > 2:
            x += values[-2]
        values.append(x)
    return values


def encode_counts_string(counts: list[int]) -> str:
    """Inverse of :func:`decode_counts_string` (used by tests to write fixtures)."""
    out = []
    for i, value in enumerate(counts):
        x = value - counts[i - 2] if i > 2 else value
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_to_mask(rle: dict, height: int, width: int) -> np.ndarray:
    """Decode a COCO RLE dict (``counts`` as list or compressed string) to a bool (H, W) mask.

    Raises:
        ValueError: the RLE size or run lengths do not match ``height`` x ``width``.
    """
    size = rle.get("size", [height, width])
    if list(size) != [height, width]:
        raise ValueError(f"RLE size {list(size)} differs from the image size {[height, width]}")
    counts = rle["counts"]
    if isinstance(counts, (bytes, str)):
        counts = decode_counts_string(counts.decode() if isinstance(counts, bytes) else counts)
    if sum(counts) != height * width or any(c < 0 for c in counts):
        raise ValueError(f"RLE run lengths sum to {sum(counts)}, expected {height * width}")
    flat = np.zeros(height * width, dtype=bool)
    pos, value = 0, False
    for run in counts:
        if value:
            flat[pos:pos + run] = True
        pos += run
        value = not value
    return flat.reshape(width, height).T  # COCO RLE is column-major
