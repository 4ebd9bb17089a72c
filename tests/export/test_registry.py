"""Registry entries (rtseg/configs/models/*.yaml, package data) load; bad ones fail with one clear line."""

from __future__ import annotations

import logging

import pytest
import yaml

from rtseg.contract import CAMVID_CLASSES
from rtseg.errors import ModelError
from rtseg.export.builder import build_spec, builtin_names
from rtseg.export.registry import BUILTIN_DIR, VOC_CLASSES, load_registry, load_spec, parse_spec

GOOD = {"name": "toy", "arch": "rtseg:effl0_lraspp", "classes": "camvid", "input_size": [360, 480],
        "weights": {"path": "runs/x/model_best.pth"}, "license": "MIT"}


def test_shipped_entries_load_and_name_known_architectures():
    specs = load_registry()
    expected = {"lraspp-mbv3-voc", "deeplabv3-mbv3-voc", "deeplabv3-r50-voc", "fcn-r50-voc", "camvid-effl0-lraspp"}
    assert expected <= set(specs)
    known = set(builtin_names().values())
    for spec in specs.values():
        assert spec.arch in known, spec.path
        assert spec.info.input_size and len(spec.info.palette) >= len(spec.info.classes)


def test_shipped_entries_say_where_weights_come_from_in_any_install():
    """Regression: the camvid entries named runs/.../model_best.pth, a file no install has."""
    for spec in load_registry().values():
        assert spec.path.parent == BUILTIN_DIR
        assert set(spec.weights) & {"torchvision", "url", "train"} and "path" not in spec.weights, spec.path
    recipe = load_registry()["camvid-effl0-unet"].weights["train"]
    assert recipe.startswith("rtseg train ") and "--arch effl0_unet_bilinear" in recipe


def _write_entry(folder, name, arch="rtseg:effl0_lraspp"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "arch": arch, "classes": "camvid"}))


def test_configs_in_the_working_directory_are_not_read(tmp_path, monkeypatch):
    """Regression: ./configs/models/*.yaml silently replaced built-in entries of the same name."""
    _write_entry(tmp_path / "configs" / "models", "lraspp-mbv3-voc")
    _write_entry(tmp_path / "configs" / "models", "stray")
    monkeypatch.chdir(tmp_path)
    specs = load_registry()
    assert "stray" not in specs
    assert specs["lraspp-mbv3-voc"].arch == "torchvision:lraspp_mobilenet_v3_large"
    assert specs["lraspp-mbv3-voc"].path.parent == BUILTIN_DIR


def test_user_registry_adds_entries_and_cannot_replace_built_ins(tmp_path, monkeypatch, caplog):
    _write_entry(tmp_path / "env", "from-env")
    _write_entry(tmp_path / "mine", "lraspp-mbv3-voc")
    _write_entry(tmp_path / "mine", "mine")
    monkeypatch.setenv("RTSEG_MODELS_DIR", str(tmp_path / "env"))
    with caplog.at_level(logging.WARNING, logger="rtseg.export.registry"):
        specs = load_registry([tmp_path / "mine"])
    assert {"from-env", "mine"} <= set(specs)
    assert specs["lraspp-mbv3-voc"].path.parent == BUILTIN_DIR
    assert str(tmp_path / "mine" / "lraspp-mbv3-voc.yaml") in caplog.text and "skipped" in caplog.text
    with pytest.raises(ModelError, match="not a folder"):
        load_registry([tmp_path / "absent"])


def test_voc_class_set_matches_torchvision_weights():
    from rtseg.export.torchvision_models import weight_categories

    categories = weight_categories("lraspp_mobilenet_v3_large", "COCO_WITH_VOC_LABELS_V1")
    assert VOC_CLASSES[1:] == categories[1:] and len(VOC_CLASSES) == len(categories)


def test_parse_fills_contract_fields():
    spec = parse_spec(dict(GOOD, palette=[[i, i, i] for i in range(11)], mean=[0.5, 0.5, 0.5]))
    assert spec.info.classes == CAMVID_CLASSES and spec.info.palette[3] == (3, 3, 3)
    assert spec.info.mean == (0.5, 0.5, 0.5) and spec.info.input_size == (360, 480) and spec.num_classes == 11


@pytest.mark.parametrize("change, match", [
    ({"colour": "red"}, "unknown key"),
    ({"arch": None}, "missing required key 'arch'"),
    ({"classes": "cityscapes"}, "not a known set"),
    ({"classes": []}, "non-empty list"),
    ({"palette": [[0, 0, 0]]}, "'palette' must be"),
    ({"input_size": [360]}, "input_size"),
    ({"mean": [0.5]}, "'mean' must be"),
    ({"channel_order": "GBR"}, "channel_order"),
    ({"weights": {"url": "https://example.com/w.pth"}}, "needs a 'sha256'"),
    ({"weights": {"s3": "bucket"}}, "one of torchvision, url, path"),
])
def test_bad_entries_name_file_and_key(tmp_path, change, match):
    data = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match=match) as exc:
        load_spec(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ModelError, match="invalid YAML"):
        load_spec(path)


def test_entry_with_missing_local_weights_is_a_clear_error(tmp_path):
    spec = parse_spec(dict(GOOD, arch="torchvision:lraspp_mobilenet_v3_large",
                           weights={"path": str(tmp_path / "absent.pth")}))
    with pytest.raises(ModelError, match="weights file not found"):
        build_spec(spec)
