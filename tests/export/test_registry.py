"""configs/models/*.yaml: the shipped entries load; bad entries fail with one clear line."""

from __future__ import annotations

import pytest
import yaml

from rtseg.contract import CAMVID_CLASSES
from rtseg.errors import ModelError
from rtseg.export.build import build_spec, builtin_names
from rtseg.export.registry import VOC_CLASSES, load_registry, load_spec, parse_spec

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
