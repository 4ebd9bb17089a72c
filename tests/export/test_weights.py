"""Weights: weights-only checkpoints, safetensors, sha256-verified downloads into the cache."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import torch

from rtseg.errors import ModelError
from rtseg.export import weights
from rtseg.export.builder import build

from export_helpers import TinySeg


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_state_dict_round_trip_and_nesting(tmp_path):
    module = TinySeg(3)
    plain, nested = tmp_path / "plain.pt", tmp_path / "nested.pth"
    torch.save(module.state_dict(), plain)
    torch.save({"model": {f"module.{k}": v for k, v in module.state_dict().items()}, "epoch": 3}, nested)
    for path in (plain, nested):
        sd = weights.load_state_dict(path)
        assert set(sd) == set(module.state_dict())
        assert all(torch.equal(sd[k], v) for k, v in module.state_dict().items())


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"w": _Evil()}, fh)
    with pytest.raises(ModelError, match="weights-only"):
        weights.load_state_dict(path)


def test_missing_file_and_wrong_hash(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        weights.load_state_dict(tmp_path / "nope.pt")
    path = tmp_path / "w.pt"
    torch.save(TinySeg(3).state_dict(), path)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        weights.load_state_dict(path, sha256="0" * 64)
    assert weights.load_state_dict(path, sha256=_sha(path))


def test_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    module = TinySeg(3)
    path = tmp_path / "w.safetensors"
    st.save_file(module.state_dict(), str(path))
    assert set(weights.load_state_dict(path)) == set(module.state_dict())


def test_download_once_with_verification(tmp_path, cache):
    source = tmp_path / "remote.pth"
    source.write_bytes(b"weights-bytes")
    url, sha = source.as_uri(), _sha(source)
    first = weights.download(url, sha)
    assert first.parent == cache / "weights" and first.read_bytes() == b"weights-bytes"
    source.unlink()  # second call must come from the cache, verified again
    assert weights.download(url, sha) == first
    first.write_bytes(b"tampered")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        weights.download(url, sha)


def test_bad_download_leaves_nothing_in_cache(tmp_path, cache):
    source = tmp_path / "remote.pth"
    source.write_bytes(b"other-bytes")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        weights.download(source.as_uri(), "1" * 64)
    assert list((cache / "weights").iterdir()) == []
    with pytest.raises(ModelError, match="cannot download"):
        weights.download((tmp_path / "absent.pth").as_uri(), "1" * 64)


def test_build_with_local_weights_and_mismatch(tmp_path):
    torch.manual_seed(3)
    ref = build("lraspp_mobilenet_v3_large", num_classes=4)
    path = tmp_path / "lraspp.pth"
    torch.save({"model": ref.module.model.state_dict()}, path)
    again = build("lraspp_mobilenet_v3_large", num_classes=4, weights=str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(ref.module(x), again.module(x))
    assert "local file" in again.info.source
    with pytest.raises(ModelError, match="do not fit the architecture"):
        build("lraspp_mobilenet_v3_large", num_classes=7, weights=str(path))
