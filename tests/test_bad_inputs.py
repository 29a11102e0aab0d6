"""Every bad input gets a clear answer (issue 17): a catalogue of bad inputs and faults.

Each :class:`Case` makes one bad input on a tiny MovieLens-style generic data set (fake
deterministic encoders), runs the real CLI entry point ``graphrec.cli.main`` in this process, and
expects an exit code with message fragments (exit 2 naming the file, row, field or key; never a
traceback) or, for what preparation and encoding skip, a count in their report. The faults of a
killed training run through a subprocess (``tests/fault_cli.py``) that kills itself with SIGKILL
at a fixed point of the training loop.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import fakes  # noqa: F401  (registers fake_text / fake_image)
from mlstyle import write_movielens_style

from graphrec.cli import main
from graphrec.data.report import DataError

TESTS = Path(__file__).resolve().parent
TEMPLATE = "Title: {title}. Year: {year}. Genres: {genres}."


# --------------------------------------------------------------------------- workspace
def config_dict(root: Path, data_root: Path | None = None) -> dict:
    """The run config of a workspace: generic data (ratings 1-5, threshold 4, timestamps, posters)."""
    return {
        "run_dir": str(root / "run"),
        "data": {"source": str(data_root or root / "data"), "format": "generic", "interactions_file": "ratings.csv",
                 "items_file": "movies.csv", "user_col": "userId", "item_col": "movieId", "rating_col": "rating",
                 "rating_threshold": 4.0, "timestamp_col": "timestamp", "text_cols": ["title", "year"],
                 "title_col": "title", "genres_col": "genres", "image_col": "poster"},
        "encoders": {"enabled": ["text", "image"], "num_workers": 0,
                     "text": {"name": "fake_text", "template": TEMPLATE},
                     "image": {"name": "fake_image", "max_pixels": 20000}},
        "model": {"modalities": ["text", "image"], "dim": 16, "proj_hidden": 16},
        "train": {"epochs": 2, "batch_size": 256, "num_negatives": 16, "tensorboard": False, "warm_refine_epochs": 1,
                  "num_threads": 1, "patience": 10},
        "suite": {"seeds": [0], "oracle": False, "baselines": False},
        "eval": {"bootstrap_samples": 10},
    }


def make_workspace(root: Path, data_root: Path | None = None, **sections) -> Path:
    """Data (unless ``data_root`` is shared) and ``config.yaml`` under ``root``; returns the config path."""
    root.mkdir(parents=True, exist_ok=True)
    if data_root is None:
        write_movielens_style(root / "data", images=True)
    cfg = config_dict(root, data_root)
    for sec, vals in sections.items():
        cfg[sec] = {**cfg.get(sec, {}), **vals} if isinstance(vals, dict) else vals
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return root / "config.yaml"


@dataclass
class Result:
    rc: int
    out: str
    err: str


def cli(*argv: str) -> Result:
    """``graphrec <argv>`` in this process; exit code and captured output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    return Result(rc, out.getvalue(), err.getvalue())


def stage(cmd: str, root: Path, *extra: str) -> Result:
    flags = ["--no-progress"] if cmd in ("run", "prepare", "split", "encode", "train", "evaluate") else []
    return cli(cmd, "--config", str(root / "config.yaml"), *flags, *extra)


def ok(res: Result) -> Result:
    assert res.rc == 0, res.err[-3000:]
    return res


# --------------------------------------------------------------------------- the trained run
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished run (GraphRec, the warm oracle, the popularity baseline), evaluated."""
    root = tmp_path_factory.mktemp("trained")
    make_workspace(root, suite={"oracle": True, "baselines": True}, baselines={"names": ["popularity"]})
    ok(stage("run", root))
    return root


def copy_of(trained: Path, dest: Path) -> Path:
    """A copy of the trained run (same raw data); returns its workspace root."""
    shutil.copytree(trained / "run", dest / "run")
    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    cfg["run_dir"] = str(dest / "run")
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


# --------------------------------------------------------------------------- catalogue helpers
def rewrite(path: Path, fn: Callable[[list[str]], list[str]]) -> None:
    path.write_text("\n".join(fn(path.read_text().splitlines())) + "\n")


def set_cell(path: Path, line: int, col: str, value: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[line - 2, col] = value
    df.to_csv(path, index=False)


def non_utf8(path: Path, line: int) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b"and", b"\xe9t\xe9", 1)
    path.write_bytes(b"\n".join(lines))


def new_items_csv(root: Path, text: str) -> list[str]:
    return new_items_bytes(root, text.encode())


def new_items_bytes(root: Path, data: bytes) -> list[str]:
    (root / "new.csv").write_bytes(data)
    return [str(root / "new.csv")]


def bad_image(root: Path, kind: str) -> str:
    """An image file of ``kind`` (text, truncated, huge, rgba, cmyk) under ``root``; its path."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    p = root / f"{kind}.jpg"
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8), "RGB")
    if kind == "text":
        p.write_text("this is a text file, not a JPEG\n")
    elif kind == "truncated":
        img.save(p, quality=90)
        p.write_bytes(p.read_bytes()[:200])
    elif kind == "huge":
        Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8), "RGB").save(p)  # > max_pixels 20000
    elif kind == "rgba":
        img.convert("RGBA").save(p.with_suffix(".png"))
        p = p.with_suffix(".png")
    elif kind == "cmyk":
        img.convert("CMYK").save(p)
    return str(p)


