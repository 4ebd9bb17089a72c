"""Training and evaluation read images and masks with OpenCV only: they run where PyAV is missing
(a bare GPU machine that the compact CamVid pack is carried to)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from train_helpers import make_shapes_dataset

BLOCK_AV = "import sys; sys.modules['av'] = None\n"  # any `import av` now raises ImportError


def test_one_epoch_and_eval_with_pyav_unimportable(tmp_path) -> None:
    data = make_shapes_dataset(tmp_path / "shapes", count=3, size=64)
    out = tmp_path / "run"
    code = BLOCK_AV + (
        "from rtseg.cli import main\n"
        f"assert main(['train', '--data', 'masks:{data}', '--val-split', 'train', '--epochs', '1', "
        f"'--batch-size', '2', '--crop', '64', '64', '--arch', 'effl0_lraspp', '--scratch', '--threads', '1', "
        f"'--out', '{out}', '--no-progress']) == 0\n"
        f"assert main(['eval', '--model', '{out / 'model_best.pth'}', '--data', 'masks:{data}', "
        f"'--split', 'train', '--out', '{tmp_path / 'eval'}', '--no-progress']) == 0\n"
        "assert sys.modules['av'] is None\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "model_best.pth").is_file() and (tmp_path / "eval" / "metrics.json").is_file()
