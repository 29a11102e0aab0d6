"""User attributes for the fairness audit: read, check, write ``prepared/users.csv``, load.

Prepared ``users.csv``: ``user_id`` (string, the original id) + one column per audit attribute
(ml1m-mm: ``gender, age, occupation``), one row per user of the prepared interactions that the
users file describes. An empty cell means "unknown" (the user is in no group of that attribute).

These attributes are for auditing only (per-group quality in
:mod:`graphrec.evaluation.fairness`): they never enter :class:`~graphrec.data.dataset.RecData`,
the graph or any model input, and the audit writes group aggregates only.

ml1m-mm's ``users.dat`` (MovieLens-1M, ``UserID::Gender::Age::Occupation::Zip-code``): age codes
become bands (``"18-24"``), occupation codes their MovieLens names; the zip code is never read
into the prepared tables. Checks follow :mod:`graphrec.data.tables`: a structurally broken row
(wrong field count, empty or duplicate id) is a :class:`DataError` naming file, row and field;
an unknown code is kept as unknown and flagged (counted with examples) in the prep report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graphrec.data.report import DataError, PrepReport

USERS_FILE = "users.csv"

ML1M_GENDER = {"F": "F", "M": "M"}
ML1M_AGE = {"1": "<18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49", "50": "50-55", "56": "56+"}
ML1M_OCCUPATION = {
    "0": "other/not specified", "1": "academic/educator", "2": "artist", "3": "clerical/admin",
    "4": "college/grad student", "5": "customer service", "6": "doctor/health care",
    "7": "executive/managerial", "8": "farmer", "9": "homemaker", "10": "K-12 student", "11": "lawyer",
    "12": "programmer", "13": "retired", "14": "sales/marketing", "15": "scientist", "16": "self-employed",
    "17": "technician/engineer", "18": "tradesman/craftsman", "19": "unemployed", "20": "writer",
}
ML1M_FIELDS = ("user_id", "gender", "age", "occupation", "zip")  # zip is checked for presence, never kept


def read_ml1m_users(path: str | Path, report: PrepReport) -> pd.DataFrame:
    """Parse MovieLens-1M ``users.dat`` into ``user_id, gender, age, occupation`` (strings).

    Raises:
        DataError: file missing or unreadable, a row without exactly 5 ``::``-separated fields,
            an empty or duplicate user id (names file, row and field).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "users file not found")
    try:
        lines = path.read_bytes().decode("latin-1").splitlines()
    except OSError as exc:
        raise DataError(path, f"cannot be read: {exc}") from None
    rows, seen = [], {}
    codes = {"gender": ML1M_GENDER, "age": ML1M_AGE, "occupation": ML1M_OCCUPATION}
    unknown: dict[str, list[str]] = {c: [] for c in codes}
    for r, line in enumerate(lines, start=1):  # users.dat has no header: row = file line
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("::")]
        if len(parts) != len(ML1M_FIELDS):
            raise DataError(path, f"expected {len(ML1M_FIELDS)} '::'-separated fields "
                            f"(UserID::Gender::Age::Occupation::Zip-code), got {len(parts)}: {line[:80]!r}",
                            row=r, field=ML1M_FIELDS[min(len(parts), len(ML1M_FIELDS) - 1)])
        uid = parts[0]
        if not uid:
            raise DataError(path, "empty user id", row=r, field="user_id")
        if uid in seen:
            raise DataError(path, f"duplicate user id {uid!r} (rows {seen[uid]} and {r})", row=r, field="user_id")
        seen[uid] = r
        rec = {"user_id": uid}
        for j, (col, table) in enumerate(codes.items(), start=1):
            value = table.get(parts[j])
            if value is None:
                unknown[col].append(f"{path} row {r} field {col!r}: {parts[j]!r}")
            rec[col] = value or ""
        rows.append(rec)
    if not rows:
        raise DataError(path, "no user rows")
    for col, ex in unknown.items():
        if ex:
            report.flag(f"user_attribute_unknown_code:{col}", len(ex), ex)
    return pd.DataFrame(rows, columns=["user_id", "gender", "age", "occupation"])