def with_posters(root: Path, kinds: dict[int, str], prepare: bool = False) -> None:
    """Replace the posters of movies (by movieId) with bad images (then prepare the data)."""
    movies = root / "data" / "movies.csv"
    df = pd.read_csv(movies, dtype=str, keep_default_na=False)
    for mid, kind in kinds.items():
        df.loc[df.movieId == str(mid), "poster"] = bad_image(root / "data" / "bad", kind)
    df.to_csv(movies, index=False)
    if prepare:
        ok(stage("prepare", root))


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the command, and the expected answer.

    ``setup(root) -> extra args`` prepares the workspace ``root`` (``needs="raw"``: fresh data and
    config; ``"trained"``: a copy of the trained run; ``"prepared"``: raw data already prepared
    and split). ``fragments`` must all appear in the error output (``{root}`` is the workspace);
    ``counted`` = ``(report file under run/, dotted key, count)`` for what is skipped and counted.
    ``untouched``: the run directory must not exist afterwards (checked before any work).
    """

    name: str
    command: str
    args: tuple[str, ...] = ()
    expect: int = 2
    fragments: tuple[str, ...] = ()
    setup: Callable[[Path], list[str] | None] | None = None
    needs: str = "raw"
    counted: tuple[str, str, int] | None = None
    untouched: bool = False


D = lambda r: r / "data"  # noqa: E731
RATINGS, MOVIES = "{root}/data/ratings.csv", "{root}/data/movies.csv"

CASES = [
    # ---- raw files: exit 2 naming file / row / field
    Case("empty interactions file", "prepare", setup=lambda r: (D(r) / "ratings.csv").write_text(""),
         fragments=(RATINGS, "empty file (0 bytes)")),
    Case("empty items file", "prepare", setup=lambda r: (D(r) / "movies.csv").write_text(""),
         fragments=(MOVIES, "empty file (0 bytes)")),
    Case("header-only interactions", "prepare", setup=lambda r: rewrite(D(r) / "ratings.csv", lambda ls: ls[:1]),
         fragments=(RATINGS, "header but no rows")),
    Case("header-only items", "run", setup=lambda r: rewrite(D(r) / "movies.csv", lambda ls: ls[:1]),
         fragments=(MOVIES, "header but no rows")),
    Case("blank first line (no header)", "prepare", setup=lambda r: (D(r) / "movies.csv").write_text("\n\n"),
         fragments=(MOVIES, "no header row")),
    Case("rating threshold leaves nothing", "run", ("--set", "data.rating_threshold=9"),
         fragments=(RATINGS, "field 'rating'", "data.rating_threshold=9", "from 1 to 5")),
    Case("every item unknown to the interactions", "prepare",
         setup=lambda r: set_cells_all(D(r) / "ratings.csv", "movieId", "nope"),
         fragments=(RATINGS, "no interactions left", "interactions_with_unknown_item=321")),
    Case("non-UTF-8 items file", "prepare", setup=lambda r: non_utf8(D(r) / "movies.csv", 6),
         fragments=(MOVIES, "row 6", "field 'title'", "not valid UTF-8", "byte 0xe9")),
    Case("non-UTF-8 interactions file", "prepare",
         setup=lambda r: (D(r) / "ratings.csv").write_bytes((D(r) / "ratings.csv").read_bytes() + b"7,3\xff,4,978300000\n"),
         fragments=(RATINGS, "row 483", "field 'movieId'", "not valid UTF-8")),
    Case("ragged CSV row", "prepare", setup=lambda r: rewrite(D(r) / "movies.csv", lambda ls: ls[:4] + [ls[4] + ",extra"] + ls[5:]),
         fragments=(MOVIES, "row 5", "cannot be parsed as CSV")),
    Case("missing interactions column", "prepare",
         setup=lambda r: rewrite(D(r) / "ratings.csv", lambda ls: [ls[0].replace("userId", "user")] + ls[1:]),
         fragments=(RATINGS, "missing column", "field 'userId'")),
    Case("missing items column", "prepare",
         setup=lambda r: rewrite(D(r) / "movies.csv", lambda ls: [ls[0].replace("year", "yr")] + ls[1:]),
         fragments=(MOVIES, "missing column", "field 'year'")),
    Case("empty user id", "prepare", setup=lambda r: set_cell(D(r) / "ratings.csv", 5, "userId", ""),
         fragments=(RATINGS, "row 5", "field 'userId'", "empty id")),
    Case("rating not a number", "prepare", setup=lambda r: set_cell(D(r) / "ratings.csv", 7, "rating", "five"),
         fragments=(RATINGS, "row 7", "field 'rating'", "'five' is not a number")),
    Case("timestamp not a number", "prepare", setup=lambda r: set_cell(D(r) / "ratings.csv", 3, "timestamp", "monday"),
         fragments=(RATINGS, "row 3", "field 'timestamp'")),
    Case("duplicate item id", "prepare", setup=lambda r: set_cell(D(r) / "movies.csv", 4, "movieId", "1"),
         fragments=(MOVIES, "row 2", "field 'movieId'", "duplicate item id '1'")),
    Case("empty item id", "prepare", setup=lambda r: set_cell(D(r) / "movies.csv", 9, "movieId", ""),
         fragments=(MOVIES, "row 9", "field 'movieId'", "empty item id")),
    Case("items file is a directory", "prepare", ("--set", "data.items_file=posters"),
         fragments=("{root}/data/posters", "is a directory")),
    Case("data folder missing", "prepare", ("--set", "data.source={root}/nowhere"),
         fragments=("{root}/nowhere/ratings.csv", "file not found")),
    # ---- skipped and counted
    Case("interaction naming an unknown item", "prepare", expect=0,
         counted=("prepared/prep_report.json", "skipped.interactions_with_unknown_item", 1)),
    Case("ratings below the threshold", "prepare", expect=0,
         counted=("prepared/prep_report.json", "skipped.below_rating_threshold", 160)),
    Case("duplicate interactions", "prepare", expect=0,
         setup=lambda r: rewrite(D(r) / "ratings.csv", lambda ls: ls + ls[1:3]),
         counted=("prepared/prep_report.json", "skipped.duplicate_interactions", 2)),
    Case("poster file missing", "prepare", expect=0, setup=lambda r: (D(r) / "posters" / "7.jpg").unlink(),
         counted=("prepared/prep_report.json", "flagged.image_file_not_found", 1)),
    Case("item with neither text nor image", "prepare", expect=0,
         setup=lambda r: [set_cell(D(r) / "movies.csv", 3, c, "") for c in ("title", "year", "genres", "poster")],
         counted=("prepared/prep_report.json", "skipped.items_without_text_or_image", 1)),
    Case("unreadable posters (a text file, a truncated JPEG)", "encode", expect=0,
         setup=lambda r: with_posters(r, {2: "text", 5: "truncated"}, prepare=True),
         counted=("features/encode_report.json", "modalities.image.unreadable", 2)),
    Case("CMYK and RGBA posters", "encode", expect=0, setup=lambda r: with_posters(r, {3: "cmyk", 4: "rgba"}, prepare=True),
         counted=("features/encode_report.json", "modalities.image.converted", 2)),
    Case("huge poster", "encode", expect=0, setup=lambda r: with_posters(r, {6: "huge"}, prepare=True),
         counted=("features/encode_report.json", "modalities.image.counts.too_large", 1)),
    # ---- configuration: exit 2 naming the key, before any work
    Case("val_metric unknown", "train", ("--set", "train.val_metric=bogus@20"), untouched=True,
         fragments=("train.val_metric", "'bogus@20'", "ndcg")),
    Case("val_metric without K", "train", ("--set", "train.val_metric=ndcg"), untouched=True,
         fragments=("train.val_metric",)),
    Case("val_setting unknown", "run", ("--set", "train.val_setting=lukewarm"), untouched=True,
         fragments=("train.val_setting", "'lukewarm'")),
    Case("no cold items but cold validation", "split", ("--set", "split.cold_item_frac=0.0"), untouched=True,
         fragments=("split.cold_item_frac", "train.val_setting='cold'")),
    Case("no warm validation but warm early stopping", "run",
         ("--set", "split.warm_val_frac=0.0", "--set", "train.val_setting=warm"), untouched=True,
         fragments=("split.warm_val_frac",)),
    Case("main metric K not in eval.ks", "evaluate", ("--set", "eval.ks=[10]", "--set", "eval.main_metric=ndcg@20"),
         untouched=True, fragments=("eval.main_metric", "K=20", "[10]")),
    Case("unknown key on the command line", "train", ("--set", "train.epochz=3"), untouched=True,
         fragments=("unknown config key train.epochz",)),
    Case("wrong type on the command line", "train", ("--set", "train.epochs=abc"), untouched=True,
         fragments=("train.epochs", "expected an integer")),
    Case("value out of range", "train", ("--set", "split.cold_item_frac=1.5"), untouched=True,
         fragments=("split.cold_item_frac", "[0, 1)")),
    Case("unbalanced brackets on the command line", "train", ("--set", "data.text_cols=[title, year"), untouched=True,
         fragments=("--set data.text_cols", "not a valid value")),
    Case("--set without =", "train", ("--set", "train.epochs"), untouched=True, fragments=("key=value",)),
    Case("template naming a missing column", "run", ("--set", "encoders.text.template=About {plot}."), untouched=True,
         fragments=("encoders.text.template", "{plot}", "{title}", "{year}", "Template fields")),
    Case("malformed template", "run", ("--set", "encoders.text.template={title"), untouched=True,
         fragments=("text.template", "malformed")),
    Case("unknown data format", "prepare", ("--set", "data.format=parquet"), untouched=True,
         fragments=("data.format", "'parquet'")),
    Case("unknown modality", "encode", ("--set", "encoders.enabled=[text, audio]"), untouched=True,
         fragments=("enabled", "'audio'")),
    Case("unknown encoder", "run", ("--set", "encoders.text.name=nope"), untouched=True,
         fragments=("encoders.text.name", "unknown encoder 'nope'")),
    Case("config file missing", "train", setup=lambda r: (r / "config.yaml").unlink(),
         fragments=("config file not found", "{root}/config.yaml")),
    Case("config file not YAML", "train", setup=lambda r: (r / "config.yaml").write_text("train: [epochs: 2\n"),
         fragments=("{root}/config.yaml", "not valid YAML")),
    Case("unknown key in the config file", "train",
         setup=lambda r: (r / "config.yaml").write_text((r / "config.yaml").read_text() + "trian: {epochs: 2}\n"),
         fragments=("{root}/config.yaml", "unknown config key trian")),
    # ---- the run directory
    Case("run_dir is a file", "prepare", setup=lambda r: (r / "run").write_text("x"),
         fragments=("run_dir", "{root}/run is a file")),
    Case("run_dir below a file", "prepare", ("--set", "run_dir={root}/config.yaml/run"),
         fragments=("run_dir", "{root}/config.yaml is a file")),
    Case("run_dir under /proc", "prepare", ("--set", "run_dir=/proc/graphrec-test-run"),
         fragments=("run_dir", "cannot write", "/proc/graphrec-test-run")),
    Case("run_dir that nobody may create (/sys)", "prepare", ("--set", "run_dir=/sys/graphrec-test-run"),
         fragments=("run_dir", "cannot write", "/sys/graphrec-test-run")),
    # ---- stages out of order, degenerate splits
    Case("split before prepare", "split", fragments=("{root}/run/prepared/interactions.csv", "graphrec prepare")),
    Case("train before split", "train", setup=lambda r: ok(stage("prepare", r)) and None,
         fragments=("{root}/run/split", "graphrec split")),
    Case("almost every item cold", "run", ("--set", "split.cold_item_frac=0.99"),
         fragments=("{root}/run/prepared/interactions.csv", "split.cold_item_frac=0.99", "at least 2 warm items")),
    Case("too few items for a cold split", "run", ("--set", "split.cold_item_frac=0.01"),
         fragments=("no cold-validation items", "split.cold_item_frac=0.01")),
    Case("split file naming an item the items table lacks", "train", needs="prepared",
         setup=lambda r: rewrite(r / "run/split/train.csv", lambda ls: ls + ["1,zz9"]),
         fragments=("{root}/run/split/train.csv", "field 'item_id'", "'zz9' is not in the prepared items table")),
    Case("split.json not JSON", "train", needs="prepared", setup=lambda r: (r / "run/split/split.json").write_text("{"),
         fragments=("{root}/run/split/split.json", "not valid JSON")),
    Case("sequence user view without timestamps", "run",
         ("--set", "data.timestamp_col=null", "--set", "train.user_view=sequence"), untouched=True,
         fragments=("train.user_view", "data.timestamp_col")),
    Case("image-only run without an image column", "run",
         ("--set", "data.image_col=null", "--set", "encoders.enabled=[image]", "--set", "model.modalities=[image]"),
         fragments=("encoders.enabled", "data.image_col is not set", "encode_report.json")),
    Case("a last batch of one interaction", "train", expect=0, needs="prepared",
         setup=lambda r: ["--set", f"train.batch_size={len(pd.read_csv(r / 'run' / 'split' / 'train.csv')) - 1}"]),
    # ---- a trained run: recommend, checkpoints
    Case("recommend -k 0", "recommend", ("--user", "1", "-k", "0"), needs="trained", fragments=("-k", "must be >= 1")),
    Case("recommend -k -5", "recommend", ("--user", "1", "-k", "-5"), needs="trained", fragments=("must be >= 1",)),
    Case("recommend -k abc", "recommend", ("--user", "1", "-k", "abc"), needs="trained", fragments=("whole number",)),
    Case("recommend an unknown user", "recommend", ("--user", "nobody"), needs="trained",
         fragments=("unknown user id 'nobody'",)),
    Case("recommend a negative exposure penalty", "recommend", ("--user", "1", "--exposure-penalty", "-1"),
         needs="trained", fragments=("exposure",)),
    Case("recommend before training", "recommend", ("--user", "1"), fragments=("{root}/run/config.yaml", "graphrec train")),
    Case("corrupt checkpoint (recommend)", "recommend", ("--user", "1"), needs="trained",
         setup=lambda r: (r / "run/model/checkpoint.pt").write_bytes(b"garbage" * 10),
         fragments=("{root}/run/model/checkpoint.pt", "changed after")),
    Case("truncated checkpoint (evaluate)", "evaluate", ("--force",), needs="trained",
         setup=lambda r: truncate(r / "run/model/checkpoint.pt"),
         fragments=("{root}/run/model/checkpoint.pt", "not a finished training")),
    Case("empty checkpoint (recommend)", "recommend", ("--user", "1"), needs="trained",
         setup=lambda r: (r / "run/model/checkpoint.pt").write_bytes(b""),
         fragments=("{root}/run/model/checkpoint.pt",)),
    Case("checkpoint removed", "recommend", ("--user", "1"), needs="trained",
         setup=lambda r: (r / "run/model/checkpoint.pt").unlink(),
         fragments=("{root}/run/model/checkpoint.pt", "no trained model")),
    Case("corrupt baseline scorer", "evaluate", ("--force",), needs="trained",
         setup=lambda r: (r / "run/baselines/popularity/scorer.pt").write_bytes(b"garbage"),
         fragments=("{root}/run/baselines/popularity/scorer.pt", "not a finished training")),
    # ---- new items
    Case("new item with an unknown column", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,title,colour\nn1,A film,red\n"),
         fragments=("{root}/new.csv", "field 'colour'", "unknown column", "'year'")),
    Case("new item already in the catalogue", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,title\nn1,A\n3,B\n"),
         fragments=("{root}/new.csv", "row 3", "field 'item_id'", "already in the catalogue")),
    Case("new items with one id twice", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,title\nn1,A\nn1,B\n"),
         fragments=("{root}/new.csv", "field 'item_id'", "duplicate item id 'n1'")),
    Case("new item with an empty id", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,title\nn1,A\n,B\n"),
         fragments=("{root}/new.csv", "row 3", "field 'item_id'")),
    Case("new item with nothing", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,title,year\nn1,A,2020\nn2,,\n"),
         fragments=("{root}/new.csv", "row 3", "neither text nor an image")),
    Case("new item whose only content is a text file named .jpg", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, f"item_id,image_path\nn1,{bad_image(r / 'img', 'text')}\n"),
         fragments=("{root}/new.csv", "row 2", "field 'image_path'", "no usable content")),
    Case("new item whose only content is a truncated JPEG", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, f"item_id,poster\nn1,{bad_image(r / 'img', 'truncated')}\n"),
         fragments=("{root}/new.csv", "row 2", "field 'image_path'", "no usable content")),
    Case("new item whose only content is a huge image", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, f"item_id,image_path\nn1,{bad_image(r / 'img', 'huge')}\n"),
         fragments=("{root}/new.csv", "row 2", "no usable content", "max_pixels")),
    Case("new item image missing", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,title,image_path\nn1,A,nope.jpg\n"),
         fragments=("{root}/new.csv", "row 2", "field 'image_path'", "not found")),
    Case("new items file not UTF-8", "add-items", needs="trained",
         setup=lambda r: new_items_bytes(r, b"item_id,title\nn1,caf\xe9\n"),
         fragments=("{root}/new.csv", "row 2", "field 'title'", "UTF-8")),
    Case("new items file empty", "add-items", needs="trained", setup=lambda r: new_items_csv(r, ""),
         fragments=("{root}/new.csv", "empty file")),
    Case("new items file header only", "add-items", needs="trained", setup=lambda r: new_items_csv(r, "item_id,title\n"),
         fragments=("{root}/new.csv", "no new items")),
    Case("new items file missing", "add-items", ("{root}/nope.csv",), needs="trained",
         fragments=("{root}/nope.csv", "file not found")),
    Case("new items with only an id", "add-items", needs="trained", setup=lambda r: new_items_csv(r, "item_id\nn1\n"),
         fragments=("{root}/new.csv", "needs content columns")),
    Case("new items naming one field twice", "add-items", needs="trained",
         setup=lambda r: new_items_csv(r, "item_id,movieId,title\nn1,n1,A\n"),
         fragments=("{root}/new.csv", "both give the field")),
]


def set_cells_all(path: Path, col: str, value: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df[col] = value
    df.to_csv(path, index=False)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _dig(obj: dict, dotted: str):
    for k in dotted.split("."):
        obj = obj[k]
    return obj


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, trained):
    root = tmp_path / "ws"
    if case.needs == "trained":
        copy_of(trained, root)
    else:
        make_workspace(root)
        if case.needs == "prepared":
            ok(stage("prepare", root))
            ok(stage("split", root))
    made = case.setup(root) if case.setup else None
    extra = made if isinstance(made, list) and all(isinstance(a, str) for a in made) else []
    args = [a.replace("{root}", str(root)) for a in case.args]
    res = stage(case.command, root, *args, *extra)
    assert res.rc == case.expect, f"exit {res.rc}, expected {case.expect}:\n{res.err[-3000:]}"
    assert "Traceback" not in res.err
    for frag in case.fragments:
        assert frag.replace("{root}", str(root)) in res.err, f"{frag!r} not in:\n{res.err[-3000:]}"
    if case.counted:
        rel, key, n = case.counted
        assert _dig(json.loads((root / "run" / rel).read_text()), key) == n
    if case.untouched:
        assert not (root / "run").exists(), "the configuration was not checked before any work"


def test_read_only_run_dir(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    root = tmp_path / "ws"
    make_workspace(root)
    (root / "run").mkdir()
    os.chmod(root / "run", 0o500)
    try:
        res = stage("prepare", root)
    finally:
        os.chmod(root / "run", 0o700)
    assert res.rc == 2 and "run_dir" in res.err and str(root / "run") in res.err


def test_set_takes_braces_and_colons_as_text(tmp_path):
    """``--set`` values for string keys need no YAML quoting (a template with braces and parentheses)."""
    root = tmp_path / "ws"
    make_workspace(root)
    res = ok(stage("config", root, "--set", "encoders.text.template={title} ({year})", "--set", "data.title_col=title"))
    assert yaml.safe_load(res.out)["encoders"]["text"]["template"] == "{title} ({year})"
    res = ok(stage("config", root, "--set", "encoders.text.template={title}: {genres}"))
    assert yaml.safe_load(res.out)["encoders"]["text"]["template"] == "{title}: {genres}"
    res = ok(stage("config", root, "--set", "data.text_cols=[title, year]", "--set", "train.lr=0.01"))
    cfg = yaml.safe_load(res.out)
    assert cfg["data"]["text_cols"] == ["title", "year"] and cfg["train"]["lr"] == 0.01


def test_broken_checkpoint_files_name_the_path(tmp_path, trained):
    """``load_checkpoint`` on an empty, truncated or foreign file: a DataError naming it."""
    from graphrec.training.checkpoint import load_checkpoint

    good = (trained / "run" / "model" / "checkpoint.pt").read_bytes()
    for name, data in [("empty.pt", b""), ("truncated.pt", good[: len(good) // 3]), ("garbage.pt", b"\x80\x04garbage"),
                       ("foreign.pt", None)]:
        p = tmp_path / name
        if data is None:
            torch.save({"weights": torch.zeros(2)}, p)
        else:
            p.write_bytes(data)
        with pytest.raises(DataError, match=str(p)):
            load_checkpoint(p)
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


# --------------------------------------------------------------------------- bug 5: eval.ks without 20
def test_eval_ks_without_20_works_end_to_end(tmp_path, trained):
    root = copy_of(trained, tmp_path / "ws")
    for _ in range(2):  # and the rerun is up to date, not the same crash
        res = ok(stage("evaluate", root, "--set", "eval.ks=[5, 10]"))
    assert "[evaluate] up to date" in res.out and "recall@10=" in res.out and "recall@50" not in res.out
    ev = root / "run" / "evaluation"
    metrics = json.loads((ev / "metrics.json").read_text())
    assert set(metrics["graphrec"]["cold"]) >= {"recall@5", "ndcg@10"} and "ndcg@50" not in metrics["graphrec"]["cold"]
    report = (ev / "report.md").read_text()
    assert "| model | recall@10 | ndcg@10 |" in report and "## Warm oracle" in report
    assert (ev / "recall_at_10.png").is_file() and (ev / "fairness.json").is_file()
    res = ok(stage("evaluate", root, "--set", "eval.ks=[5]", "--set", "eval.beyond_k=5"))  # nothing at 20 at all
    assert "ndcg@20" not in json.loads((ev / "metrics.json").read_text())["graphrec"]["cold"]
    assert "| model | recall@5 | ndcg@5 |" in (ev / "report.md").read_text()


# --------------------------------------------------------------------------- bug 3: the whole history is excluded
def test_recommend_excludes_every_rated_item(tmp_path, trained):
    from graphrec.serve import Recommender

    ratings = pd.read_csv(trained / "data" / "ratings.csv", dtype=str)
    hist = pd.read_csv(trained / "run" / "prepared" / "history.csv", dtype=str)
    low = ratings[ratings.rating.astype(int) < 4]
    assert len(hist) == len(ratings) - 1  # every rated catalogue item (one rating names an unknown movie)
    rec = Recommender.load(trained / "run", model="single")
    n = len(rec.index)
    for user in ("1", "2", "3"):
        mine = set(ratings.movieId[ratings.userId == user])
        got = set(rec.recommend(user, k=n)["item_id"])
        assert not got & mine and set(low.movieId[low.userId == user]) <= set(rec.index.item_ids)
        with_seen = set(rec.recommend(user, k=n, exclude_seen=False)["item_id"])
        assert set(low.movieId[low.userId == user]) <= with_seen
    res = ok(stage("recommend", trained, "--user", "1", "-k", str(n)))
    shown = {line.split("(item ")[1].split(",")[0] for line in res.out.splitlines() if "(item " in line}
    assert shown and not shown & set(ratings.movieId[ratings.userId == "1"])
    res = ok(stage("recommend", trained, "--user", "1", "-k", str(n), "--include-seen"))
    assert set(low.movieId[low.userId == "1"]) <= {line.split("(item ")[1].split(",")[0] for line in res.out.splitlines()
                                                   if "(item " in line}


# --------------------------------------------------------------------------- bugs 2 and 4: new items
def _catalogue_row(trained: Path, movie: str) -> pd.Series:
    items = pd.read_csv(trained / "run" / "prepared" / "items.csv", dtype=str, keep_default_na=False)
    return items[items.item_id == movie].iloc[0]


@pytest.mark.parametrize("names", ["raw", "prepared"])
def test_added_item_is_prepared_and_embedded_as_in_the_catalogue(tmp_path, trained, names):
    """A catalogue row added again under a new id: same prepared row, same text, same features and embedding."""
    from graphrec.encoders.text import build_texts
    from graphrec.serve import Recommender

    root = copy_of(trained, tmp_path / "ws")
    movies = pd.read_csv(trained / "data" / "movies.csv", dtype=str, keep_default_na=False)
    raw = movies[movies.movieId == "5"].copy()
    raw["movieId"] = "new5"
    raw["poster"] = str(trained / "data" / raw["poster"].iloc[0])
    if names == "prepared":
        raw = raw.rename(columns={"movieId": "item_id", "poster": "image_path"})
    raw.to_csv(root / "new.csv", index=False)
    res = ok(stage("add-items", root, str(root / "new.csv")))
    assert "added 1 items" in res.out
    rec = Recommender.load(root / "run", model="single")
    cat, new = _catalogue_row(trained, "5"), rec.items.loc["new5"]
    for col in cat.index.drop("item_id"):
        assert str(new[col]) == str(cat[col]), col
    tcat = build_texts(pd.DataFrame([cat]), TEMPLATE)[0][0]
    assert build_texts(pd.DataFrame([new]), TEMPLATE)[0][0] == tcat
    assert tcat.startswith("Title: ") and tcat.count("Genres:") == 1
    # the added item's vector is the one the model gives the catalogue row's content
    m = rec.model
    i = m.item_ids.index("5")
    emb = m.embed_items({k: (m.features[k][0][i:i + 1], m.features[k][1][i:i + 1]) for k in m.modalities})
    pos = rec.index.position("new5")
    torch.testing.assert_close(rec.index.emb[pos, : emb.shape[1]], emb[0], rtol=1e-6, atol=1e-6)


def test_added_item_with_an_unreadable_image_keeps_its_text_and_says_so(tmp_path, trained):
    root = copy_of(trained, tmp_path / "ws")
    bad = bad_image(root / "img", "truncated")
    new_items_csv(root, f"item_id,title,year,genres,image_path\nn1,Night Harbour (2025),2025,Horror,{bad}\n")
    res = ok(stage("add-items", root, str(root / "new.csv")))
    assert "added 1 items" in res.out
    assert "row 2" in res.err and "n1" in res.err and bad in res.err and "embedded from its other content" in res.err


def test_ml1m_mm_new_items_are_prepared_as_the_catalogue(tmp_path):
    """ml1m-mm-format rows: add-items' preparation equals ``data_prep.ml1m_mm.prepare`` row for row."""
    from PIL import Image

    from data_prep.ml1m_mm import ITEM_COLS, prepare, prepare_new_items
    from graphrec.data.config import DataConfig
    from graphrec.encoders.template import DEFAULT_TEMPLATE
    from graphrec.encoders.text import build_texts

    src = tmp_path / "ml1m"
    (src / "images").mkdir(parents=True)
    items = pd.DataFrame([["1", "Toy Story (1995)", "Animation|Children's|Comedy", "1995.0", "Toys come alive.", "John Lasseter",
                           "Tom Hanks, Tim Allen", "1"],
                          ["2", "Heat (1995)", "Action|Crime", "1995", "", "Michael Mann", "Al Pacino", "0"]], columns=ITEM_COLS)
    items.to_csv(src / "items.csv", index=False)
    Image.new("RGB", (20, 30), (10, 200, 30)).save(src / "images" / "1.jpg")
    pd.DataFrame({"user_id": ["1", "1", "2", "2"], "movie_id": ["1", "2", "1", "2"]}).to_csv(src / "interactions.csv", index=False)
    prepare(src, tmp_path / "prepared", users_file="")
    cat = pd.read_csv(tmp_path / "prepared" / "items.csv", dtype=str, keep_default_na=False)
    new = pd.DataFrame({"item_id": ["n1", "n2"], "title": items.title, "genres": items.genres, "year": items.year,
                        "plot": items.plot_text, "director": items.director, "actors": items.actors,
                        "image_path": [str(src / "images" / "1.jpg"), ""]})
    got = prepare_new_items(new.astype(str), DataConfig(), tmp_path / "new.csv", tmp_path)
    assert list(got.columns) == list(cat.columns)
    for c in cat.columns.drop("item_id"):
        assert got[c].tolist() == cat[c].tolist(), c
    assert build_texts(got, DEFAULT_TEMPLATE)[0] == build_texts(cat, DEFAULT_TEMPLATE)[0]


