"""Stage stamps: a stage (or one model of the train stage) reruns exactly when what it depends on changes.

A piece of work writes ``stage.json`` in its output directory when it *finishes*, holding a
fingerprint of its inputs (config sections, signatures of the files it reads, and a code
fingerprint of the graphrec modules it runs) and the signatures of the output files it vouches
for (e.g. ``checkpoint.pt``). It is up to date when the stamp's inputs equal the current ones
*and* every recorded output still has the recorded bytes. While it runs, ``stage.json`` is
absent and ``stage.partial.json`` names the inputs being worked on, so an interrupted run is
never taken for a finished one, and a rerun with the same inputs can resume (``resume=True``
is passed to the work) while a rerun with other inputs starts clean.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from graphrec.paths import STAGE_STAMP
from graphrec.signatures import code_fingerprint, file_signature, fingerprint

STAMP = STAGE_STAMP
PARTIAL = "stage.partial.json"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)


def read_stamp(out_dir: Path) -> dict | None:
    p = Path(out_dir) / STAMP
    try:
        return json.loads(p.read_text()) if p.exists() else None
    except json.JSONDecodeError:
        return None


def stamp_is_current(out_dir: Path, key: str) -> bool:
    """True when ``out_dir`` holds a finished stamp for ``key`` whose outputs are unchanged."""
    stamp = read_stamp(out_dir)
    if not stamp or stamp.get("inputs") != key:
        return False
    for rel, sig in stamp.get("outputs", {}).items():
        p = Path(out_dir) / rel
        if not p.is_file() or file_signature(p) != sig:
            return False
    return True


def outputs_verified(out_dir: Path) -> tuple[bool, str]:
    """Whether the outputs in ``out_dir`` are the ones its finished stamp vouches for (and why not)."""
    stamp = read_stamp(out_dir)
    if stamp is None:
        partial = (Path(out_dir) / PARTIAL).exists()
        return False, ("its training was interrupted or is still running" if partial
                       else f"no {STAMP} (not written by a finished graphrec stage)")
    for rel, sig in stamp.get("outputs", {}).items():
        p = Path(out_dir) / rel
        if not p.is_file():
            return False, f"{p} is missing"
        if file_signature(p) != sig:
            return False, f"{p} changed after the stage that wrote it finished"
    return True, "ok"


def clean_tmp(out_dir: Path) -> int:
    """Remove stray ``*.tmp`` files left by an interrupted atomic write; returns how many."""
    n = 0
    for p in Path(out_dir).glob("*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def run_stage(name: str, out_dir: Path, inputs: dict[str, Any], work: Callable[..., dict | None],
              force: bool = False, log: Callable[[str], None] = print, code: Iterable[str] = (),
              outputs: Iterable[str] = (), resumable: bool = False) -> dict:
    """Run ``work`` unless ``out_dir/stage.json`` records the same inputs and unchanged outputs.

    Args:
        name: label for logs.
        out_dir: the directory the work writes (created).
        inputs: JSON-able description of everything the work depends on.
        work: ``work()`` (or ``work(resume=bool)`` when ``resumable``) -> summary dict.
        force: run even when up to date.
        code: graphrec modules the work runs; their source fingerprint joins the inputs.
        outputs: files (relative to ``out_dir``) whose signatures the stamp records.
        resumable: pass ``resume=True`` when an interrupted run of the same inputs left
            ``stage.partial.json`` behind.

    Returns:
        the stamp (``stage``, ``inputs``, ``code``, ``seconds``, ``summary``, ``outputs``, ``finished``).
    """
    out_dir = Path(out_dir)
    code_fp = code_fingerprint(code) if code else None
    key = fingerprint({"inputs": inputs, "code": code_fp})
    if not force and stamp_is_current(out_dir, key):
        log(f"[{name}] up to date ({out_dir})")
        return read_stamp(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / PARTIAL
    resume = False
    if partial.exists():
        try:
            resume = json.loads(partial.read_text()).get("inputs") == key and not force
        except json.JSONDecodeError:
            resume = False
    (out_dir / STAMP).unlink(missing_ok=True)
    clean_tmp(out_dir)
    _write_json(partial, {"stage": name, "inputs": key, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    t0 = time.time()
    log(f"[{name}] {'resuming' if resume and resumable else 'running'} -> {out_dir}")
    summary = (work(resume=resume) if resumable else work()) or {}
    stamp = {"stage": name, "inputs": key, "code": code_fp, "seconds": round(time.time() - t0, 2), "summary": summary,
             "outputs": {rel: file_signature(out_dir / rel) for rel in outputs},
             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    _write_json(out_dir / STAMP, stamp)
    partial.unlink(missing_ok=True)
    return stamp
