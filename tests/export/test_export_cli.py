"""``rtseg export`` and ``rtseg models`` through the real CLI dispatcher."""

from __future__ import annotations

import pytest

from rtseg.cli import main
from rtseg.export.exporter import read_metadata

from export_helpers import ROAD_CLIP


def test_export_then_models_lists_it(tmp_path, cache, capsys):
    out = cache / "models" / "effl0.onnx"
    frames = ["--frames", str(ROAD_CLIP)] if ROAD_CLIP.is_file() else []
    rc = main(["export", "mbv3_small_lraspp", "--random-init", "--input-size", "64", "96", "--dynamic-hw",
               "-o", str(out), "--parity-frames", "2", *frames, "--name", "small-road",
               "--license", "Apache-2.0", "--source", "a test"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"wrote {out}" in text and "labels agree with pytorch" in text
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
    (["export", "effl0_lraspp", "--opset", "13", "--random-init", "--input-size", "32", "32"], "opset 13 is too old"),
    (["models", "--cache", "/nonexistent/folder"], "not a folder"),
])
def test_user_errors_are_one_line_exit_2(argv, message, capsys, cache):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_fp16_and_int8_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "effl0_lraspp", "--fp16", "--int8"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