def read_generic_users(path: str | Path, id_col: str = "user_id", attribute_cols: list[str] | None = None) -> pd.DataFrame:
    """Read a users CSV/TSV: ``id_col`` + attribute columns (default: every other column).

    Returns a table with ``user_id`` first, then the attribute columns under their own names.

    Raises:
        DataError: missing file or column, empty or duplicate id, an attribute named ``user_id``.
    """
    from graphrec.data.tables import _blank, _rows, read_table

    path = Path(path)
    cols = list(attribute_cols or [])
    raw = read_table(path, [id_col] + cols)
    if not cols:
        cols = [c for c in raw.columns if c != id_col]
    if "user_id" in cols:
        raise DataError(path, "an attribute column may not be called 'user_id'", field="user_id")
    ids = raw[id_col].astype(str).str.strip()
    blank = _blank(ids)
    if blank.any():
        raise DataError(path, "empty user id", row=_rows(blank)[0], field=id_col)
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = _rows(dup)[:5]
        raise DataError(path, f"duplicate user id {ids[dup].iloc[0]!r} (rows {rows})", row=rows[0], field=id_col)
    out = pd.DataFrame({"user_id": ids})
    for c in cols:
        out[c] = raw[c].astype(str).str.strip().where(~_blank(raw[c]), "")
    return out


def canonical_users(users: pd.DataFrame, interactions: pd.DataFrame, report: PrepReport,
                    source: str | Path = "") -> pd.DataFrame:
    """Keep the users of the prepared interactions; count users with / without attributes.

    Adds to ``report``: ``kept["users_with_attributes"]``, ``flagged["users_without_attributes"]``
    (interaction users the users file does not describe), ``skipped["users_file_rows_without_interactions"]``
    and ``flagged["user_attribute_missing:<col>"]`` (kept users with an empty value).
    """
    active = pd.Index(interactions["user_id"].astype(str).unique())
    known = users["user_id"].isin(active)
    if (~known).any():
        report.skip("users_file_rows_without_interactions", int((~known).sum()))
    out = users[known].reset_index(drop=True)
    missing = active[~active.isin(out["user_id"])]
    report.kept["users_with_attributes"] = len(out)
    if len(missing):
        report.flag("users_without_attributes", len(missing), [f"user {u} (not in {source or 'the users file'})" for u in missing[:10]])
    for c in out.columns[1:]:
        empty = out[c] == ""
        if empty.any():
            report.flag(f"user_attribute_missing:{c}", int(empty.sum()), [f"user {u}" for u in out["user_id"][empty][:10]])
    return out


def prepare_users(path: Path | None, fmt: str, interactions: pd.DataFrame, report: PrepReport,
                  id_col: str = "user_id", attribute_cols: list[str] | None = None) -> pd.DataFrame | None:
    """Read the users file of a data set (``fmt``: ``"ml1m-mm"`` or ``"generic"``) for the prepared users.

    ``path`` None means no users file (returns None). Counts go to ``report`` (see
    :func:`canonical_users`); errors are :class:`DataError`.
    """
    if path is None:
        return None
    if fmt == "ml1m-mm":
        raw = read_ml1m_users(path, report)
    elif fmt == "generic":
        raw = read_generic_users(path, id_col, attribute_cols)
    else:
        raise ValueError(f"unknown users file format {fmt!r}")
    return canonical_users(raw, interactions, report, path)


def write_users(out_dir: str | Path, users: pd.DataFrame | None) -> Path | None:
    """Write ``out_dir/users.csv`` atomically; with None remove a stale one (returns None)."""
    out = Path(out_dir)
    target = out / USERS_FILE
    if users is None:
        target.unlink(missing_ok=True)
        return None
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (USERS_FILE + ".tmp")
    users.to_csv(tmp, index=False)
    tmp.replace(target)
    return target


def load_user_attributes(prepared_dir: str | Path) -> pd.DataFrame | None:
    """The prepared user attribute table (``user_id`` + attribute columns, strings), or None.

    None when the prepared directory has no ``users.csv`` (the data set has no users file);
    the audit then reports activity groups only. Read only by the fairness audit.
    """
    from graphrec.data.tables import read_table

    path = Path(prepared_dir) / USERS_FILE
    if not path.exists():
        return None
    return read_table(path, ["user_id"])
