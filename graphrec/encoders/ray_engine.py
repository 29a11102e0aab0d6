"""Batch encoding on Ray Data: the rows the feature store lacks are encoded by a pool of actors.

The driver does everything :func:`graphrec.encoders.encode_items` does (fingerprints, input keys,
store lookups, the merged atomic write), so both engines fill the *same* fingerprinted feature
store and a row cached by one is a hit for the other. Only the "encode the missing rows" step is
distributed: those rows become a Ray dataset (``ray.data.from_pandas``, one block per
``rows_per_block`` rows), :meth:`ray.data.Dataset.map_batches` runs :class:`RayBatchEncoder`
(a callable class, so Ray Data keeps a fixed pool of ``num_workers`` actors and each loads the
encoder model once), and the driver puts the returned arrays back in row order. Nothing is
started when the store already has every row.

Cluster use: ``address="auto"`` joins a cluster started with ``ray start --head`` (on its head
node), ``address="ray://host:10001"`` goes through Ray Client. Every worker node needs graphrec
and the encoder's weights installed (the same packages as the driver: ``pip install ".[scale]"``),
and for images the ``image_path`` files must be readable there (a shared filesystem). Each actor
checks that its encoder fingerprint equals the driver's, so a node with other weights fails loudly
instead of writing wrong rows under the driver's fingerprint.

Requires the ``scale`` extra (``ray[data]``); ``ray`` is imported only when rows must be encoded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from graphrec.data.features import ItemFeatures
from graphrec.encoders.base import _REGISTRY, EncodeResult, Encoder, register_encoder
from graphrec.encoders.config import EncodersConfig
from graphrec.encoders.pipeline import encode_items_local, encoder_from_config

log = logging.getLogger(__name__)

ROW = "__graphrec_row__"  # position of a row in the block of rows to encode


class RayBatchEncoder:
    """Stateful ``map_batches`` callable: builds the configured encoder once per actor.

    Args:
        modality: ``"text"`` or ``"image"``.
        cfg: the encoder config as a dict (:meth:`EncodersConfig.to_dict`).
        registry_name: the encoder's registry name.
        factory: the driver's registry entry for it, shipped so that encoders registered at run
            time (plugins, the tests' fakes) exist in the actor too; ``None`` = the actor's own.
        fingerprint: the driver's fingerprint; a different one in the actor is an error.
        num_threads: torch intra-op threads in the actor.
        dtypes: the driver table's column dtypes, restored after the trip through Arrow.
        device: where the actor's encoder runs (``"cuda"`` = the GPU Ray assigned to the actor;
            None = CPU).

    Shapes:
        __call__: pandas batch of B rows (plus the row column) -> ``{row: (B,), x: (B, D),
        mask: (B,), status: (B,), note: (B,)}`` numpy arrays
    """

    def __init__(self, modality: str, cfg: dict[str, Any], registry_name: str, factory: Callable[..., Encoder] | None,
                 fingerprint: str, num_threads: int = 1, dtypes: dict[str, Any] | None = None,
                 device: str | None = None) -> None:
        self.dtypes = dict(dtypes or {})
        if factory is not None and _REGISTRY.get(registry_name) is not factory:
            register_encoder(registry_name, factory, overwrite=True)
        torch.set_num_threads(max(1, num_threads))
        self.encoder = encoder_from_config(modality, EncodersConfig.from_dict(cfg), device=device)
        fp = self.encoder.fingerprint()
        if fp != fingerprint:
            raise RuntimeError(f"Ray worker on pid {os.getpid()}: encoder {registry_name} has fingerprint {fp}, the driver "
                               f"{fingerprint}; install the same weights and graphrec version on every node")
        self.dim = int(self.encoder.dim)  # loads the model now, once per actor
        self.rows_encoded = 0

    def __call__(self, batch: pd.DataFrame) -> dict[str, np.ndarray]:
        rows = batch[ROW].to_numpy(dtype=np.int64)
        res: EncodeResult = self.encoder.encode(_restore(batch.drop(columns=[ROW]), self.dtypes), progress=False)
        n = len(rows)
        if res.x.shape != (n, self.dim) or res.mask.shape != (n,) or len(res.status) != n:
            raise RuntimeError(f"encoder returned x {tuple(res.x.shape)} for {n} rows of dim {self.dim}")
        self.rows_encoded += n
        return {ROW: rows, "x": res.x.float().numpy(), "mask": res.mask.bool().numpy(),
                "status": np.asarray(res.status, dtype=object),
                "note": np.asarray([res.notes.get(j, "") for j in range(n)], dtype=object)}


def _restore(batch: pd.DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """The driver's dtypes and missing values again: Arrow nulls come back as None or pd.NA, the
    driver's table had NaN (pandas' own missing value, which every encoder handles)."""
    out = batch.reset_index(drop=True)
    for c in out.columns:
        col = out[c]
        if c in dtypes and col.dtype != dtypes[c]:
            try:
                col = col.astype(dtypes[c])
            except (TypeError, ValueError):
                pass
        if col.dtype == object:
            col = col.where(col.notna(), np.nan)
        out[c] = col
    return out


class RaySession:
    """Connects to (or starts) Ray on first use; shuts down only an instance it started itself.

    Args:
        address: ``None`` (``RAY_ADDRESS`` if set, else a new local instance with ``num_workers``
            CPUs), ``"auto"``, ``"ray://host:10001"`` or a GCS ``host:port``.
        num_workers: actors per encoding pass.
        runtime_env: passed to ``ray.init`` (e.g. ``{"py_modules": [...]}`` on a cluster).
        init_kwargs: extra ``ray.init`` arguments for a local instance (e.g. ``object_store_memory``).
    """

    def __init__(self, address: str | None = None, num_workers: int = 2, runtime_env: dict | None = None,
                 init_kwargs: dict | None = None) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_workers = num_workers
        self.runtime_env, self.init_kwargs = runtime_env, dict(init_kwargs or {})
        self.started = False  # by us (so we shut it down)
        self.connected = False
        self.seconds_init = 0.0

    def ray(self):
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError('encoders.engine=ray needs Ray Data: pip install -e ".[scale]"') from exc
        if not self.connected:
            t0 = time.perf_counter()
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            if not ray.is_initialized():
                kw: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                      "runtime_env": self.runtime_env}
                if self.address:
                    ray.init(address=self.address, **kw)
                else:
                    ray.init(num_cpus=self.num_workers, **kw, **self.init_kwargs)
                self.started = True
            self.connected = True
            self.seconds_init = time.perf_counter() - t0
        return ray

    def close(self) -> None:
        if self.started:
            import ray

            ray.shutdown()
        self.started = self.connected = False


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts plus their position; NaN cells of text columns become None (typed Arrow strings)."""
    out = rows.reset_index(drop=True).astype(object)
    out = out.where(out.notna(), None)
    out[ROW] = np.arange(len(out), dtype=np.int64)
    return out.to_dict("records")


