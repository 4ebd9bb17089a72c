"""Issue #11 section 6: numeric flags out of range are refused by argparse, naming the flag."""

import pytest

from rtseg.cli import main


@pytest.mark.parametrize("argv, flag", [
    (["demo", "--crf", "52"], "--crf"), (["demo", "--crf", "-1"], "--crf"),
    (["demo", "--threads", "-1"], "--threads"), (["demo", "--timeout", "0"], "--timeout"),
    (["demo", "--timeout", "nan"], "--timeout"), (["demo", "--alpha", "1.5"], "--alpha"),
    (["demo", "--stall-timeout", "-2"], "--stall-timeout"), (["demo", "--max-pixels", "0"], "--max-pixels"),
    (["demo", "--fps", "0"], "--fps"), (["demo", "--camera-fps", "inf"], "--camera-fps"),
    (["--camera", "-1"], "--camera"), (["demo", "--reconnect-max", "-1"], "--reconnect-max"),
    (["demo", "--infer-every", "0"], "--infer-every"), (["demo", "--crf", "abc"], "--crf"),
    (["train", "--epochs", "0"], "--epochs"), (["train", "--lr", "-1"], "--lr"),
    (["train", "--batch-size", "0"], "--batch-size"), (["train", "--ema", "1"], "--ema"),
    (["export", "x", "--opset", "5"], "--opset"), (["export", "x", "--num-classes", "0"], "--num-classes"),
    (["eval", "--threads", "-3"], "--threads"),
])
def test_out_of_range_flags_are_one_argparse_error(argv: list[str], flag: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {flag}" in err and "Traceback" not in err
