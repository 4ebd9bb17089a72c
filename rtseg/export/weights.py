"""Load weights safely: local checkpoints, ``.safetensors`` and URLs checked by sha256.

Local checkpoints are read with ``torch.load(weights_only=True)`` only, so a checkpoint
cannot run code. URLs are downloaded once into the cache (``$RTSEG_CACHE/weights``) and
verified against their sha256 before use, every time they are used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rtseg.cache import weights_dir
from rtseg.errors import ModelError, first_line

log = logging.getLogger(__name__)

# keys under which training scripts commonly nest the model's state dict
_NESTED_KEYS = ("model", "state_dict", "model_state_dict", "model_state")


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, sha256: str | None) -> None:
    """Raise :class:`ModelError` when ``path`` does not hash to ``sha256`` (skipped if None)."""
    if not sha256:
        return
    actual = sha256_of(path)
    if actual.lower() != sha256.lower():
        raise ModelError(f"{path}: sha256 mismatch (expected {sha256}, got {actual}); "
                         f"delete the file or fix the expected hash")


def download(url: str, sha256: str | None, cache: Path | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` once into the cache and return the local path.

    A cached file is re-verified on every call; a download is verified before it is moved
    into place, so a partial or tampered file never lands in the cache.

    Raises:
        ModelError: the download fails or the hash does not match.
    """
    cache = cache or weights_dir()
    name = Path(urllib.parse.urlparse(url).path).name or "weights.bin"
    prefix = (sha256 or hashlib.sha256(url.encode()).hexdigest())[:12]
    target = cache / f"{prefix}-{name}"
    if target.is_file():
        verify_sha256(target, sha256)
        return target
    if not sha256:
        log.warning("no sha256 given for %s; the download cannot be verified", url)
    cache.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, target)
    fd, tmp_name = tempfile.mkstemp(dir=cache, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        verify_sha256(Path(tmp_name), sha256)
        os.replace(tmp_name, target)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise ModelError(f"cannot download weights from {url}: {type(exc).__name__}: {exc}; "
                         f"download it yourself and pass the local path") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def load_state_dict(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """Read a state dict from ``.pt``/``.pth``/``.ckpt`` (weights only) or ``.safetensors``.

    A checkpoint that nests the state dict under ``model``/``state_dict`` is unwrapped.

    Raises:
        ModelError: missing file, wrong hash, unsafe or unreadable checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    verify_sha256(path, sha256)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ModelError(f"{path}: reading .safetensors needs the 'safetensors' package "
                             f"(pip install safetensors)") from None
        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{path}: unreadable safetensors file ({exc})") from None
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError for unsafe pickles, others for junk
        raise ModelError(f"{path}: cannot load as a weights-only checkpoint ({first_line(exc)})") from None
    return _unwrap(obj, path)


def _unwrap(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if hasattr(v, "shape")}
        if tensors:
            # strip DataParallel / torch.compile prefixes
            for prefix in ("module.", "_orig_mod."):
                if all(k.startswith(prefix) for k in tensors):
                    tensors = {k[len(prefix):]: v for k, v in tensors.items()}
            return tensors
    raise ModelError(f"{path}: no state dict found (expected a dict of tensors, "
                     f"optionally under one of {', '.join(_NESTED_KEYS)})")


def resolve_weights_file(path: str | None = None, url: str | None = None,
                         sha256: str | None = None) -> Path:
    """Local path for a weights spec: a local file wins (offline use), else the URL via cache."""
    if path:
        local = Path(path).expanduser()
        if not local.is_file():
            raise ModelError(f"weights file not found: {local}")
        verify_sha256(local, sha256)
        return local
    if url:
        if url.startswith("file://"):
            return resolve_weights_file(path=urllib.parse.urlparse(url).path, sha256=sha256)
        return download(url, sha256)
    raise ModelError("no weights given (need a local path or a URL)")


def load_into(module, state_dict: Mapping[str, Any], source: str, strict: bool = True) -> None:
    """``module.load_state_dict`` with a one-line error naming the source on mismatch."""
    try:
        result = module.load_state_dict(state_dict, strict=strict)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:3]) if len(lines) > 1 else lines[0] if lines else ""
        raise ModelError(f"{source}: weights do not fit the architecture ({detail[:300]})") from None
    if not strict and (result.missing_keys or result.unexpected_keys):
        log.warning("%s: %d missing, %d unexpected keys", source,
                    len(result.missing_keys), len(result.unexpected_keys))