def ray_compute(session: RaySession, modality: str, cfg: EncodersConfig, encoder: Encoder, registry_name: str,
                rows_per_block: int | None = None, stats: dict | None = None,
                device: str | None = None) -> Callable[[pd.DataFrame, bool], EncodeResult]:
    """The function :func:`~graphrec.encoders.pipeline.encode_modality` calls to encode missing rows on Ray.

    ``device`` ``cuda...`` gives every actor one GPU (Ray sets its visible device; the actor uses
    ``cuda``); anything else encodes on the actors' CPUs."""
    gpu = device is not None and str(device).startswith("cuda")

    def compute(rows: pd.DataFrame, progress: bool) -> EncodeResult:
        ray = session.ray()
        import ray.data

        n = len(rows)
        per_block = rows_per_block or max(1, min(4 * cfg.batch_size_for(modality), math.ceil(n / (4 * session.num_workers))))
        records = _records(rows)
        num_blocks = math.ceil(n / per_block)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        ctx.enable_operator_progress_bars = progress
        if not progress:  # Ray Data logs every execution at INFO; keep quiet runs quiet
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        t0 = time.perf_counter()
        # from_items builds the blocks in the driver (from_pandas would start a task per block)
        ds = ray.data.from_items(records, override_num_blocks=num_blocks).map_batches(
            RayBatchEncoder, batch_format="pandas", batch_size=per_block,
            fn_constructor_kwargs={"modality": modality, "cfg": cfg.to_dict(), "registry_name": registry_name,
                                   "factory": _REGISTRY.get(registry_name), "fingerprint": encoder.fingerprint(),
                                   "num_threads": cfg.num_threads or 1,
                                   "dtypes": {c: rows[c].dtype for c in rows.columns},
                                   "device": "cuda" if gpu else None},
            compute=ray.data.ActorPoolStrategy(size=min(session.num_workers, num_blocks)), num_cpus=1,
            **({"num_gpus": 1} if gpu else {}))
        x: torch.Tensor | None = None
        mask = torch.zeros(n, dtype=torch.bool)
        status = [""] * n
        notes: dict[int, str] = {}
        seen = 0
        for b in ds.iter_batches(batch_format="numpy", batch_size=None):
            r = b[ROW]
            if x is None:
                x = torch.zeros(n, b["x"].shape[1])
            idx = torch.from_numpy(np.array(r, dtype=np.int64))
            x[idx] = torch.from_numpy(np.array(b["x"], dtype=np.float32))  # a writable copy
            mask[idx] = torch.from_numpy(np.array(b["mask"], dtype=bool))
            for j, k in enumerate(r.tolist()):
                status[k] = str(b["status"][j])
                if b["note"][j]:
                    notes[k] = str(b["note"][j])
            seen += len(r)
        if seen != n or x is None or any(s == "" for s in status):
            raise RuntimeError(f"Ray encoding of {registry_name} returned {seen} rows for {n}")
        if stats is not None:
            stats.setdefault(modality, {}).update(rows=n, blocks=num_blocks, rows_per_block=per_block,
                                                  seconds=round(time.perf_counter() - t0, 3))
        return EncodeResult(x, mask, status, notes)

    return compute


