"""Training-only loss terms: auxiliary heads, the PatchGAN discriminator, distillation; checkpoints and resume."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from rtseg.checkpoint import TrainCheckpoint, load_model_checkpoint
from rtseg.cli import main as cli_main
from rtseg.models import build_model
from rtseg.train.extra_losses import AuxHeads, Distiller, PatchDiscriminator

from train_helpers import make_shapes_dataset

pytestmark = pytest.mark.timeout(120)


def _train(data, out, *extra: str, epochs: int = 1, arch: str = "effl0_lraspp") -> int:
    return cli_main(["train", "--data", f"masks:{data}", "--val-split", "train", "--arch", arch, "--scratch",
                     "--batch-size", "2", "--crop", "64", "64", "--max-steps", "2", "--threads", "1",
                     "--epochs", str(epochs), "--out", str(out), "--no-progress", *extra])


def _onnx_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), buffer, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"])
    return buffer.getvalue()


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        _same_state(a[k], b[k]) if isinstance(a[k], dict) else
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


# ------------------------------------------------------------------------------------------- auxiliary heads

@pytest.mark.parametrize("arch", ["effl0_unet_bilinear", "mbv3_small_lraspp"])
def test_aux_heads_add_to_the_training_loss_and_leave_eval_and_export_alone(arch):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=3)
    before = _onnx_bytes(model.eval())
    x, target = torch.randn(2, 3, 64, 64), torch.randint(0, 3, (2, 64, 64))
    with torch.no_grad():
        plain = model(x)
    aux = AuxHeads(model, num_classes=3, weight=0.4)
    assert [h.out_channels for h in aux.heads] == [3, 3]
    with torch.no_grad():
        hooked = model.eval()(x)
    assert isinstance(hooked, torch.Tensor) and torch.equal(hooked, plain)  # eval: the same tensor, nothing kept
    assert aux._feats is None
    assert _onnx_bytes(model.eval()) == before  # the exported graph does not change
    model.train()
    logits = model(x)
    aux_loss = aux.loss(F.cross_entropy, target)
    assert aux_loss.item() > 0
    (F.cross_entropy(logits, target) + aux.weight * aux_loss).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in aux.heads.parameters())


def test_aux_run_resumes_and_its_checkpoints_export_without_aux_keys(shapes_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(shapes_dir, out, "--aux-weight", "0.4", arch="effl0_unet_bilinear") == 0
    assert _train(shapes_dir, out, "--aux-weight", "0.4", "--resume", epochs=2, arch="effl0_unet_bilinear") == 0
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 2 and set(ckpt["aux"]) == {"heads.0.weight", "heads.0.bias", "heads.1.weight",
                                                       "heads.1.bias"}
    assert not any("aux" in k or k.startswith("heads.") for k in ckpt["model"])
    in_optimizer = sum(len(group["params"]) for group in ckpt["optimizer"]["param_groups"])
    assert in_optimizer == len(list(build_model("effl0_unet_bilinear", 3).parameters())) + 4  # + the heads
    for name in ("checkpoint.pth", "model_best.pth"):  # both load strictly into the plain architecture
        module, _ = load_model_checkpoint(out / name)
        assert module(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    capsys.readouterr()
    assert cli_main(["export", str(out / "model_best.pth"), "-o", str(tmp_path / "m.onnx"), "--input-size", "64",
                     "64", "--frames", str(shapes_dir / "images")]) == 0
    assert _train(shapes_dir, out, "--resume", epochs=3, arch="effl0_unet_bilinear") == 2
    err = capsys.readouterr().err
    assert "trained with auxiliary heads" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------- adversarial

def test_patchgan_sees_70x70_patches():
    disc = PatchDiscriminator(3 + 3)
    image, probs = torch.zeros(1, 3, 140, 140, requires_grad=True), torch.zeros(1, 3, 140, 140)
    scores = disc(image, probs)
    assert scores.shape == (1, 1, 15, 15)  # 140 -> 70 -> 35 -> 17 -> 16 -> 15
    scores[0, 0, 7, 7].backward()
    rows = image.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70


class Stop(Exception):
    """Raised after epoch 1's checkpoints are written: an interrupted run."""


