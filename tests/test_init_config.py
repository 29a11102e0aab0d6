"""``graphrec init``: the config proposed from MovieLens-style files, and a run that completes with it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

import fakes  # noqa: F401  (registers fake_text / fake_image)
from mlstyle import FAST, write_movielens_style

from graphrec.config import load_config
from graphrec.data.report import DataError
from graphrec.init_config import inspect_table, propose_config, rating_threshold, render_yaml, write_config


@pytest.fixture
def ml(tmp_path):
    return write_movielens_style(tmp_path / "ml")


def test_rating_scales_get_a_threshold_three_quarters_up():
    assert rating_threshold([1, 2, 3, 4, 5])[0] == 4
    assert rating_threshold([x / 2 for x in range(1, 11)])[0] == 4.0  # 0.5 .. 5 in halves
    assert rating_threshold(list(range(1, 11)))[0] == 8
    assert rating_threshold([0, 1, 1, 0])[0] == 1
    assert rating_threshold([5, 5, 5])[0] is None  # all positives: no threshold


def test_inspect_table_types_columns(ml):
    info = inspect_table(ml["movies"])
    kinds = {c.name: c.kind for c in info.columns}
    assert kinds == {"movieId": "integer", "title": "text", "year": "integer", "genres": "text"}
    assert info.column("genres").pipe_share > 0.5 and info.rows == 60


def test_proposal_for_movielens_style_files(ml):
    prop = propose_config(ml["ratings"], ml["movies"], ml["users"], relative_to=ml["ratings"].parent.parent)
    get = prop.get
    assert get("data.format") == "generic" and get("data.source") == "ml"
    assert (get("data.user_col"), get("data.item_col")) == ("userId", "movieId")
    assert get("data.rating_col") == "rating" and get("data.rating_threshold") == 4.0
    assert get("data.timestamp_col") == "timestamp"
    assert get("data.text_cols") == ["title", "year", "genres"] and get("data.title_col") == "title"
    assert get("data.genres_col") == "genres" and get("data.image_col") is None
    # no image column: text-only, with both keys set together
    assert get("encoders.enabled") == ["text"] and get("model.modalities") == ["text"]
    assert get("encoders.text.template") == "Title: {title}. Year: {year}. Genres: {genres}."
    # every decision says why
    assert all(d.why for d in prop.decisions)
    why = {d.key: d.why for d in prop.decisions}
    assert "1-5 scale" in why["data.rating_threshold"] and "no column holds image paths" in why["encoders.enabled"]
    # users file: attributes with few distinct values, not the zip code
    users = {d.key: d for d in prop.decisions if d.key.startswith("data.user")}
    assert users["data.user_attribute_cols"].value == ["gender", "age", "occupation"]
    assert any("genre" in n and "genre_hidden" in n for n in prop.notes)  # how to keep the genre objective


def test_written_yaml_has_reasons_and_loads(ml, tmp_path):
    prop = propose_config(ml["ratings"], ml["movies"], ml["users"], relative_to=tmp_path)
    out = write_config(prop, tmp_path / "configs" / "ml.yaml")
    text = out.read_text()
    assert "# a 1-5 scale" in text and "rating_threshold: 4.0" in text
    cfg = load_config(out)
    assert cfg.data.rating_threshold == 4.0 and cfg.encoders.enabled == ["text"] and cfg.model.modalities == ["text"]
    assert cfg.encoders.text.template == "Title: {title}. Year: {year}. Genres: {genres}."
    assert yaml.safe_load(text)["data"]["timestamp_col"] == "timestamp"
    with pytest.raises(Exception, match="exists"):
        write_config(prop, out)  # no silent overwrite


def test_images_and_the_one_switch(tmp_path):
    files = write_movielens_style(tmp_path / "ml", images=True)
    prop = propose_config(files["ratings"], files["movies"], relative_to=tmp_path)
    assert prop.get("data.image_col") == "poster" and prop.get("encoders.enabled") == ["text", "image"]
    assert prop.get("model.modalities") == ["text", "image"]
    text_only = propose_config(files["ratings"], files["movies"], relative_to=tmp_path, modalities=["text"])
    assert text_only.get("encoders.enabled") == ["text"] == text_only.get("model.modalities")
    assert text_only.get("data.image_col") is None
    img_only = propose_config(files["ratings"], files["movies"], relative_to=tmp_path, modalities=["image"])
    assert img_only.get("model.modalities") == ["image"] and img_only.get("data.text_cols") == []
    assert "template:" not in render_yaml(img_only)  # no text: no template


def test_bad_files_are_errors_naming_the_problem(tmp_path):
    (tmp_path / "r.csv").write_text("1::2::5::978300760\n1::3::4::978300761\n")
    (tmp_path / "m.csv").write_text("movieId,title\n2,A\n")
    with pytest.raises(DataError, match="'::'"):
        propose_config(tmp_path / "r.csv", tmp_path / "m.csv")
    (tmp_path / "r.csv").write_text("user,item,rating\n1,2,5\n")
    with pytest.raises(DataError, match="rename one of them"):
        propose_config(tmp_path / "r.csv", tmp_path / "m.csv")


def test_generic_prep_names_fields_and_keeps_template_columns(ml, tmp_path):
    from graphrec import stages

    prop = propose_config(ml["ratings"], ml["movies"], run_dir=str(tmp_path / "run"), relative_to=tmp_path)
    write_config(prop, tmp_path / "c.yaml")
    cfg = load_config(tmp_path / "c.yaml")
    cfg = cfg.replace(data=cfg.data.replace(source=str(tmp_path / cfg.data.source)))
    stages.stage_prepare(cfg, log=lambda *_: None)
    items = pd.read_csv(tmp_path / "run" / "prepared" / "items.csv", dtype=str, keep_default_na=False)
    assert {"title", "genres", "year", "text"} <= set(items.columns)
    row = items.iloc[1]
    assert row.text == f"Title: {row.title}. Year: {row.year}. Genres: {row.genres.replace('|', ', ')}."
    report = json.loads((tmp_path / "run" / "prepared" / "prep_report.json").read_text())
    assert "items_without_image" not in report["flagged"]  # no image column: nothing is missing
    assert report["skipped"]["below_rating_threshold"] > 0


def test_graphrec_run_completes_on_the_init_config(ml, tmp_path, monkeypatch, capsys):
    from graphrec.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["init", "--interactions", str(ml["ratings"]), "--items", str(ml["movies"]),
                 "--out", "configs/ml.yaml"]) == 0
    said = capsys.readouterr().out
    assert "data.rating_threshold = 4.0" in said and "wrote configs/ml.yaml" in said
    # speed only: fake encoders and a short training; no data or modality key is touched
    sets = [f"{k}={json.dumps(v)}" for k, v in FAST.items()]
    assert main(["run", "--config", "configs/ml.yaml", "--no-progress"] + sum((["--set", s] for s in sets), [])) == 0
    metrics = json.loads((tmp_path / "runs" / "ml" / "evaluation" / "metrics.json").read_text())
    assert {"graphrec", "popularity", "content_knn"} <= set(metrics)
    assert metrics["graphrec"]["cold"]["n_users"] > 0
