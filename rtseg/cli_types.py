"""Argument types that check ranges, shared by every ``rtseg`` command's parser.

Each returns a parser function for ``argparse``'s ``type=``: a value out of range is an
argparse error naming the flag, before any work starts.
"""

from __future__ import annotations

import argparse
import math


def size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1280x720, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def auto_or_at_least(low: int):
    """``auto`` or a whole number of at least ``low``."""
    def parse(text: str) -> int | str:
        if text == "auto":
            return text
        value = number(text, int)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be 'auto' or a whole number >= {low}, got {text}")
        return value
    return parse


every = auto_or_at_least(1)  # --infer-every, --streams
threads = auto_or_at_least(0)  # --threads (0: onnxruntime's choice)


def names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None


def between(low: float, high: float, kind: type = float):
    def parse(text: str) -> float:
        value = number(text, kind)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value
    return parse


def at_least(low: float, kind: type = float):
    def parse(text: str) -> float:
        value = number(text, kind)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {text}")
        return value
    return parse


def above(low: float, kind: type = float):
    def parse(text: str) -> float:
        value = number(text, kind)
        if not value > low or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number above {low}, got {text}")
        return value
    return parse


def line(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` -> four numbers (pixels), two different points."""
    parts = [t.strip() for t in text.split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected x1,y1,x2,y2 like 0,300,960,300, got {text!r}")
    values = tuple(number(p, float) for p in parts)
    if not all(math.isfinite(v) for v in values) or values[:2] == values[2:]:
        raise argparse.ArgumentTypeError(f"expected two different finite points x1,y1,x2,y2, got {text!r}")
    return values  # type: ignore[return-value]
