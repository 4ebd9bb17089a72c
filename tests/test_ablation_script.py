"""benchmarks/train_ablation.py: the commands it runs and the table it builds from finished runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_ablation.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finished_run(root: Path, name: str, val_mious: dict[int, float], epochs: int, per_class: dict) -> None:
    run = root / name
    (run / "eval-val").mkdir(parents=True)
    rows = ["epoch,lr,train_loss,val_loss,val_miou,val_pixel_acc,epoch_s"]
    for epoch in range(1, epochs + 1):
        miou = val_mious.get(epoch, "")
        rows.append(f"{epoch},0.001,1.0,,{miou},,60.0")
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    best = max(val_mious.values())
    (run / "eval-val" / "metrics.json").write_text(json.dumps(
        {"miou": best, "pixel_accuracy": 0.9, "per_class_iou": per_class}))


def test_table_lists_finished_runs_with_best_epoch_and_time(tmp_path):
    ablation = _load_script()
    iou = {"pole": 0.05, "sign": 0.2, "pedestrian": 0.456}
    _finished_run(tmp_path, "lraspp-imagenet", {2: 0.5, 4: 0.61, 6: 0.6}, epochs=6, per_class=iou)
    (tmp_path / "unet-deconv-imagenet").mkdir()  # started, not evaluated: left out
    table = ablation.results_table(tmp_path, ["lraspp-imagenet", "unet-deconv-imagenet"]).splitlines()
    assert len(table) == 3
    assert table[2] == "| lraspp-imagenet | 6 | 4 | 61.0 | 90.0 | 5 | 20 | 46 | 6 min |"


def test_dry_run_lists_one_resumable_train_command_per_config(capsys):
    ablation = _load_script()
    assert ablation.main(["--dry-run", "--epochs", "3"]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert len(commands) == len(ablation.CONFIGS)
    for name, command in zip(ablation.CONFIGS, commands):
        assert f"--out runs/ablation/{name}" in command
        assert "--epochs 3" in command and "--resume" in command
    assert "--scratch" in commands[list(ablation.CONFIGS).index("unet-bilinear-scratch")]
