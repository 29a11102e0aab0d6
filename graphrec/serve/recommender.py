"""Serve a trained run: recommend for known users, add brand-new items without retraining.

>>> rec = Recommender.load("runs/ml1m-mm")
>>> rec.recommend(["1", "2"], k=10)          # DataFrame: user_id, rank, item_id, title, score
>>> rec.add_items("new_movies.csv")           # embedded from content alone, recommendable at once
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

import pandas as pd
import torch

from graphrec.data.report import DataError
from graphrec.paths import ModelPaths, RunPaths, ServePaths
from graphrec.serve.blocks import make_index
from graphrec.serve.index import ANN_MIN_ITEMS, ItemIndex

NEW_ITEM_COLUMNS = ("item_id",)


class Recommender:
    """Top-k recommendation over a trained model's catalogue plus items added later.

    Args:
        model: a trained model with ``embeddings()``, ``embed_items(features)``, ``user_ids``,
            ``item_ids`` and ``fingerprints`` (see :func:`graphrec.training.load_checkpoint`).
        items: item table with at least ``item_id`` and ``title`` (for display).
        history: the known positives (``user_id, item_id``): item popularity (``exposure_penalty``),
            and what is excluded from recommendations unless ``seen`` says more.
        encoders_cfg: the run's :class:`~graphrec.encoders.config.EncodersConfig`, to embed new items.
        features_dir: feature store directory (new items are encoded into it).
        serve_dir: where added items are persisted, and a built HNSW graph under ``index/`` (keyed by
            the embeddings, so a restart serving the same catalogue reads it back; ``None``: neither).
        backend: ``"auto"`` (default: exact search below ``ann_min_items`` items, a faiss HNSW
            index from there on; see :mod:`graphrec.serve.index`), ``"exact"`` or ``"faiss"``.
        data_cfg: the run's :class:`~graphrec.data.config.DataConfig`: new items are prepared as the
            catalogue was (``None``: new-item tables must already be in the prepared schema).
        seen: every known interaction (``user_id, item_id``; prepared ``history.csv``, ratings below
            the threshold included), excluded from recommendations; default ``history``.
        device: where the model computes (embeddings, new items' content tower and encoders);
            None = leave the model where it is. The serving index and user vectors live on the CPU.
        ann_min_items: catalogue size from which ``auto`` uses HNSW (default
            :data:`~graphrec.serve.index.ANN_MIN_ITEMS`, 200,000).
    """

    def __init__(self, model, items: pd.DataFrame, history: pd.DataFrame, encoders_cfg=None,
                 features_dir: Path | None = None, serve_dir: Path | None = None, backend: str = "auto",
                 device=None, ann_min_items: int = ANN_MIN_ITEMS, data_cfg=None, seen: pd.DataFrame | None = None) -> None:
        from graphrec.devices import move_scorer, scorer_device

        self.model = move_scorer(model, device)
        self.device = scorer_device(self.model)
        self.encoders_cfg, self.features_dir, self.serve_dir = encoders_cfg, features_dir, serve_dir
        self.data_cfg = data_cfg
        self.last_notes: list[str] = []
        users, item_emb = model.serving_embeddings() if hasattr(model, "serving_embeddings") else model.embeddings()
        users, item_emb = users.cpu(), item_emb.cpu()
        self.user_emb = users
        self.user_pos = {u: i for i, u in enumerate(model.user_ids)}
        self.index = make_index(model, list(model.item_ids), item_emb, backend=backend, ann_min_items=ann_min_items,
                                cache_dir=Path(serve_dir) / "index" if serve_dir is not None else None)
        self.items = items.astype({"item_id": str}).drop_duplicates("item_id").set_index("item_id", drop=False)
        self._history = self._positions(history)
        self._seen = self._history if seen is None else self._positions(pd.concat([history[["user_id", "item_id"]],
                                                                                  seen[["user_id", "item_id"]]]))

    def _positions(self, pairs: pd.DataFrame) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        pos = self.index.position
        for u, grp in pairs.astype(str).drop_duplicates().groupby("user_id")["item_id"]:
            out[u] = [p for p in (pos(i) for i in grp) if p is not None]
        return out

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, run_dir: str | Path, backend: str = "auto", model: str = "auto", log=None,
             device=None, ann_min_items: int = ANN_MIN_ITEMS) -> "Recommender":
        """Load a run directory written by ``graphrec run`` / ``graphrec train``.

        ``model``: ``"single"`` serves ``model/checkpoint.pt``; ``"ensemble"`` the seed ensemble
        recorded by ``graphrec train`` (``ensemble.json``; an error when absent or stale);
        ``"auto"`` the ensemble when it is there and current, else the single model.
        ``device``: a device option or :class:`torch.device` (None = the run config's ``device``).
        """
        if model not in ("auto", "single", "ensemble"):
            raise ValueError(f"model must be 'auto', 'single' or 'ensemble', got {model!r}")
        from graphrec.config import Config
        from graphrec.data.tables import load_history, load_prepared
        from graphrec.stages.base import outputs_verified
        from graphrec.training.checkpoint import load_checkpoint
        from graphrec.training.manifest import load_ensemble

        run = Path(run_dir)
        paths = RunPaths(run)
        if not paths.config.exists():
            raise DataError(paths.config, "not a graphrec run directory (no config.yaml); run `graphrec run` or `graphrec train` first")
        ckpt = ModelPaths(paths.model).checkpoint
        if not ckpt.exists():
            raise DataError(ckpt, "no trained model; run `graphrec train` first")
        ok, why = outputs_verified(paths.model)
        if not ok:  # an interrupted or foreign training is never served
            raise DataError(ckpt, f"not a finished training ({why}); rerun `graphrec train`")
        net = None
        if model != "single":
            net, why = load_ensemble(paths.ensemble_manifest)
            if net is None and model == "ensemble":
                raise DataError(paths.ensemble_manifest, why)
            if net is None and log is not None and paths.ensemble_manifest.exists():
                log(f"serving the single model: {why}")
        net = net or load_checkpoint(ckpt)
        cfg = Config.load_yaml(paths.config)
        interactions, items = load_prepared(paths.prepared)
        from graphrec.devices import resolve_device

        dev = cfg.resolved_device() if device is None else resolve_device(device)
        rec = cls(net, items, interactions, cfg.encoders, paths.features, paths.serve, backend, device=dev,
                  ann_min_items=ann_min_items, data_cfg=cfg.data, seen=load_history(paths.prepared))
        rec._load_added()
        return rec

    def _load_added(self) -> None:
        if self.serve_dir is None or not ServePaths(self.serve_dir).embeddings.exists():
            return
        from graphrec.data.tables import read_table

        files = ServePaths(self.serve_dir)
        f = files.embeddings
        try:
            state = torch.load(f, weights_only=False)
            state["item_ids"], state["emb"]
        except Exception as exc:  # noqa: BLE001 - truncated / corrupt / not a torch file
            raise DataError(f, f"items added earlier cannot be read ({type(exc).__name__}); remove {self.serve_dir} "
                            "and add them again") from None
        added = read_table(files.items, ["item_id"])
        if state.get("space") != self._space():
            # embedded by another model (single vs ensemble, or retrained): embed them again from
            # the feature store (cache hits); the persisted files are replaced only once that worked
            table = self.add_items(added, persist=False, progress=False)
            emb = self.index.vectors([self.index.position(i) for i in table["item_id"]])
            files.embeddings.unlink()
            self._persist(table, emb)
            return
        self.index.add(state["item_ids"], state["emb"])
        self.items = pd.concat([self.items, added.set_index("item_id", drop=False)])

    def _space(self) -> str:
        """Identifies the serving space the added items' vectors live in (model kind, width)."""
        kind = f"ensemble{len(self.model.members)}" if hasattr(self.model, "members") else "single"
        return f"{kind}:{self.index.width}:{sorted(getattr(self.model, 'fingerprints', {}).items())}"

    # ------------------------------------------------------------------ recommend
    def recommend(self, user_ids: list[str] | str, k: int = 10, exclude_seen: bool = True,
                  exposure_penalty: float = 0.0) -> pd.DataFrame:
        """Top-k items per user with titles and scores, excluding what each user interacted with.

        ``exclude_seen`` (default) leaves out every known interaction of the user, including
        items rated below the positive threshold (the prepared ``history.csv``).

        ``exposure_penalty`` (lambda >= 0, default 0 = the model's ranking) re-ranks the whole
        catalogue by ``z_user(score) - lambda * z(log(1 + popularity))``
        (:mod:`graphrec.rerank`; popularity = the served history's interactions per item,
        0 for added items), moving popular items down and cold / new items up; ``score`` is
        then the penalised score. ``graphrec evaluate`` reports the accuracy-vs-exposure curve
        and the lambda chosen on validation (``fairness.json``).

        Returns a DataFrame with columns ``user_id, rank, item_id, title, score``.
        """
        k_given = k
        if isinstance(user_ids, (str, int)):
            user_ids = [user_ids]
        user_ids = [str(u) for u in user_ids]
        unknown = [u for u in user_ids if u not in self.user_pos]
        if unknown:
            raise KeyError(f"unknown user id {unknown[0]!r} (the model knows {len(self.user_pos):,} users, e.g. {next(iter(self.user_pos))!r})")
        try:
            k = operator.index(k) if not isinstance(k, bool) else None
        except TypeError:
            k = None
        if k is None or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k_given!r}")
        q = self.user_emb[torch.tensor([self.user_pos[u] for u in user_ids])]
        exclude = [self._seen.get(u, []) for u in user_ids] if exclude_seen else None
        if exposure_penalty:
            from graphrec.rerank import popularity_term, rerank_topk

            scores, pos = rerank_topk(self.index.scores(q), popularity_term(self.popularity()),
                                      exposure_penalty, k, exclude)
        else:
            scores, pos = self.index.search(q, k, exclude)
        rows = []
        for r, u in enumerate(user_ids):
            for rank, (s, p) in enumerate(zip(scores[r].tolist(), pos[r].tolist()), 1):
                if p < 0:
                    break
                iid = self.index.item_ids[p]
                title = self.items["title"].get(iid, "") if "title" in self.items else ""
                rows.append((u, rank, iid, title, float(s)))
        return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "title", "score"])

    def popularity(self) -> torch.Tensor:
        """(len(index),) known interactions per served item (history users), 0 for added items."""
        if getattr(self, "_pop", None) is None or self._pop.numel() != len(self.index):
            counts = torch.zeros(len(self.index), dtype=torch.long)
            for items in self._history.values():
                counts[torch.as_tensor(sorted(set(items)), dtype=torch.long)] += 1
            self._pop = counts
        return self._pop

    # ------------------------------------------------------------------ new items
    def add_items(self, items: pd.DataFrame | str | Path, persist: bool = True, progress: bool = True) -> pd.DataFrame:
        """Embed new items from content alone and make them recommendable now, without retraining.

        ``items`` is a table (or CSV path) of new items in the run's items-file columns or their
        prepared names (``item_id``, the template fields such as ``title, genres, plot``, an
        optional ``image_path`` relative to the CSV's folder or absolute); each row is prepared
        exactly as a catalogue row (:mod:`graphrec.data.new_items`) and encoded with the run's
        encoders. Any bad row (also one whose only content is an unreadable or oversized image)
        is an error naming the file, row and field, and then nothing is added. Rows that keep
        some content but lose a modality (e.g. an unreadable image next to a text) are added
        and listed in ``self.last_notes``.

        Returns the prepared table of the added items.
        """
        from graphrec.encoders import encode_items

        if self.encoders_cfg is None or self.features_dir is None:
            raise RuntimeError("add_items needs the run's encoder config and feature store (use Recommender.load)")
        path = Path(items) if isinstance(items, (str, Path)) else Path("<table>")
        table = canonical_new_items(items, self.index, self.data_cfg)
        feats, _ = encode_items(table, self.encoders_cfg, self.features_dir, progress=progress, device=self.device)
        missing = [m for m in self.model.modalities if m not in feats]
        if missing:
            raise RuntimeError(f"the model needs feature sets {missing} that the encoder config does not produce")
        for m in self.model.modalities:
            want = self.model.fingerprints.get(m)
            if want and feats[m].fingerprint != want:
                raise RuntimeError(f"encoder for {m!r} differs from the one the model was trained with "
                                   f"(fingerprint {feats[m].fingerprint} != {want}); restore the run's encoder config")
        self.last_notes = usable_content(table, feats, self.model.modalities, path, self.encoders_cfg.image.max_pixels)
        inputs = {m: (feats[m].x.to(self.device), feats[m].mask.to(self.device)) for m in self.model.modalities}
        embed = getattr(self.model, "serving_items", None) or self.model.embed_items
        emb = embed(inputs).cpu()  # the serving space of a cold catalogue item
        if emb.shape[1] != self.index.width:
            raise RuntimeError(f"new items embed to width {emb.shape[1]}, the serving index has {self.index.width}")
        self.index.add(table["item_id"].tolist(), emb)
        self.items = pd.concat([self.items, table.set_index("item_id", drop=False)])
        if persist and self.serve_dir is not None:
            self._persist(table, emb)
        return table

    def _persist(self, table: pd.DataFrame, emb: torch.Tensor) -> None:
        files = ServePaths(self.serve_dir)
        files.root.mkdir(parents=True, exist_ok=True)
        old_ids, old_emb, old_tab = [], torch.zeros(0, emb.shape[1]), pd.DataFrame()
        if files.embeddings.exists():
            st = torch.load(files.embeddings, weights_only=False)
            old_ids, old_emb = st["item_ids"], st["emb"]
            old_tab = pd.read_csv(files.items, dtype=str, keep_default_na=False)
        tab = pd.concat([old_tab, table], ignore_index=True)
        tmp = files.items.with_name(files.items.name + ".tmp")
        tab.to_csv(tmp, index=False)
        tmp_emb = files.embeddings.with_name(files.embeddings.name + ".tmp")
        torch.save({"item_ids": old_ids + table["item_id"].tolist(), "emb": torch.cat([old_emb, emb]),
                    "fingerprints": dict(self.model.fingerprints), "space": self._space()}, tmp_emb)
        tmp_emb.replace(files.embeddings)
        tmp.replace(files.items)
        files.log.write_text(json.dumps({"count": len(tab)}) + "\n")


