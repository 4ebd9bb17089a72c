"""What ships inside the package: the built-in ONNX models and the demo clip.

Example:
    >>> from rtseg.assets import demo_clip
    >>> demo_clip().name
    'road_solidWhiteRight.mp4'
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEMO_NAME = "demo"  # --source demo
DEFAULT_MODEL = "camvid-road"


def builtin_model_files() -> dict[str, Path]:
    """Built-in model name -> its ONNX file."""
    return {path.stem: path for path in sorted(ASSETS.glob("*.onnx"))}


def demo_clip() -> Path:
    """The built-in demo input: a 9 s dash-cam clip (MIT, Udacity; see its .LICENSE file)."""
    return ASSETS / "road_solidWhiteRight.mp4"
