"""A missing optional extra is one line naming what to install, before any work."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from rtseg.errors import MissingExtraError
from rtseg.extras import EXTRAS, require_extra


def test_present_extra_passes_missing_module_is_one_line(monkeypatch):
    for extra in EXTRAS:
        if all(importlib.util.find_spec(name) for name in EXTRAS[extra]):
            require_extra(extra, f"rtseg {extra}")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(MissingExtraError) as exc:
        require_extra("train", "rtseg eval")
    assert str(exc.value) == "rtseg eval needs matplotlib, not installed: pip install 'rtseg[train]'"


def test_module_blocked_in_sys_modules_counts_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match=r"rtseg export needs onnx.*pip install 'rtseg\[export\]'"):
        require_extra("export", "rtseg export")


@pytest.mark.parametrize("argv, extra", [
    (["train", "--data", "masks:x", "--out", "o"], "train"),
    (["eval", "--model", "m.onnx", "--data", "masks:x"], "train"),
    (["export", "effl0_lraspp"], "export"),
])
def test_commands_without_torch_say_what_to_install(argv, extra, tmp_path):
    """Regression: without torch, `rtseg train`/`eval` died in a traceback while importing."""
    code = ("import sys; sys.modules['torch'] = None; from rtseg.cli import main; "
            f"sys.exit(main({argv!r}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"rtseg: error: rtseg {argv[0]} needs torch, not installed: pip install 'rtseg[{extra}]'"]
