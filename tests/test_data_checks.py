"""Every strict input check of graphrec.data: a small bad input each."""

import json
from pathlib import Path

import pandas as pd
import pytest

from data_prep.generic import main as generic_main
from data_prep.generic import prepare
from graphrec.data import DataError, load_prepared
from graphrec.data.tables import TableSpec


def write(tmp: Path, inter: str, items: str) -> TableSpec:
    (tmp / "inter.csv").write_text(inter)
    (tmp / "items.csv").write_text(items)
    (tmp / "img").mkdir(exist_ok=True)
    (tmp / "img" / "a.jpg").write_bytes(b"\xff\xd8fake")
    return TableSpec(interactions_file=tmp / "inter.csv", items_file=tmp / "items.csv",
                     user_col="u", item_col="i", text_cols=["title", "desc"], image_col="img")


ITEMS = "i,title,desc,img\nA,Alpha,first,img/a.jpg\nB,Beta,,\nC,Gamma,third,\n"


def test_clean_input_is_kept_whole(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,B\n2,A\n2,C\n", ITEMS)
    rep = prepare(spec, tmp_path / "out")
    inter, items = load_prepared(tmp_path / "out")
    assert len(inter) == 4 and len(items) == 3
    assert rep.skipped == {}
    assert inter["user_id"].tolist() == ["1", "1", "2", "2"]  # original ids kept as strings
    assert items.loc[items.item_id == "A", "text"].item() == "Title: Alpha. Desc: first."  # fields named
    assert items.loc[items.item_id == "A", "desc"].item() == "first"  # and kept for templates
    assert items.loc[items.item_id == "A", "image_path"].item() == str((tmp_path / "img/a.jpg").resolve())
    saved = json.loads((tmp_path / "out" / "prep_report.json").read_text())
    assert saved["kept"]["interactions"] == 4


def test_missing_column_names_file_and_field(tmp_path):
    spec = write(tmp_path, "user,i\n1,A\n", ITEMS)
    with pytest.raises(DataError, match=r"inter\.csv.*missing column.*'u'"):
        prepare(spec, tmp_path / "out")
    spec = write(tmp_path, "u,i\n1,A\n", "i,title,img\nA,x,\n")
    with pytest.raises(DataError, match=r"items\.csv.*desc"):
        prepare(spec, tmp_path / "out")


def test_unknown_items_are_skipped_and_counted_with_rows(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,ZZ\n1,B\n", ITEMS)
    rep = prepare(spec, tmp_path / "out")
    assert rep.skipped["interactions_with_unknown_item"] == 1
    assert "row 3" in rep.examples["interactions_with_unknown_item"][0]
    assert len(load_prepared(tmp_path / "out")[0]) == 2


def test_duplicates_deduplicated_and_counted(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,A\n1,B\n1,A\n", ITEMS)
    rep = prepare(spec, tmp_path / "out")
    assert rep.skipped["duplicate_interactions"] == 2
    assert len(load_prepared(tmp_path / "out")[0]) == 2


def test_empty_or_nan_text_is_flagged(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,B\n", "i,title,desc,img\nA,Alpha,x,img/a.jpg\nB,NaN,,img/a.jpg\n")
    rep = prepare(spec, tmp_path / "out")
    assert rep.flagged["items_without_text"] == 1
    assert rep.flagged["empty_text_field:desc"] == 1
    items = load_prepared(tmp_path / "out")[1]
    assert items.loc[items.item_id == "B", "text"].fillna("").item() == ""


def test_missing_image_file_is_flagged_not_trusted(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,B\n", "i,title,desc,img\nA,Alpha,x,img/a.jpg\nB,Beta,y,img/nope.jpg\n")
    rep = prepare(spec, tmp_path / "out")
    assert rep.flagged["image_file_not_found"] == 1
    assert "nope.jpg" in rep.examples["image_file_not_found"][0]
    items = load_prepared(tmp_path / "out")[1]
    assert items.loc[items.item_id == "B", "image_path"].fillna("").item() == ""


def test_items_with_neither_text_nor_image_are_skipped_with_their_interactions(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,B\n2,A\n2,C\n", "i,title,desc,img\nA,Alpha,x,img/a.jpg\nB,,,\nC,Gamma,z,\n")
    rep = prepare(spec, tmp_path / "out")
    assert rep.skipped["items_without_text_or_image"] == 1
    assert rep.skipped["interactions_of_items_without_content"] == 1
    inter, items = load_prepared(tmp_path / "out")
    assert "B" not in set(items.item_id) and "B" not in set(inter.item_id)


def test_single_interaction_users_are_skipped_and_counted(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n1,B\n2,A\n", ITEMS)
    rep = prepare(spec, tmp_path / "out")
    assert rep.skipped["users_with_fewer_than_2_interactions"] == 1
    assert rep.skipped["interactions_of_those_users"] == 1
    assert set(load_prepared(tmp_path / "out")[0].user_id) == {"1"}


def test_bad_ids_and_ratings_raise_with_row(tmp_path):
    spec = write(tmp_path, "u,i\n1,A\n,B\n", ITEMS)
    with pytest.raises(DataError, match=r"row 3, field 'u'"):
        prepare(spec, tmp_path / "out")
    spec = write(tmp_path, "u,i\n1,A\n1,B\n", "i,title,desc,img\nA,x,y,\nA,z,w,\n")
    with pytest.raises(DataError, match=r"duplicate item id 'A'"):
        prepare(spec, tmp_path / "out")
    spec = write(tmp_path, "u,i,r\n1,A,5\n1,B,high\n", ITEMS)
    spec.rating_col = "r"
    with pytest.raises(DataError, match=r"row 3, field 'r'"):
        prepare(spec, tmp_path / "out")


def test_rating_threshold_and_timestamp(tmp_path):
    spec = write(tmp_path, "u,i,r,t\n1,A,5,10\n1,B,2,11\n1,C,4,12\n", ITEMS)
    spec.rating_col, spec.timestamp_col = "r", "t"
    rep = prepare(spec, tmp_path / "out")
    assert rep.skipped["below_rating_threshold"] == 1
    inter = load_prepared(tmp_path / "out")[0]
    assert inter["item_id"].tolist() == ["A", "C"] and "timestamp" in inter.columns


def test_generic_cli_reports_errors_cleanly(tmp_path, capsys):
    write(tmp_path, "u,i\n1,A\n", ITEMS)
    rc = generic_main(["--interactions", str(tmp_path / "inter.csv"), "--items", str(tmp_path / "items.csv"),
                       "--out", str(tmp_path / "o"), "--user-col", "user"])
    assert rc == 2
    assert "missing column" in capsys.readouterr().err
