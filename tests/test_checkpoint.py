"""rtseg.checkpoint: the one reader/writer of checkpoints, weights-only, with one-line errors."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")

from rtseg.checkpoint import (  # noqa: E402
    TrainCheckpoint,
    load_model_checkpoint,
    read_checkpoint,
    read_training_checkpoint,
    state_dict_of,
    write_checkpoint,
)
from rtseg.errors import ModelError  # noqa: E402
from rtseg.models import build_model  # noqa: E402


def _training_checkpoint(num_classes: int = 3) -> TrainCheckpoint:
    """A checkpoint.pth with every key ``rtseg train`` writes (the shape long runs have on disk)."""
    torch.manual_seed(0)
    model = build_model("effl0_lraspp", num_classes)
    optimizer = torch.optim.AdamW(model.parameters())
    return TrainCheckpoint(
        model=model.state_dict(), optimizer=optimizer.state_dict(),
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0).state_dict(), scaler=None,
        ema=None, epoch=4, args={"arch": "effl0_lraspp", "crop": (32, 32), "val_size": None}, best_miou=0.25,
        rng={"torch": torch.get_rng_state(), "python": (3, tuple(range(625)), None)}, arch="effl0_lraspp",
        num_classes=num_classes, classes=["background", "red", "blue"], ignore_index=255,
        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], pretrained=False)


def test_write_then_read_round_trip_leaves_no_temporary_file(tmp_path):
    ckpt = _training_checkpoint()
    write_checkpoint(ckpt, tmp_path / "checkpoint.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]
    back = read_training_checkpoint(tmp_path / "checkpoint.pth")
    assert set(back) == set(ckpt) and back["epoch"] == 4 and back["args"]["crop"] == (32, 32)
    module, meta = load_model_checkpoint(tmp_path / "checkpoint.pth")
    assert not module.training and meta["classes"] == ["background", "red", "blue"]
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in module.state_dict().items())


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unsafe_missing_and_foreign_files_are_one_line_errors(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(ModelError, match="weights-only"):
        read_checkpoint(evil)
    with pytest.raises(ModelError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "absent.pth")
    plain = tmp_path / "plain.pth"
    torch.save(build_model("effl0_lraspp", 3).state_dict(), plain)
    with pytest.raises(ModelError, match="not an rtseg training checkpoint") as exc:
        read_training_checkpoint(plain)
    assert "\n" not in str(exc.value)


def test_state_dict_is_unwrapped_from_nesting_and_prefixes():
    weights = {"conv.weight": torch.zeros(1), "conv.bias": torch.ones(1)}
    nested = {"state_dict": {f"module.{k}": v for k, v in weights.items()}, "epoch": 1}
    assert state_dict_of(nested, "x").keys() == weights.keys()
    with pytest.raises(ModelError, match="no state dict"):
        state_dict_of({"epoch": 1}, "x.pth")


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    ckpt = _training_checkpoint()
    ckpt["num_classes"] = 5
    write_checkpoint(ckpt, tmp_path / "model_best.pth")
    with pytest.raises(ModelError, match="model_best.pth: weights do not fit the architecture"):
        load_model_checkpoint(tmp_path / "model_best.pth")