def usable_content(table: pd.DataFrame, feats: dict, modalities: list[str], path: Path,
                   max_pixels: int = 50_000_000) -> list[str]:
    """Notes on the modalities new items lost (an unreadable or oversized image, an empty text),
    or a :class:`DataError` naming the row of an item left with none the model reads."""
    from graphrec.encoders.images import load_rgb

    notes = []
    for r, iid in enumerate(table["item_id"].tolist()):
        lost = {}
        for m in modalities:
            if bool(feats[m].mask[r]):
                continue
            if m == "image":
                img = str(table["image_path"].iloc[r] or "")
                lost[m] = f"image {img}: {load_rgb(img, max_pixels)[2]}" if img else "no image"
            else:
                lost[m] = "no text (the run's text template renders nothing for it)"
        if lost and len(lost) == len(modalities):
            field = "image_path" if "image" in lost and lost["image"] != "no image" else "item_id"
            raise DataError(path, f"item {iid!r} has no usable content for the model: {'; '.join(lost.values())}",
                            row=r + 2, field=field)
        notes += [f"{path}, row {r + 2}: item {iid!r}: {why}; embedded from its other content"
                  for m, why in lost.items() if not (m == "image" and why == "no image")]
    return notes


def canonical_new_items(items: pd.DataFrame | str | Path, index: ItemIndex | None = None, data_cfg=None) -> pd.DataFrame:
    """New items -> prepared rows; every problem raises :class:`DataError` naming row and field.

    With ``data_cfg`` (the run's data options) the rows go through the run's own item
    preparation (:func:`data_prep.generic.prepare_new_items` / :func:`data_prep.ml1m_mm.prepare_new_items`),
    so they equal catalogue rows; without it the table must already be in the prepared schema
    (``item_id``, ``title``, ``text``, ``image_path``, ``genres``, template fields).
    """
    from graphrec.data.tables import read_table

    if isinstance(items, (str, Path)):
        path = Path(items)
        df = read_table(path, [])
        root = path.resolve().parent
    else:
        path, df, root = Path("<table>"), items.fillna("").astype(str), Path.cwd()
    df = df.reset_index(drop=True)
    if df.empty:
        raise DataError(path, "no new items (a header but no rows)")
    if data_cfg is not None:
        if data_cfg.format == "ml1m-mm":
            from data_prep.ml1m_mm import prepare_new_items
        else:
            from data_prep.generic import prepare_new_items
        df = prepare_new_items(df, data_cfg, path, root)
    else:
        df = _prepared_as_given(df, path, root)
    if index is not None:
        for r, iid in enumerate(df["item_id"].tolist()):
            if index.position(iid) is not None:
                raise DataError(path, f"item id {iid!r} is already in the catalogue", row=r + 2, field="item_id")
    return df