# --------------------------------------------------------------------------- bug 1: killed trainings
def fault_run(root: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """``graphrec <argv> --config root/config.yaml`` in a subprocess (tests/fault_cli.py), with fault env vars."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(TESTS.parent), os.environ.get("PYTHONPATH", "")]), **env}
    return subprocess.run([sys.executable, str(TESTS / "fault_cli.py"), argv[0], "--config", str(root / "config.yaml"),
                           "--no-progress", *argv[1:]], env=e, capture_output=True, text=True, timeout=300)


KILL_TRAIN = {"epochs": 4, "patience": 10}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (4 epochs): its metrics and its model's scores."""
    root = tmp_path_factory.mktemp("reference")
    make_workspace(root, train=KILL_TRAIN)
    ok(stage("run", root))
    return root, _outcome(root)


def _outcome(root: Path) -> tuple[dict, torch.Tensor]:
    from graphrec.training.checkpoint import load_checkpoint

    metrics = json.loads((root / "run" / "evaluation" / "metrics.json").read_text())
    model = load_checkpoint(root / "run" / "model" / "checkpoint.pt")
    with torch.no_grad():
        return metrics, model.score(torch.arange(model.num_users))


def _assert_same(outcome, reference) -> None:
    assert outcome[0] == reference[0]
    assert torch.equal(outcome[1], reference[1])


def _ready(root: Path, data_root: Path, **sections) -> Path:
    make_workspace(root, data_root=data_root, train=KILL_TRAIN, **sections)
    for cmd in ("prepare", "split", "encode"):
        ok(stage(cmd, root))
    return root


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path, reference):
    """SIGKILL half-way through writing epoch 3's training state: never served, then resumed to the same model."""
    ref_root, ref = reference
    root = _ready(tmp_path / "ws", ref_root / "data")
    p = fault_run(root, "train", GRAPHREC_KILL_WRITING_EPOCH="3")
    assert p.returncode == -9, p.stderr[-2000:]
    model = root / "run" / "model"
    assert (model / "last.pt").exists() and (model / "stage.partial.json").exists() and not (model / "stage.json").exists()
    assert (model / "last.pt.tmp").exists()  # the half-written state; last.pt is still epoch 2's
    # an interrupted training is never served nor evaluated
    res = stage("recommend", root, "--user", "1")
    assert res.rc == 2 and "not a finished training" in res.err and str(model / "checkpoint.pt") in res.err
    res = stage("evaluate", root)
    assert res.rc == 2 and "not a finished training" in res.err
    res = ok(stage("run", root))
    assert "[train graphrec] resuming" in res.out and not list(model.glob("*.tmp"))
    _assert_same(_outcome(root), ref)
    assert json.loads((model / "stage.json").read_text())["summary"]["epochs"] == 4


