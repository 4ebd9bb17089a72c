"""Find and read weight files safely: local checkpoints, ``.safetensors``, URLs checked by sha256.

Local checkpoints are read by :func:`rtseg.checkpoint.read_checkpoint` (``torch.load``
with ``weights_only=True``), so a checkpoint cannot run code. URLs are downloaded once into
the cache (``$RTSEG_CACHE/weights``) and verified against their sha256 every time they are used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from rtseg.cache import weights_dir
from rtseg.checkpoint import read_checkpoint, state_dict_of
from rtseg.errors import ModelError

log = logging.getLogger(__name__)


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

    A state dict nested under ``model``/``state_dict`` is unwrapped (:func:`rtseg.checkpoint.state_dict_of`).

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
    return state_dict_of(read_checkpoint(path), path)


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
