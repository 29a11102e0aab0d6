"""Fits shared between the models of a run: a content-addressed store of fitted baseline scorers.

The same fit is asked for more than once in a run: GraphRec's collaborative backbone is a LightGCN
with the parameters and seed of the tuned LightGCN baseline (``train.backbone_*``; RESULTS.md,
"Baseline budgets"), so the train stage used to fit it twice, once per model (873 s of one core each
on ml1m-mm's default split, 116 epochs, in the 2026-12-03 GraphRec training behind RESULTS.md's z-score
row); and an interrupted tuning re-fitted every configuration it had finished.
:class:`FitCache` stores each fit under a key of everything that decides it, and hands the stored
scorer to the next caller:

* **key**: the baseline's name, its parameters with the defaults filled in, the seed, the data the
  fit reads (ids, train and validation edges, feature fingerprints), the teacher's tensors and the
  fingerprint of the fit's source code. Equal keys run the same computation (the fits are seeded;
  the number of torch threads is not in the key, as nowhere in graphrec: it changes the order of
  float sums, not what is trained). The validator is assumed to be the run's (validation files of
  ``data``, NDCG@20 early stopping), as it is everywhere the train stage fits.
* **files**: ``<root>/<name>-<key>.pt`` (:func:`graphrec.baselines.store.save_scorer`, written
  atomically) and ``<name>-<key>.json`` (what produced it: key, parameters, seed, seconds, process); any
  entry may be deleted at any time (it is fitted again when next asked for).
* **two processes, one fit**: the process fitting an entry holds ``<name>-<key>.lock`` (its pid and
  host); another process on the same machine asking for the entry waits for that fit instead of
  repeating it (the two lanes of a run: the LightGCN baseline's tuning and GraphRec's backbone). A
  lock whose process is gone is stale and taken over; a lock from another host is not waited for.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

import torch

from graphrec.baselines.store import load_scorer, save_scorer
from graphrec.data.report import DataError
from graphrec.signatures import code_fingerprint, fingerprint

#: baselines whose fits are stored (trained ones with small state; the kNN baselines refit in seconds).
CACHED = frozenset({"mf_bpr", "lightgcn", "dropoutnet", "heater", "clcrec", "aldi", "content_cf_reg"})


def _signature(tensors, prefix: str = "") -> str:
    """Short sha256 of ``prefix`` and each tensor's dtype, shape and bytes."""
    h = hashlib.sha256(prefix.encode())
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}:{tuple(t.shape)}:".encode())
        h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()[:16]


def data_signature(data) -> str:
    """Hash of what a baseline fit reads of ``data`` (never the test edges)."""
    ids = json.dumps([data.user_ids, data.item_ids, {k: v.fingerprint for k, v in sorted(data.features.items())}])
    return _signature((data.train, data.val_warm, data.val_cold, data.warm_items, data.cold_val_items), ids)


def teacher_signature(teacher) -> str | None:
    """Hash of a teacher's ``(user, item)`` tensors (None: no teacher)."""
    return None if teacher is None else _signature(teacher)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class FitCache:
    """Stored fits of ``root`` (see the module docstring).

    Args:
        root: the directory of the entries (a run's ``shared_fits/``).
        refresh: fit again instead of reading entries stored before this cache was made (``--force``; an
            entry another process of the same forced run stores meanwhile is still shared).
        poll_s: seconds between checks while another process fits the same entry.
        log: where waiting and reuse are reported.
    """

    def __init__(self, root: str | Path, refresh: bool = False, poll_s: float = 5.0,
                 log: Callable[[str], None] = print) -> None:
        self.root, self.poll_s, self.log = Path(root), poll_s, log
        self.not_before = time.time() if refresh else float("-inf")

    def key(self, name: str, params: dict[str, Any] | None, seed: int, data, teacher=None) -> str:
        """The entry key of fitting baseline ``name`` with ``params`` and ``seed`` on ``data``."""
        from graphrec.baselines import get_baseline
        from graphrec.baselines.common import resolve_params

        spec = get_baseline(name)
        return fingerprint({"name": name, "params": resolve_params(name, spec.defaults, params), "seed": int(seed),
                            "data": data_signature(data), "teacher": teacher_signature(teacher),
                            "code": code_fingerprint([spec.fit.__module__])})

    def paths(self, name: str, key: str) -> tuple[Path, Path, Path]:
        """``(scorer, meta, lock)`` files of an entry."""
        stem = self.root / f"{name}-{key}"
        return stem.with_suffix(".pt"), stem.with_suffix(".json"), stem.with_suffix(".lock")

    def get_or_fit(self, name: str, params: dict[str, Any] | None, seed: int, data, fit: Callable[[], Any],
                   teacher=None) -> tuple[Any, str]:
        """The stored fit of this key, else ``fit()`` stored; returns ``(scorer, how)``.

        ``how``: ``"stored"`` (read), ``"waited"`` (read after another process fitted it) or ``"fitted"``.
        """
        key = self.key(name, params, seed, data, teacher)
        pt, meta, lock = self.paths(name, key)
        self.root.mkdir(parents=True, exist_ok=True)
        waited = False
        while True:
            if pt.is_file() and self._mtime(pt) >= self.not_before:
                scorer = self._read(pt)
                if scorer is not None:
                    how = "waited" if waited else "stored"
                    m = self._meta(meta)
                    self.log(f"  {name}: shared fit {pt.name} ({how}; fitted in {m.get('seconds', '?')} s by "
                             f"{m.get('by', '?')})")
                    return scorer, how
            owner = self._take(lock)
            if owner != "wait":
                break
            if not waited:
                self.log(f"  {name}: another process is fitting {pt.name}; waiting for it")
            waited = True
            time.sleep(self.poll_s)
        try:
            t0 = time.time()
            scorer = fit()
            save_scorer(pt, scorer, meta={"name": name, "key": key})
            meta.write_text(json.dumps({"name": name, "key": key, "params": params, "seed": int(seed),
                                        "seconds": round(time.time() - t0, 1),
                                        "by": f"pid {os.getpid()} on {socket.gethostname()}"},
                                       indent=1, default=str) + "\n")
        finally:
            if owner == "mine":
                lock.unlink(missing_ok=True)
        return scorer, "fitted"

    @staticmethod
    def _meta(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def _read(self, pt: Path):
        try:
            return load_scorer(pt)
        except DataError as exc:  # a truncated entry (the writer is atomic, so only from outside): fit again
            self.log(f"  shared fit {pt.name} unreadable ({exc}); fitting it again")
            pt.unlink(missing_ok=True)
            return None

    def _take(self, lock: Path) -> str:
        """``"mine"`` (this process now holds ``lock``), ``"wait"`` (a live process on this host holds it)
        or ``"foreign"`` (another host's lock: fit without waiting, and leave its lock alone)."""
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                held = self._meta(lock)
                if held.get("host") not in (None, me["host"]):
                    return "foreign"
                pid = held.get("pid")
                if pid is None and time.time() - self._mtime(lock) < 10:  # being written right now
                    return "wait"
                if pid is not None and _pid_alive(int(pid)):
                    return "wait"
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            return "mine"
        return "wait"

    @staticmethod
    def _mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0
