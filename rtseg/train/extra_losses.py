"""Training-only loss terms added to the segmentation loss: auxiliary heads (``--aux-weight``), a
Pix2Pix-style PatchGAN discriminator (``--adversarial``) and knowledge distillation from a trained
teacher (``--distill``).

None of them is part of the network that is validated, kept in ``model_best.pth`` or exported:
the auxiliary heads read the encoder's features through a forward hook, the discriminator and
the teacher are separate modules. ``checkpoint.pth`` keeps the heads' and the discriminator's
state (keys ``aux`` and ``adversarial``) so that ``--resume`` continues exactly.

Per training step (:class:`ExtraLosses`)::

    loss = seg + aux_weight * (seg(aux8) + seg(aux16))
               + adversarial * mean((D(image, softmax(logits)) - 1)^2)             # LSGAN
               + distill_weight * T^2 * KL(softmax(teacher / T) || softmax(logits / T))
    then one discriminator step on (image, one-hot truth) vs (image, softmax(logits).detach())
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rtseg.errors import RtsegError


def feature_source(model: nn.Module) -> tuple[nn.Module, Callable, tuple[int, int]]:
    """(submodule, picker, channels): the module whose output holds the stride-8 and stride-16 features,
    a function picking them from that output, and their channel counts."""
    from rtseg.models.networks import EncoderDecoder, TorchvisionLRASPP

    if isinstance(model, EncoderDecoder):
        channels = model.encoder.channels
        return model.encoder, lambda feats: (feats[1], feats[2]), (channels[1], channels[2])
    if isinstance(model, TorchvisionLRASPP):  # dilated MobileNetV3: "low" at stride 8, "high" at 16
        head = model.head
        return (model.backbone, lambda feats: (feats["low"], feats["high"]),
                (head.low_classifier.in_channels, head.cbr[0].in_channels))
    raise RtsegError(f"--aux-weight: no auxiliary heads for {type(model).__name__}")


class AuxHeads(nn.Module):
    """1x1-conv classifiers on the stride-8 and stride-16 features, each scored with the main loss.

    A forward hook keeps the features of the last training-mode forward pass; in eval mode the
    hook keeps nothing, and the model's own forward and graph are untouched.
    """

    def __init__(self, model: nn.Module, num_classes: int, weight: float) -> None:
        super().__init__()
        source, self._pick, channels = feature_source(model)
        self.heads = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in channels)
        self.weight = weight
        self._feats: Sequence[torch.Tensor] | None = None
        self._hook = source.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs, output) -> None:
        self._feats = self._pick(output) if module.training else None

    def loss(self, loss_fn: nn.Module, target: torch.Tensor) -> torch.Tensor:
        """Sum of ``loss_fn`` over the heads' logits, upsampled to the target (unweighted)."""
        if self._feats is None:
            raise RuntimeError("AuxHeads.loss called without a training-mode forward pass")
        feats, self._feats = self._feats, None
        total = torch.zeros((), device=target.device)
        for head, feat in zip(self.heads, feats):
            logits = F.interpolate(head(feat), size=target.shape[-2:], mode="bilinear", align_corners=False)
            total = total + loss_fn(logits.float(), target)
        return total


