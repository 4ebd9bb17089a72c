"""YAML from users: safe_load behind alias and size limits (issue #11 section 6)."""

from pathlib import Path

import pytest

from rtseg.errors import ModelError, RtsegError
from rtseg.yamlfile import MAX_YAML_BYTES, load_yaml

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_billion_laughs_is_refused_with_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(LAUGHS)
    with pytest.raises(ModelError) as info:
        load_yaml(path, ModelError)
    message = str(info.value)
    assert "aliases (*a) are not allowed" in message and len(message) < 200


def test_big_and_broken_files_are_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "y" * (MAX_YAML_BYTES + 1))
    with pytest.raises(RtsegError, match="larger than 1024 KiB"):
        load_yaml(big)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n" + "b" * 5000)
    with pytest.raises(RtsegError) as info:
        load_yaml(broken)
    assert "invalid YAML" in str(info.value) and len(str(info.value)) < 300 and "\n" not in str(info.value)


def test_registry_refuses_an_alias_bomb(tmp_path: Path) -> None:
    from rtseg.cli import main

    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / "bomb.yaml").write_text(LAUGHS)
    assert main(["models", "--registry", str(tmp_path / "reg")]) == 2


def test_train_config_sets_defaults_and_flags_override(tmp_path: Path) -> None:
    from rtseg.train.cli import build_parser

    recipe = Path(__file__).resolve().parents[1] / "configs" / "train" / "camvid-road.yaml"
    args = build_parser().parse_args(["--config", str(recipe), "--epochs", "3"])
    assert args.arch == "effl0_unet_bilinear" and args.crop == [256, 256] and args.ohem is True
    assert args.epochs == 3, "a flag overrides the file"
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    with pytest.raises(RtsegError, match="unknown rtseg train options epochz"):
        build_parser().parse_args(["--config", str(bad)])
