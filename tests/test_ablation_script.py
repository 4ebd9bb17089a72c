"""benchmarks/train_ablation.py: the commands it runs and the table it builds from finished runs."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_ablation.py"
ISSUE_ROWS = ("base", "no-scale-aug", "ema", "ce", "median-weights", "aux", "lite1", "lite2", "adversarial", "distill",
              "long")


def _load_script():
    spec = importlib.util.spec_from_file_location("train_ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finished_run(root: Path, name: str, epochs: int, per_class: dict, onnx_ms: float | None = None) -> None:
    run = root / name
    (run / "eval-val").mkdir(parents=True)
    rows = ["epoch,lr,train_loss,val_loss,val_miou,val_pixel_acc,epoch_s"]
    rows += [f"{epoch},0.001,1.0,,{0.5 if epoch % 5 == 0 else ''},,60.0" for epoch in range(1, epochs + 1)]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "eval-val" / "metrics.json").write_text(json.dumps(
        {"miou": 0.612, "pixel_accuracy": 0.9, "per_class_iou": per_class}))
    if onnx_ms is not None:
        (run / "onnx-latency.json").write_text(json.dumps({"ms_per_frame": onnx_ms, "threads": 2}))


def test_table_lists_finished_runs_with_every_class_time_and_latency(tmp_path):
    ablation = _load_script()
    iou = {c: 0.5 for c in ablation.CAMVID_CLASSES} | {"pole": 0.05, "sign": None}
    _finished_run(tmp_path, "base", 10, iou, onnx_ms=31.26)
    _finished_run(tmp_path, "ema", 5, iou)
    (tmp_path / "base" / "calibration.json").write_text(json.dumps(
        {"all": {"before": 0.612, "after": 0.6346}, "pole": {"before": 0.612, "after": 0.62}}))
    (tmp_path / "aux").mkdir()  # started, not evaluated: left out
    table = ablation.results_table(tmp_path, ["base", "aux", "ema"]).splitlines()
    assert len(table) == 4 and table[0].count("|") == len(table[1].split("|")) - 1 == 18
    assert table[2] == "| base | 10 | 61.2 | 50.0 | 50.0 | 5.0 | 50.0 | 50.0 | 50.0 | - | 50.0 | 50.0 | 50.0 | 50.0 " \
                       "| 10 min | 31.3 | 61.2 → 63.5 / 61.2 → 62.0 |"
    assert table[3].startswith("| ema | 5 | 61.2 |") and table[3].endswith("| 5 min | - | - |")


def test_dry_run_prints_one_resumable_train_command_per_row(capsys, tmp_path):
    ablation = _load_script()
    assert set(ISSUE_ROWS) <= set(ablation.ROWS)
    assert ablation.main(["--dry-run", "--runs-dir", str(tmp_path), "--epochs", "3"]) == 0
    commands = [shlex.split(line[2:]) for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert len(commands) == len(ablation.ROWS)
    by_name = dict(zip(ablation.ROWS, commands))
    for name, cmd in by_name.items():
        assert cmd[1:4] == ["-m", "rtseg", "train"] and "--resume" in cmd
        assert cmd[cmd.index("--out") + 1] == str(tmp_path / name)
        if name != "long":
            assert cmd[cmd.index("--epochs") + 1] == "3" and "--crop" in cmd
    base = by_name["base"]
    for name, cmd in by_name.items():  # every row changes something (beyond its folder)
        assert name == "base" or cmd[cmd.index("--out") + 2:] != base[base.index("--out") + 2:], name
    assert "--ohem" in base and "--ohem" not in by_name["ce"] and "--ohem" not in by_name["median-weights"]
    assert by_name["no-scale-aug"][by_name["no-scale-aug"].index("--scale") + 1:][:2] == ["1.0", "1.0"]
    assert by_name["lite2"][by_name["lite2"].index("--arch") + 1] == "effl2_unet_bilinear"
    assert by_name["aux"][-2:] == ["--aux-weight", "0.4"] and by_name["adversarial"][-2:] == ["--adversarial", "0.01"]
    assert by_name["distill"][-2:] == ["--distill", str(tmp_path / "lite2" / "model_best.pth")]
    assert by_name["long"][-2:][0] == "--config" and by_name["long"][-1].endswith("camvid-long-train-only.yaml")
    assert list(ablation.ROWS).index("distill") > list(ablation.ROWS).index("lite2")


def test_only_runs_the_named_rows_and_distill_needs_its_teacher(capsys, tmp_path):
    ablation = _load_script()
    assert ablation.main(["--dry-run", "--only", "ema", "lite1", "--teacher", "t.pth"]) == 0
    assert len([ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("$ ")]) == 2
    assert ablation.main(["--only", "distill", "--runs-dir", str(tmp_path)]) == 2
    assert "run --only lite2 first" in capsys.readouterr().out