class PatchDiscriminator(nn.Module):
    """Pix2Pix's 70x70 PatchGAN (Isola et al. 2017) on the image concatenated with a class-probability map.

    4x4 convolutions with strides 2, 2, 2, 1, 1 and widths ``w, 2w, 4w, 8w, 1``; LeakyReLU 0.2;
    spectral norm on every convolution instead of batch/instance norm (no batch statistics, a
    1-Lipschitz critic). One score per overlapping 70x70 patch. ``width`` 32 (Pix2Pix: 64): with
    11 classes a training step of ``effl0_unet_bilinear`` on 320x416 crops takes about 1.7x as long
    with the discriminator's two passes as without (CPU, batch 4, one thread; 16 would be 1.3x).
    """

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers: list[nn.Module] = []
        cin = in_channels
        for cout, stride in ((width, 2), (2 * width, 2), (4 * width, 2), (8 * width, 1)):
            layers += [sn(nn.Conv2d(cin, cout, 4, stride, 1)), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        layers.append(sn(nn.Conv2d(cin, 1, 4, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, probs.to(image.dtype)], dim=1))


class Adversarial:
    """The discriminator, its AdamW optimiser and schedule, and the two LSGAN losses.

    Real pairs are (image, one-hot ground truth) with ignored pixels set to the prediction (so
    they carry no signal); fake pairs are (image, softmax of the prediction). LSGAN (least
    squares, Mao et al. 2017): D minimises ``((D(real) - 1)^2 + D(fake)^2) / 2``, the segmenter
    ``(D(fake) - 1)^2``; its gradients do not vanish when D wins, unlike the saturating BCE form.
    """

    def __init__(self, disc: PatchDiscriminator, optimizer: torch.optim.Optimizer, scheduler, weight: float,
                 ignore_index: int) -> None:
        self.disc, self.optimizer, self.scheduler = disc, optimizer, scheduler
        self.weight, self.ignore_index = weight, ignore_index

    def generator_loss(self, image: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """LSGAN loss of the segmenter: fake pairs scored as real (no gradient into D's weights)."""
        self.disc.requires_grad_(False)
        try:
            return ((self.disc(image, probs).float() - 1) ** 2).mean()
        finally:
            self.disc.requires_grad_(True)

    def real_map(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One-hot ground truth; ignored pixels take the (detached) predicted probabilities."""
        valid = target != self.ignore_index
        onehot = F.one_hot(torch.where(valid, target, 0), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
        return torch.where(valid.unsqueeze(1), onehot, probs)

    def discriminator_step(self, image: torch.Tensor, probs: torch.Tensor, target: torch.Tensor,
                           amp_dtype: torch.dtype | None, scaler=None) -> float:
        """One optimiser step of D on a real and a fake batch (one forward pass); returns its loss."""
        probs = probs.detach().float()
        with torch.autocast(image.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            scores = self.disc(torch.cat([image, image]), torch.cat([self.real_map(probs, target), probs])).float()
        real, fake = scores.chunk(2)
        loss = 0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean())
        self.optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(self.optimizer)
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.disc.load_state_dict(state["disc"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


class Distiller:
    """Knowledge distillation (Hinton et al. 2015) from a trained rtseg checkpoint, per pixel.

    ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` averaged over the pixels that are not
    ignored; the teacher runs in eval mode without gradients on the same input.
    """

    def __init__(self, teacher: nn.Module, weight: float, temperature: float, ignore_index: int) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.weight, self.temperature, self.ignore_index = weight, temperature, ignore_index

    def loss(self, image: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        with torch.no_grad():
            log_teacher = F.log_softmax(self.teacher(image).float() / t, dim=1)
        log_student = F.log_softmax(logits.float() / t, dim=1)
        kl = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)
        valid = target != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        return t * t * kl[valid].mean()


def load_teacher(path: str | os.PathLike, classes: Sequence[str], mean: Sequence[float], std: Sequence[float],
                 device: torch.device) -> nn.Module:
    """The network of the ``rtseg train`` checkpoint at ``path``, in eval mode on ``device``.

    Raises:
        RtsegError: its classes (or input normalisation) differ from the student's; ModelError: not a checkpoint.
    """
    from rtseg.checkpoint import load_model_checkpoint

    teacher, ckpt = load_model_checkpoint(path)
    teacher_classes = list(ckpt.get("classes") or [f"class{i}" for i in range(int(ckpt["num_classes"]))])
    if teacher_classes != list(classes):
        raise RtsegError(f"--distill {path}: the teacher's classes ({', '.join(teacher_classes)}) differ from the "
                         f"data's ({', '.join(classes)})")
    for key, want in (("mean", mean), ("std", std)):
        have = ckpt.get(key)
        if have is not None and [round(float(v), 6) for v in have] != [round(float(v), 6) for v in want]:
            raise RtsegError(f"--distill {path}: the teacher's input {key} {list(have)} differs from the student's")
    return teacher.to(device)


class ExtraLosses:
    """The extra terms of one run (any of them may be None) and their running means for the log."""

    def __init__(self, aux: AuxHeads | None = None, adversarial: Adversarial | None = None,
                 distiller: Distiller | None = None) -> None:
        self.aux, self.adversarial, self.distiller = aux, adversarial, distiller
        self._sums: dict[str, float] = {}
        self._steps = 0

    def __bool__(self) -> bool:
        return any(part is not None for part in (self.aux, self.adversarial, self.distiller))

    def generator_terms(self, image: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                        loss_fn: nn.Module) -> torch.Tensor:
        """The weighted sum of the extra terms for the segmenter's loss (call inside the autocast)."""
        terms = {}
        if self.aux is not None:
            terms["aux"] = self.aux.weight * self.aux.loss(loss_fn, target)
        if self.distiller is not None:
            terms["kd"] = self.distiller.weight * self.distiller.loss(image, logits, target)
        if self.adversarial is not None:
            probs = logits.float().softmax(dim=1)
            terms["adv"] = self.adversarial.weight * self.adversarial.generator_loss(image, probs)
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.item()
        self._steps += 1
        return sum(terms.values(), torch.zeros((), device=logits.device))

    def after_step(self, image: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                   amp_dtype: torch.dtype | None, scaler=None) -> None:
        """The discriminator's step, after the segmenter's."""
        if self.adversarial is not None:
            loss = self.adversarial.discriminator_step(image, logits.detach().float().softmax(dim=1), target,
                                                       amp_dtype, scaler)
            self._sums["disc"] = self._sums.get("disc", 0.0) + loss

    def summary(self) -> str:
        """``aux 0.412, disc 0.250`` (means since the last call, then reset); empty without extra terms."""
        text = ", ".join(f"{name} {total / max(self._steps, 1):.4g}" for name, total in self._sums.items())
        self._sums, self._steps = {}, 0
        return text
