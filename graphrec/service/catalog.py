"""What the HTTP service serves, without HTTP: a :class:`~graphrec.serve.Recommender` plus the
run's history, cold/warm status, item similarity and the users a new item reaches.

Everything returns plain ``dict``/``list`` (JSON-ready). Adding items goes through one lock, so
concurrent posts are applied one after the other and each is persisted (``serve/``) exactly
as ``graphrec add-items`` persists it; reads take no lock (the index only ever grows, and a
reader sees it before or after an add).

Similar items: the correlation of two items' predicted-score profiles over all users,
``corr_u(s_ui, s_uj)`` with ``s_ui = <user_u, item_i>`` in the serving space. With the users'
centred second-moment matrix ``C = (U - mean)^T (U - mean)`` it is
``e_i^T C e_j / sqrt(e_i^T C e_i * e_j^T C e_j)``: items that the same users are predicted to
like, defined alike for warm, cold and newly added items (the serving space's warm and cold
parts are not comparable directly: a warm and a cold item vector are orthogonal there).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from graphrec.data.report import DataError
from graphrec.paths import RunPaths
from graphrec.serve import Recommender

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


@dataclass
class ServiceError(Exception):
    """A request the service refuses: HTTP ``status``, a message and the offending field."""

    status: int
    error: str
    field: str | None = None
    row: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "field": self.field}
        if self.row is not None:
            out["row"] = self.row
        return out


class Catalog:
    """A loaded run, ready to answer the service's questions.

    Args:
        rec: the recommender (``Recommender.load(run_dir)``).
        run_dir: the run directory (history from ``prepared/``, warm items from ``split/train.csv``).
        template: the run's text template (``encoders.text.template``), to name the item fields
            a new item may carry.
    """

    def __init__(self, rec: Recommender, run_dir: str | Path, template: str | None = None, model_kind: str = "") -> None:
        from graphrec.data.tables import load_prepared

        self.rec, self.run_dir, self.template, self.model_kind = rec, Path(run_dir), template, model_kind
        self.paths = RunPaths(self.run_dir)
        self._lock = threading.Lock()
        inter, _ = load_prepared(self.paths.prepared)
        if "timestamp" in inter.columns:  # most recent first
            inter = inter.assign(_t=pd.to_numeric(inter["timestamp"], errors="coerce")).sort_values("_t", ascending=False, kind="stable")
        self.history = {u: g["item_id"].tolist() for u, g in inter.astype({"user_id": str, "item_id": str}).groupby("user_id", sort=False)}
        train = self.paths.split / "train.csv"
        if train.exists():
            self.warm = set(pd.read_csv(train, dtype=str, usecols=["item_id"])["item_id"])
        else:  # no split on disk: the model's own warm flags
            m = rec.model.members[0] if hasattr(rec.model, "members") else rec.model
            self.warm = {i for i, w in zip(m.item_ids, getattr(m, "warm", torch.ones(len(m.item_ids), dtype=torch.bool)).tolist()) if w}
        self.n_catalogue = len(rec.index)
        self._sim_key, self._sim = -1, None
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def load(cls, run_dir: str | Path, model: str = "auto", backend: str = "exact", log=None) -> "Catalog":
        from graphrec.config import Config

        rec = Recommender.load(run_dir, backend=backend, model=model, log=log)
        cfg = Config.load_yaml(RunPaths(Path(run_dir)).config)
        kind = f"ensemble of {len(rec.model.members)} seeds" if hasattr(rec.model, "members") else "single model"
        return cls(rec, run_dir, cfg.encoders.text.template if "text" in cfg.encoders.enabled else None, kind)

    # ------------------------------------------------------------------ items
    def item_fields(self) -> list[str]:
        """Columns a new item may carry: ``item_id``, the template's fields, ``image_path``."""
        from graphrec.encoders.text import parse_template

        fields = parse_template(self.template).fields if self.template else ["title", "text"]
        if "title" not in fields:
            fields = ["title"] + fields
        return ["item_id"] + fields + ["image_path"]

    def item(self, item_id: str) -> dict[str, Any]:
        if self.rec.index.position(item_id) is None:
            raise ServiceError(404, f"unknown item id {item_id!r}", "item_id")
        return self._item_json(item_id)

    def _item_json(self, item_id: str) -> dict[str, Any]:
        row = self.rec.items.loc[item_id] if item_id in self.rec.items.index else None
        if isinstance(row, pd.DataFrame):  # a duplicated index (add_items' checks prevent it)
            row = row.iloc[0]

        def get(c: str) -> str:
            v = str(row[c]) if row is not None and c in row.index else ""
            return "" if v in ("nan", "None") else v

        return {"item_id": item_id, "title": get("title") or item_id, "genres": get("genres"),
                "cold": item_id not in self.warm, "added": self.rec.index.position(item_id) >= self.n_catalogue,
                "image_url": f"/items/{item_id}/image" if get("image_path") else None}

    def image_path(self, item_id: str) -> Path:
        self.item(item_id)
        path = str(self.rec.items["image_path"].get(item_id, "") or "") if "image_path" in self.rec.items else ""
        if not path or path == "nan":
            raise ServiceError(404, f"item {item_id!r} has no image", "item_id")
        p = Path(path)
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            raise ServiceError(404, f"image of item {item_id!r} is not an image file on this server", "item_id")
        return p

    # ------------------------------------------------------------------ users
    def _user(self, user_id: str) -> int:
        pos = self.rec.user_pos.get(user_id)
        if pos is None:
            raise ServiceError(404, f"unknown user id {user_id!r} (the model knows {len(self.rec.user_pos):,} users)", "user_id")
        return pos

    def users(self, limit: int, offset: int) -> dict[str, Any]:
        ids = list(self.rec.user_pos)
        page = ids[offset: offset + limit]
        return {"total": len(ids), "offset": offset,
                "users": [{"user_id": u, "n_interactions": len(self.history.get(u, []))} for u in page]}

    def user_history(self, user_id: str, limit: int) -> dict[str, Any]:
        self._user(user_id)
        items = self.history.get(user_id, [])
        return {"user_id": user_id, "total": len(items), "items": [self._item_json(i) for i in items[:limit]]}

    def recommendations(self, user_id: str, k: int, exclude_seen: bool = True) -> dict[str, Any]:
        self._user(user_id)
        table = self.rec.recommend([user_id], k=k, exclude_seen=exclude_seen)
        out = []
        for r in table.itertuples(index=False):
            d = self._item_json(r.item_id)
            d.update(rank=int(r.rank), score=round(float(r.score), 6))
            out.append(d)
        return {"user_id": user_id, "k": k, "items": out}

    # ------------------------------------------------------------------ similarity and reach
    def _user_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stats is None:
            u = self.rec.user_emb.float()
            mean = u.mean(0)
            c = (u - mean).T @ (u - mean) / max(1, u.shape[0])  # (D, D)
            self._stats = (mean, c)
        return self._stats

    def similar(self, item_id: str, k: int) -> dict[str, Any]:
        """Top-k items by predicted-score-profile correlation (see the module docstring)."""
        q = self.rec.index.position(item_id)
        if q is None:
            raise ServiceError(404, f"unknown item id {item_id!r}", "item_id")
        index = self.rec.index  # block by block for a BlockedIndex: the full-width matrix is never built
        _, c = self._user_stats()
        if self._sim_key != len(index):
            self._sim, self._sim_key = index.quadratic(c).clamp_min(1e-12).sqrt(), len(index)  # (N,) std of each item's score profile
        norm = self._sim
        sims = index.scores(index.vectors([q]) @ c)[0] / (norm * norm[q])  # (N,): covariance of the profiles / stds
        sims[q] = float("-inf")
        top = torch.topk(sims, min(k, len(index) - 1))
        ids = self.rec.index.item_ids
        items = [{**self._item_json(ids[p]), "rank": r, "similarity": round(float(s), 6)}
                 for r, (s, p) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1) if s > float("-inf")]
        return {"item_id": item_id, "k": k, "items": items}

    def audience(self, item_id: str, k: int, limit: int = 50) -> dict[str, Any]:
        """Users whose top-k (seen items excluded) now contains ``item_id``, best rank first."""
        p = self.rec.index.position(item_id)
        if p is None:
            raise ServiceError(404, f"unknown item id {item_id!r}", "item_id")
        users, index = self.rec.user_emb, self.rec.index
        ids = list(self.rec.user_pos)
        hist_pos = self.rec._seen  # positions of each user's known items (what recommend excludes)
        ranks = torch.empty(len(ids), dtype=torch.long)
        for s in range(0, len(ids), 2048):
            u = users[s: s + 2048]  # (B, D)
            scores = index.scores(u)  # (B, N), block by block for a BlockedIndex
            for r, uid in enumerate(ids[s: s + 2048]):
                seen = hist_pos.get(uid, [])
                if seen:
                    scores[r, seen] = float("-inf")
            mine = scores[:, p].clone()
            ranks[s: s + len(u)] = (scores > mine.unsqueeze(1)).sum(1) + 1
            ranks[s: s + len(u)][torch.isinf(mine)] = len(index) + 1  # already seen
        order = torch.argsort(ranks, stable=True)
        hits = [(ids[i], int(ranks[i])) for i in order.tolist() if ranks[i] <= k]
        return {"item_id": item_id, "k": k, "n_users": len(hits), "total_users": len(ids),
                "users": [{"user_id": u, "rank": r} for u, r in hits[:limit]]}

    # ------------------------------------------------------------------ adding
    def add(self, rows: list[dict[str, Any]] | pd.DataFrame, source: str = "json") -> dict[str, Any]:
        """Embed and add new items (one at a time across threads); returns them as JSON.

        ``rows``: JSON objects (``source="json"``, rows named ``items[i]`` in errors) or a parsed
        CSV (``source="csv"``, rows named by file line). ``image_base64`` (optionally a data URL)
        is decoded, checked and stored under ``serve/uploads/``.
        """
        df = self._frame(rows, source)
        with self._lock:
            try:
                table = self.rec.add_items(df, persist=True, progress=False)
            except DataError as exc:
                raise self._data_error(exc, source) from None
            except (ValueError, RuntimeError) as exc:
                raise ServiceError(400, str(exc), _field_in(str(exc))) from None
        return {"added": [self._item_json(i) for i in table["item_id"]], "total_items": len(self.rec.index),
                "notes": list(self.rec.last_notes)}

    def _frame(self, rows, source: str) -> pd.DataFrame:
        if isinstance(rows, pd.DataFrame):
            df = rows.copy()
        else:
            if not rows:
                raise ServiceError(400, "no items given", "items")
            for n, r in enumerate(rows):
                if not isinstance(r, dict):
                    raise ServiceError(400, f"items[{n}] must be an object of field: value", f"items[{n}]")
            cols = list(dict.fromkeys(c for r in rows for c in r))
            df = pd.DataFrame([{c: _text(r.get(c)) for c in cols} for r in rows], columns=cols)
        if "item_id" not in df.columns:
            raise ServiceError(400, "every item needs an item_id", "item_id")
        if "image_base64" in df.columns:
            df["image_path"] = [self._store_upload(b, i, n, source) if b else str(p or "")
                                for n, (b, i, p) in enumerate(zip(df["image_base64"], df["item_id"],
                                                                  df.get("image_path", pd.Series([""] * len(df)))))]
            df = df.drop(columns="image_base64")
        if "image_path" in df.columns:
            for n, pth in enumerate(df["image_path"]):
                if pth and Path(str(pth)).suffix.lower() not in IMAGE_SUFFIXES:
                    raise ServiceError(400, f"image_path {pth!r} is not an image file ({', '.join(IMAGE_SUFFIXES)})",
                                       "image_path", _row(n, source))
        # template fields a row leaves out are empty (their sentence is dropped), as long as it names one
        wanted = [f for f in self.item_fields() if f not in ("item_id", "image_path", "text")]  # `text` is derived
        if any(f in df.columns for f in wanted):
            for f in wanted:
                if f not in df.columns:
                    df[f] = ""
        return df

    def _store_upload(self, data: str, item_id: str, n: int, source: str) -> str:
        from PIL import Image, UnidentifiedImageError

        data = re.sub(r"^data:[^,]*,", "", str(data).strip())
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ServiceError(400, "image_base64 is not valid base64", "image_base64", _row(n, source)) from None
        if len(raw) > MAX_UPLOAD_BYTES:
            raise ServiceError(400, f"image is larger than {MAX_UPLOAD_BYTES // 2**20} MiB", "image_base64", _row(n, source))
        try:
            with Image.open(io.BytesIO(raw)) as im:
                fmt = (im.format or "PNG").lower()
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise ServiceError(400, "image_base64 is not a readable image", "image_base64", _row(n, source)) from None
        ext = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif", "bmp": ".bmp"}.get(fmt, ".png")
        d = self.paths.serve_files.uploads
        d.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(item_id))[:60] or "item"
        p = d / f"{safe}-{hashlib.sha256(raw).hexdigest()[:12]}{ext}"
        p.write_bytes(raw)
        return str(p.resolve())

    def _data_error(self, exc: DataError, source: str) -> ServiceError:
        msg = str(exc)
        prefix = exc.file + (f", row {exc.row}" if exc.row is not None else "") + (f", field {exc.field!r}" if exc.field else "")
        msg = msg[len(prefix) + 2:] if msg.startswith(prefix) else msg
        if exc.row is None:
            return ServiceError(400, msg, exc.field)
        where = f"items[{exc.row - 2}]" if source == "json" else f"CSV line {exc.row}"
        return ServiceError(400, f"{where}: {msg}", exc.field, exc.row - 2 if source == "json" else exc.row)

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        m = self.rec.model
        return {"run_dir": str(self.run_dir), "model": self.model_kind or type(m).__name__,
                "modalities": list(getattr(m, "modalities", [])), "fingerprints": dict(getattr(m, "fingerprints", {})),
                "users": len(self.rec.user_pos), "items": len(self.rec.index), "catalogue_items": self.n_catalogue,
                "added_items": len(self.rec.index) - self.n_catalogue, "warm_items": len(self.warm),
                "dim": int(self.rec.index.width), "backend": self.rec.index.backend,
                "text_template": self.template, "item_fields": self.item_fields()}


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return "|".join(str(x) for x in v)
    return str(v)


def _row(n: int, source: str) -> int:
    return n if source == "json" else n + 2


def _field_in(msg: str) -> str | None:
    m = re.search(r"column\(s\) \['([^']+)'", msg) or re.search(r"field '([^']+)'", msg)
    return m.group(1) if m else None