def test_another_configurations_killed_training_is_never_served(tmp_path, reference):
    """Run A finished; run B (other seed and learning rate) killed; rerunning A retrains A, never reuses B."""
    ref_root, ref = reference
    root = _ready(tmp_path / "ws", ref_root / "data")
    ok(stage("run", root))
    _assert_same(_outcome(root), ref)
    model = root / "run" / "model"
    p = fault_run(root, "train", "--set", "suite.seeds=[7]", "--set", "train.lr=0.02", GRAPHREC_KILL_AFTER_EPOCH="1")
    assert p.returncode == -9, p.stderr[-2000:]
    assert (model / "checkpoint.pt").exists() and not (model / "stage.json").exists()  # B's partial model
    for cmd, extra in (("recommend", ("--user", "1")), ("evaluate", ())):
        res = stage(cmd, root, *extra)
        assert res.rc == 2 and "not a finished training" in res.err, res.err[-2000:]
    res = ok(stage("run", root))
    assert "[train graphrec] running" in res.out and "up to date (" + str(model) not in res.out
    _assert_same(_outcome(root), ref)
    # a checkpoint changed after its training finished is not "up to date" either
    truncate(model / "checkpoint.pt")
    res = ok(stage("train", root))
    assert "[train graphrec] running" in res.out
    ok(stage("evaluate", root))
    _assert_same(_outcome(root), ref)
