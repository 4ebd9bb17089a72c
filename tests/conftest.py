import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from factories import make_channel_argmax_model  # noqa: E402


@pytest.fixture
def channel_model(tmp_path: Path) -> Path:
    """An ONNX model: class = index of the brightest RGB channel (red, green, blue)."""
    return make_channel_argmax_model(tmp_path / "channels.onnx")
