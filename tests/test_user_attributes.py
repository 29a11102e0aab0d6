"""User attributes for the audit: users.dat parsing, generic users files, prepared users.csv, clear errors."""

import pandas as pd
import pytest

from graphrec.data.report import DataError, PrepReport
from graphrec.data.users import canonical_users, load_user_attributes, read_generic_users, read_ml1m_users

USERS_DAT = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n4::M::45::7::02460\n"


def _write(path, text):
    path.write_text(text)
    return path


def test_users_dat_codes_become_bands_and_names_and_zip_is_dropped(tmp_path):
    rep = PrepReport()
    df = read_ml1m_users(_write(tmp_path / "users.dat", USERS_DAT), rep)
    assert list(df.columns) == ["user_id", "gender", "age", "occupation"]
    assert df.to_dict("records")[0] == {"user_id": "1", "gender": "F", "age": "<18", "occupation": "K-12 student"}
    assert df.age.tolist() == ["<18", "56+", "25-34", "45-49"]
    assert df.occupation.tolist() == ["K-12 student", "self-employed", "scientist", "executive/managerial"]
    assert not rep.flagged


def test_users_dat_malformed_row_names_file_row_and_field(tmp_path):
    bad = _write(tmp_path / "users.dat", USERS_DAT + "5::F::25\n")
    with pytest.raises(DataError, match=r"users.dat, row 5, field 'occupation': expected 5"):
        read_ml1m_users(bad, PrepReport())
    dup = _write(tmp_path / "dup.dat", USERS_DAT + "2::F::25::1::1\n")
    with pytest.raises(DataError, match=r"row 5, field 'user_id': duplicate user id '2'"):
        read_ml1m_users(dup, PrepReport())
    with pytest.raises(DataError, match="users file not found"):
        read_ml1m_users(tmp_path / "nope.dat", PrepReport())


def test_users_dat_unknown_code_is_kept_unknown_and_flagged(tmp_path):
    rep = PrepReport()
    df = read_ml1m_users(_write(tmp_path / "users.dat", USERS_DAT + "5::X::99::3::1\n"), rep)
    assert df.iloc[-1].to_dict() == {"user_id": "5", "gender": "", "age": "", "occupation": "clerical/admin"}
    assert rep.flagged == {"user_attribute_unknown_code:gender": 1, "user_attribute_unknown_code:age": 1}
    assert "row 5" in rep.examples["user_attribute_unknown_code:age"][0]


def test_canonical_users_counts_with_and_without_attributes():
    users = pd.DataFrame({"user_id": ["1", "2", "3"], "gender": ["F", "", "M"]})
    inter = pd.DataFrame({"user_id": ["1", "1", "2", "9"], "item_id": ["a", "b", "a", "a"]})
    rep = PrepReport()
    out = canonical_users(users, inter, rep)
    assert out.user_id.tolist() == ["1", "2"]
    assert rep.kept["users_with_attributes"] == 2
    assert rep.flagged["users_without_attributes"] == 1 and rep.skipped["users_file_rows_without_interactions"] == 1
    assert rep.flagged["user_attribute_missing:gender"] == 1


def test_generic_users_file_columns_and_errors(tmp_path):
    f = _write(tmp_path / "people.csv", "uid,country,segment,secret\nu1,FR,a,x\nu2,,b,y\n")
    df = read_generic_users(f, "uid", ["country", "segment"])
    assert list(df.columns) == ["user_id", "country", "segment"] and df.country.tolist() == ["FR", ""]
    assert list(read_generic_users(f, "uid").columns) == ["user_id", "country", "segment", "secret"]
    with pytest.raises(DataError, match="missing column"):
        read_generic_users(f, "uid", ["age"])
    dup = _write(tmp_path / "dup.csv", "uid,country\nu1,FR\nu1,DE\n")
    with pytest.raises(DataError, match=r"row 2, field 'uid': duplicate user id 'u1'"):
        read_generic_users(dup, "uid")


def _ml1m_dir(root, users: str | None):
    root.mkdir()
    (root / "interactions.csv").write_text("user_id,movie_id\n1,10\n1,11\n2,10\n2,12\n3,11\n3,12\n")
    (root / "items.csv").write_text(
        "movie_id,title,genres,year,plot_text,director,actors,has_image\n"
        "10,A,Drama,1990,plot a,d,a,0\n11,B,Comedy,1991,plot b,d,a,0\n12,C,Drama|Comedy,1992,plot c,d,a,0\n")
    if users is not None:
        (root / "users.dat").write_text(users)
    return root


def test_ml1m_prepare_writes_users_csv_without_zip(tmp_path):
    from data_prep.ml1m_mm import prepare

    src = _ml1m_dir(tmp_path / "ml", USERS_DAT)
    rep = prepare(src, tmp_path / "prep")
    text = (tmp_path / "prep" / "users.csv").read_text()
    assert text.splitlines()[0] == "user_id,gender,age,occupation"
    assert "48067" not in text and "70072" not in text
    attrs = load_user_attributes(tmp_path / "prep")
    assert attrs.user_id.tolist() == ["1", "2", "3"]  # user 4 has no interactions
    assert rep.kept["users_with_attributes"] == 3 and rep.skipped["users_file_rows_without_interactions"] == 1
    import json

    assert json.loads((tmp_path / "prep" / "prep_report.json").read_text())["kept"]["users_with_attributes"] == 3


def test_ml1m_prepare_without_users_dat_or_with_users_disabled(tmp_path):
    from data_prep.ml1m_mm import prepare

    src = _ml1m_dir(tmp_path / "ml", None)
    rep = prepare(src, tmp_path / "prep")
    assert rep.flagged["no_users_file"] == 1 and load_user_attributes(tmp_path / "prep") is None
    with pytest.raises(DataError, match="users file not found"):
        prepare(src, tmp_path / "prep2", users_file="people.dat")
    src2 = _ml1m_dir(tmp_path / "ml2", USERS_DAT)
    prepare(src2, tmp_path / "prep3")
    assert load_user_attributes(tmp_path / "prep3") is not None
    prepare(src2, tmp_path / "prep3", users_file="")  # '' = no users file: a stale users.csv is removed
    assert load_user_attributes(tmp_path / "prep3") is None


def test_generic_prepare_from_config_reads_the_users_file(tmp_path):
    from data_prep.generic import prepare, spec_from_config
    from graphrec.data.config import DataConfig

    (tmp_path / "inter.csv").write_text("user,item\nu1,a\nu1,b\nu2,a\nu2,b\n")
    (tmp_path / "items.csv").write_text("item,title\na,Alpha\nb,Beta\n")
    (tmp_path / "users.tsv").write_text("user\tgroup\tzip\nu1\tx\t111\nu2\ty\t222\n")
    cfg = DataConfig(source=str(tmp_path), format="generic", interactions_file="inter.csv", items_file="items.csv",
                     user_col="user", item_col="item", users_file="users.tsv", user_id_col="user",
                     user_attribute_cols=["group"])
    prepare(spec_from_config(cfg), tmp_path / "prep")
    attrs = load_user_attributes(tmp_path / "prep")
    assert attrs.to_dict("list") == {"user_id": ["u1", "u2"], "group": ["x", "y"]}
    from graphrec.data import load_recdata  # attributes never reach RecData
    from graphrec.data.split import cold_start_split, write_split
    from graphrec.data.tables import load_prepared

    inter, _ = load_prepared(tmp_path / "prep")
    write_split(cold_start_split(inter), tmp_path / "split")
    data = load_recdata(tmp_path / "prep", tmp_path / "split")
    assert "group" not in data.items.columns and not hasattr(data, "user_attributes")