def encode_items_ray(items: pd.DataFrame, cfg: EncodersConfig | None = None, cache_dir: str | Path = "features",
                     num_workers: int = 2, address: str | None = None, progress: bool = True,
                     runtime_env: dict | None = None, rows_per_block: int | None = None,
                     ray_init_kwargs: dict | None = None,
                     device: str | torch.device | None = None) -> tuple[dict[str, ItemFeatures], dict[str, Any]]:
    """:func:`graphrec.encoders.encode_items` with the missing rows encoded on Ray Data.

    Args:
        items: item table (``item_id`` plus the encoders' input columns).
        cfg: encoder config (``engine`` is ignored here: this *is* the Ray engine).
        cache_dir: feature store directory (on the driver).
        num_workers: encoder actors (one CPU each); each loads the model once.
        address: Ray cluster (see :class:`RaySession`); ``None`` = ``RAY_ADDRESS`` or a local instance.
        progress: Ray Data progress bars.
        runtime_env: ``ray.init(runtime_env=...)``.
        rows_per_block: rows per Ray block and ``map_batches`` call (default: 4 x the encoder
            batch size, smaller when there are few rows, so every actor gets work).
        ray_init_kwargs: extra ``ray.init`` arguments when a local instance is started.
        device: ``cuda...`` = one GPU per actor; None / ``cpu`` = CPU actors. The driver's own
            encoder (fingerprints, input keys) never loads a model.

    Returns:
        Exactly what :func:`encode_items` returns, with ``report["engine"]`` describing the Ray run.
    """
    cfg = cfg or EncodersConfig()
    session = RaySession(address, num_workers, runtime_env, ray_init_kwargs)
    stats: dict[str, Any] = {}
    try:
        features, report = encode_items_local(
            items, cfg, cache_dir, progress,
            compute_for=lambda m, enc, name: ray_compute(session, m, cfg, enc, name, rows_per_block, stats,
                                                         None if device is None else str(device)))
        report["engine"] = {"name": "ray", "workers": num_workers, "address": session.address or "local",
                            "started_ray": session.connected, "init_seconds": round(session.seconds_init, 3),
                            "modalities": stats}
    finally:
        with contextlib.suppress(Exception):
            session.close()
    return features, report