def _prepared_as_given(df: pd.DataFrame, path: Path, root: Path) -> pd.DataFrame:
    """A new-items table already in the prepared schema, checked strictly."""
    if "item_id" not in df.columns:
        raise DataError(path, "missing column 'item_id'", field="item_id")
    df = df.copy()
    text_cols = [c for c in df.columns if c not in ("item_id", "image_path")]
    if not text_cols and "image_path" not in df.columns:
        raise DataError(path, "needs text columns (e.g. title, text) and/or an image_path column", field="item_id")
    seen: set[str] = set()
    for r, row in enumerate(df.itertuples(index=False), start=2):
        rec = row._asdict()
        iid = str(rec["item_id"]).strip()
        if not iid or iid.lower() == "nan":
            raise DataError(path, "empty item id", row=r, field="item_id")
        if iid in seen:
            raise DataError(path, f"duplicate item id {iid!r}", row=r, field="item_id")
        seen.add(iid)
        has_text = any(str(rec[c]).strip() not in ("", "nan") for c in text_cols)
        img = str(rec.get("image_path", "") or "").strip()
        if img and img != "nan":
            p = Path(img) if Path(img).is_absolute() else root / img
            if not p.is_file():
                raise DataError(path, f"image file not found: {img}", row=r, field="image_path")
        if not has_text and not (img and img != "nan"):
            raise DataError(path, "item has neither text nor image", row=r, field="item_id")
    df["item_id"] = df["item_id"].astype(str).str.strip()
    if "image_path" in df.columns:
        df["image_path"] = [str((Path(p) if Path(p).is_absolute() else root / p).resolve()) if str(p).strip() not in ("", "nan") else "" for p in df["image_path"]]
    else:
        df["image_path"] = ""
    if "title" not in df.columns:
        src = df["text"] if "text" in df.columns else df["item_id"]
        df["title"] = src.astype(str).str.slice(0, 80)
    if "text" not in df.columns:
        df["text"] = df[[c for c in text_cols if c != "title"] or ["title"]].astype(str).agg(". ".join, axis=1)
    if "genres" not in df.columns:
        df["genres"] = ""
    return df.reset_index(drop=True)
