"""``rtseg export`` and ``rtseg models`` through the real CLI dispatcher."""

from __future__ import annotations

import re
import sys

import pytest
import torch

from rtseg.cli import main
from rtseg.export.exporter import read_metadata

from export_helpers import ROAD_CLIP


def test_export_then_models_lists_it(tmp_path, cache, capsys):
    """Regression: a random-init export printed "100.000 % labels agree" (one class everywhere)
    and did not say which frames the parity check used."""
    out = cache / "models" / "effl0.onnx"
    frames = ["--frames", str(ROAD_CLIP)] if ROAD_CLIP.is_file() else []
    torch.manual_seed(0)
    rc = main(["export", "mbv3_small_lraspp", "--random-init", "--input-size", "64", "96", "--dynamic-hw",
               "-o", str(out), "--parity-frames", "2", *frames, "--name", "small-road",
               "--license", "Apache-2.0", "--source", "a test"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"wrote {out}" in text
    parity = next(line for line in text.splitlines() if line.strip().startswith("parity:"))
    # never "100 % agree" over one constant class: either said to be not meaningful, or the
    # outputs varied (several classes predicted; random BatchNorm statistics make them vary)
    predicted = re.search(r"\((\d+) classes predicted\)", parity)
    assert "not meaningful: pytorch predicts one class on every pixel" in parity or (
        predicted and int(predicted.group(1)) >= 2), parity
    assert (f"2 frames from {ROAD_CLIP}" if frames else "4 synthetic frames (no real frames given)") in parity
    info = read_metadata(out)
    assert info.input_size == (64, 96) and info.output == "labels" and len(info.classes) == 11
    assert (info.name, info.license, info.source) == ("small-road", "Apache-2.0", "a test")
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "lraspp-mbv3-voc" in listing and "deeplabv3_resnet50" in listing
    assert str(out) in listing and "64x96" in listing


@pytest.mark.parametrize("argv, message", [
    (["export", "no_such_model"], "unknown architecture 'no_such_model'"),
    (["export", "effl0_lraspp", "--int8"], "--int8 needs --calib"),
    (["export", "effl0_lraspp", "--weights", "/nonexistent/w.pt"], "weights file not found"),
    (["models", "--cache", "/nonexistent/folder"], "not a folder"),
    (["models", "--registry", "/nonexistent/folder"], "--registry /nonexistent/folder: not a folder"),
    # regression: the entry pointed at runs/camvid-road/model_best.pth, which no install has
    (["export", "camvid-effl0-unet"], "camvid-effl0-unet is a training recipe and ships no weights"),
])
def test_user_errors_are_one_line_exit_2(argv, message, capsys, cache):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_fp16_and_int8_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "effl0_lraspp", "--fp16", "--int8"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_recipe_entry_says_train_first_or_pass_weights(cache, capsys):
    assert main(["export", "camvid-effl0-lraspp", "--input-size", "32", "32"]) == 2
    err = capsys.readouterr().err
    assert "rtseg train --data camvid:" in err and "then pass --weights RUN/model_best.pth" in err
    assert len(err.strip().splitlines()) == 1 and not (cache / "models").exists()


def test_user_registry_is_explicit_and_listed(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "my-road.yaml").write_text("name: my-road\narch: rtseg:effl0_lraspp\nclasses: camvid\n"
                                       "weights: {path: w.pth}\n")
    assert main(["models"]) == 0
    assert "my-road" not in capsys.readouterr().out
    assert main(["models", "--registry", str(user)]) == 0
    listing = capsys.readouterr().out
    assert "my-road" in listing and "lraspp-mbv3-voc" in listing and str(user) in listing


def test_export_without_export_extra_stops_before_any_work(cache, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "effl0_lraspp", "--random-init", "--input-size", "32", "32"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "rtseg: error: rtseg export needs onnx, not installed: pip install 'rtseg[export]'"
    assert not cache.exists()


def test_export_replaces_a_planted_link_and_never_overwrites_its_source(tmp_path, cache, capsys):
    """A symlink at -o is replaced by the new file (its target untouched); -o naming the source
    model itself, or a hard link to it, is refused before any work."""
    from rtseg.export.builder import builtin_onnx

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out.onnx"
    link.symlink_to(victim)
    torch.manual_seed(0)
    assert main(["export", "mbv3_small_lraspp", "--random-init", "--input-size", "64", "96", "-o", str(link),
                 "--parity-frames", "1"]) == 0
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and read_metadata(link).input_size == (64, 96)
    source = tmp_path / "road.onnx"
    source.write_bytes(builtin_onnx("camvid-road").read_bytes())
    hard = tmp_path / "hard.onnx"
    hard.hardlink_to(source)
    capsys.readouterr()
    for target in (source, hard):
        assert main(["export", str(source), "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert "is the model's own source file" in err and len(err.strip().splitlines()) == 1
    assert source.read_bytes() == builtin_onnx("camvid-road").read_bytes()