def test_adversarial_resume_continues_exactly(shapes_dir, tmp_path, monkeypatch):
    """An interrupted run resumed with --resume ends with the same weights, discriminator and optimiser
    states as the uninterrupted run, bit for bit."""
    import rtseg.train.loop as loop

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(shapes_dir, straight, "--adversarial", "0.05", epochs=2) == 0
    save = loop.save_checkpoints

    def save_then_stop(run, epoch, improved):
        save(run, epoch, improved)
        raise Stop

    monkeypatch.setattr(loop, "save_checkpoints", save_then_stop)
    assert _train(shapes_dir, split, "--adversarial", "0.05", epochs=2) != 0  # the CLI reports Stop
    monkeypatch.setattr(loop, "save_checkpoints", save)
    assert torch.load(split / "checkpoint.pth", weights_only=True)["epoch"] == 1
    assert _train(shapes_dir, split, "--adversarial", "0.05", "--resume", epochs=2) == 0
    a, b = (torch.load(run / "checkpoint.pth", weights_only=True) for run in (straight, split))
    assert set(a) == set(TrainCheckpoint.__annotations__) and a["aux"] is None and a["epoch"] == b["epoch"] == 2
    assert set(a["adversarial"]) == {"disc", "optimizer", "scheduler"}
    assert any(k.endswith("parametrizations.weight.original") for k in a["adversarial"]["disc"])  # spectral norm
    assert len(a["adversarial"]["optimizer"]["state"]) == len(list(PatchDiscriminator(6).parameters()))
    for key in ("model", "optimizer", "scheduler", "adversarial"):
        assert _same_state(a[key], b[key]), key


def test_resume_of_a_checkpoint_from_before_the_new_keys(shapes_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(shapes_dir, out) == 0
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    for key in ("aux", "adversarial"):
        del ckpt[key]
    torch.save(ckpt, out / "checkpoint.pth")
    assert _train(shapes_dir, out, "--resume", epochs=2) == 0
    assert _train(shapes_dir, out, "--resume", "--adversarial", "0.01", epochs=3) == 2
    err = capsys.readouterr().err
    assert "checkpoint has no discriminator" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------- distillation

def test_distillation_term_is_a_temperature_scaled_kl_over_valid_pixels():
    teacher = torch.nn.Identity()
    student_logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0] = 255
    kd = Distiller(teacher, weight=1.0, temperature=2.0, ignore_index=255)
    assert kd.loss(student_logits, student_logits, target).item() == pytest.approx(0.0, abs=1e-6)
    teacher_logits = torch.randn(2, 3, 4, 4)
    got = kd.loss(teacher_logits, student_logits, target)
    p_t = F.softmax(teacher_logits[1] / 2, 0)
    want = 4 * (p_t * (p_t.log() - F.log_softmax(student_logits[1] / 2, 0))).sum(0).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_distill_from_a_tiny_teacher_and_class_mismatch(shapes_dir, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert _train(shapes_dir, teacher, arch="effl0_lraspp") == 0
    student = tmp_path / "student"
    assert _train(shapes_dir, student, "--distill", str(teacher / "model_best.pth"), "--distill-temp", "2",
                  arch="effl0_unet_bilinear") == 0
    best = torch.load(student / "model_best.pth", weights_only=True)
    assert best["args"]["distill"] == str(teacher / "model_best.pth") and best["args"]["distill_temp"] == 2.0
    assert best["arch"] == "effl0_unet_bilinear" and not any(k.startswith("teacher") for k in best["model"])
    other = make_shapes_dataset(tmp_path / "other")
    (other / "classes.txt").write_text("background\ncircle\nbox\n")
    capsys.readouterr()
    assert _train(other, tmp_path / "s2", "--distill", str(teacher / "model_best.pth")) == 2
    err = capsys.readouterr().err
    assert "the teacher's classes (background, red, blue) differ" in err and err.count("\n") == 1
    assert _train(other, tmp_path / "s3", "--distill-weight", "2") == 2
    assert "--distill-weight needs --distill" in capsys.readouterr().err
