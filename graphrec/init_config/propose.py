"""``propose_config``: the rules that turn inspected files into decisions, one method per question."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from graphrec.data.report import DataError
from graphrec.init_config.decisions import Decision, Proposal
from graphrec.init_config.inspection import MAX_ROWS, ColumnInfo, inspect_table, is_blank, read_raw

_USER = re.compile(r"^(user|customer|client|reader|member|visitor|viewer|listener|buyer|uid$)", re.I)
_ITEM = re.compile(r"(item|movie|film|product|book|track|song|article|artist|recipe|business|asin|^iid$|^id$)", re.I)
_TIME = re.compile(r"(timestamp|^time$|^ts$|date|datetime|_at$|^when$|unix)", re.I)
_RATING = re.compile(r"(rating|score|stars|^rate$|^value$|preference|grade)", re.I)
_TITLE = re.compile(r"^(title|name|movie_title|product_title|product_name|book_title|item_name|track_name|headline)$", re.I)
_GENRES = re.compile(r"(genre|categor|tags?$|^labels?$|^topics?$)", re.I)
_IMAGE = re.compile(r"(image|poster|img|picture|photo|thumbnail|cover|cover_path)", re.I)
_YEAR = re.compile(r"^(year|release_year|pub_year|publication_year)$", re.I)


def _first(names: list[str], pattern: re.Pattern, exclude: set[str] = frozenset()) -> str | None:
    return next((n for n in names if n not in exclude and pattern.search(n)), None)


def rating_threshold(values: list[float]) -> tuple[float | None, str]:
    """The positive threshold for a rating scale: 3/4 of the way up the scale, on a scale step.

    1-5 stars -> 4, 0.5-5 in halves -> 4.0, 1-10 -> 8, 0/1 -> 1; one distinct value -> None.
    """
    vals = sorted(set(values))
    lo, hi = vals[0], vals[-1]
    if lo == hi:
        return None, f"every rating is {lo:g}, so every row is a positive and no threshold is needed"
    if vals == [0.0, 1.0]:
        return 1.0, "ratings are 0/1: the 1s are the positives"
    target = lo + 0.75 * (hi - lo)
    steps = sorted({round(b - a, 6) for a, b in zip(vals, vals[1:])})
    step = steps[0] if steps else 1.0
    if len(vals) <= 21:  # a discrete scale: snap onto it
        thr = min(vals, key=lambda v: (abs(v - target), -v))
    else:
        thr = round(round(target / step) * step, 6) if step >= 0.01 else round(target, 2)
    return float(thr), (f"a {lo:g}-{hi:g} scale ({len(vals)} distinct values): ratings >= {thr:g} "
                        f"(3/4 up the scale, as 4 of 5 stars in MovieLens) count as positives")


def _timestamp_kind(c: ColumnInfo) -> str | None:
    """'seconds' / 'milliseconds' for a plausible Unix time column, 'date' for date strings."""
    if c.numeric and c.minimum is not None:
        if 1e8 <= c.minimum and c.maximum <= 1e10:
            return "seconds"
        if 1e11 <= c.minimum and c.maximum <= 1e13:
            return "milliseconds"
        return "number"
    if c.kind == "text" and c.examples and all(re.match(r"^\d{4}-\d{2}-\d{2}", e) for e in c.examples):
        return "date"
    return None


def _label(field_: str) -> str:
    return field_.replace("_", " ").strip().capitalize()


def propose_config(interactions: str | Path, items: str | Path, users: str | Path | None = None, *,
                   run_dir: str | None = None, modalities: list[str] | None = None,
                   relative_to: str | Path | None = None, max_rows: int = MAX_ROWS) -> Proposal:
    """Inspect the files and propose a ``data.format: generic`` config.

    Args:
        interactions: interactions file (user id, item id, optional rating and timestamp).
        items: items file (item id, text columns, optional image path column).
        users: optional users file (user id + attribute columns).
        run_dir: the run directory to write (default ``runs/<name of the items file's folder>``).
        modalities: force ``["text"]`` or ``["image"]`` (the one switch for a text-only or
            image-only run); default: every modality the items file can feed.
        relative_to: paths in the config are relative to this directory (default: the current
            one) when the files are under it, else absolute.
        max_rows: rows read per file for the inspection.

    Returns:
        A :class:`Proposal`; ``write_config`` turns it into commented YAML.

    Raises:
        DataError: a file cannot be read or lacks what a recommender needs (naming it).
    """
    p = _Proposer(Path(interactions), Path(items), Path(users) if users else None, max_rows)
    p.files(run_dir, relative_to)
    user_col, item_col = p.ids()
    p.rating_and_time(user_col, item_col)
    cols = p.item_columns(item_col)
    use = p.modalities(cols, modalities)
    p.item_decisions(cols, use)
    if users:
        p.users_file(user_col)
    p.encoders(cols, use)
    return Proposal(p.decisions, p.notes, p.tables)


@dataclass
class _ItemColumns:
    """What the items file offers (column names; ``None`` = not found)."""

    text: list[str]
    skipped: list[str]
    title: str | None
    genres: ColumnInfo | None
    image: str | None
    image_why: str


class _Proposer:
    """Collects decisions step by step for :func:`propose_config` (one method per question)."""

    def __init__(self, inter: Path, items: Path, users: Path | None, max_rows: int) -> None:
        self.inter_path, self.items_path, self.users_path = inter, items, users
        self.ti, self.tm = inspect_table(inter, max_rows), inspect_table(items, max_rows)
        self.tu = inspect_table(users, max_rows) if users else None
        self.tables = {"interactions": self.ti, "items": self.tm, **({"users": self.tu} if self.tu else {})}
        self.inter_raw, _ = read_raw(inter, max_rows)
        self.items_raw, _ = read_raw(items, max_rows)
        self.decisions: list[Decision] = []
        self.notes: list[str] = []

    def add(self, key: str, value: Any, why: str, active: bool = True) -> None:
        self.decisions.append(Decision(key, value, why, active))

    def files(self, run_dir: str | None, relative_to: str | Path | None) -> None:
        """run_dir, data.source (the files' common folder) and the file names relative to it."""
        ti, tm = self.ti, self.tm
        base = Path(relative_to or Path.cwd()).resolve()
        files = [self.inter_path.resolve(), self.items_path.resolve()] + ([self.users_path.resolve()] if self.users_path else [])
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
        try:
            source = os.path.relpath(root, base) if root.is_relative_to(base) else str(root)
        except ValueError:  # other drive
            source = str(root)
        self.root = root
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name or self.items_path.stem).strip("-") or "mydata"
        self.add("run_dir", run_dir or f"runs/{name}", "everything the run writes goes here (prepared tables, split, "
                 "features, model, evaluation)")
        self.add("data.source", source, "the folder holding the files (the file options below are relative to it)")
        self.add("data.format", "generic", "an interactions file plus an items file")
        self.add("data.interactions_file", os.path.relpath(files[0], root), f"{ti.rows:,} rows"
                 + (f" (inspected the first {ti.rows:,})" if ti.truncated else "") + f", columns {ti.names}")
        self.add("data.items_file", os.path.relpath(files[1], root), f"{tm.rows:,} rows, columns {tm.names}")

    def ids(self) -> tuple[str, str]:
        """The user id column, and the item id column both files share."""
        ti, tm = self.ti, self.tm
        user_col = _first(ti.names, _USER) or ti.names[0]
        self.add("data.user_col", user_col, ("its name says user id" if _USER.search(user_col) else
                                             "no column is named like a user id; the first column is taken"))
        shared = [c for c in ti.names if c in tm.names and c != user_col]
        id_like = [c for c in shared if _ITEM.search(c)]
        if not shared:
            raise DataError(self.items_path, f"no column of the interactions file {ti.names} is also in the items file "
                            f"{tm.names}; data.item_col names one column in both files, rename one of them")
        item_col = (id_like or shared)[0]
        why = "the column both files have" + (" and named like an item id" if id_like else "")
        known = set(self.items_raw[item_col].astype(str).str.strip())
        hit = float(self.inter_raw[item_col].astype(str).str.strip().isin(known).mean())
        if hit < 0.5:
            raise DataError(self.inter_path, f"only {hit:.0%} of the interactions' {item_col!r} values are item ids of "
                            f"{self.items_path.name}; is {item_col!r} the same id in both files?", field=item_col)
        self.add("data.item_col", item_col, f"{why}; {hit:.1%} of the interactions name an item of the items file")
        if hit < 0.999:
            self.notes.append(f"{1 - hit:.1%} of the interactions name items missing from the items file; prepare skips "
                              "and counts them (prep_report.json)")
        return user_col, item_col

    def rating_and_time(self, user_col: str, item_col: str) -> None:
        """A rating column with its threshold, and a numeric timestamp column."""
        rest = [c for c in self.ti.columns if c.name not in (user_col, item_col)]
        rating = next((c for c in rest if c.numeric and _RATING.search(c.name)), None)
        if rating is None:
            rating = next((c for c in rest if c.numeric and c.n_unique <= 21 and (c.maximum or 0) <= 100
                           and not _TIME.search(c.name)), None)
        if rating is not None:
            vals = pd.to_numeric(self.inter_raw[rating.name], errors="coerce").dropna()
            thr, why = rating_threshold(vals.tolist())
            if thr is None:
                self.add("data.rating_col", None, why)
            else:
                self.add("data.rating_col", rating.name, "numeric, named like a rating" if _RATING.search(rating.name)
                         else f"numeric with {rating.n_unique} distinct values: read as a rating")
                self.add("data.rating_threshold", thr, f"{why}; that keeps {float((vals >= thr).mean()):.1%} of the rows")
        else:
            self.add("data.rating_col", None, "no rating column: every row is an implicit positive")
        ts = next((c for c in rest if c is not rating and _TIME.search(c.name)), None)
        kind = _timestamp_kind(ts) if ts else None
        if ts is not None and kind in ("seconds", "milliseconds", "number"):
            span = ""
            if kind != "number":
                unit = "s" if kind == "seconds" else "ms"
                span = f", {pd.to_datetime(ts.minimum, unit=unit).year}-{pd.to_datetime(ts.maximum, unit=unit).year}"
            self.add("data.timestamp_col", ts.name, f"numeric time ({kind}{span}): the split files keep each pair's "
                     "time and the self-supervised user view becomes ordered")
            return
        self.add("data.timestamp_col", None, "no timestamp column: the user view is an order-free set"
                 + (f" ({ts.name!r} holds date strings, e.g. {ts.examples[0]!r}; convert them to Unix seconds to use it)"
                    if kind == "date" else ""))
        if kind == "date":
            self.notes.append(f"timestamp column {ts.name!r} holds dates; prepare needs numbers (Unix time)")

    def _image_column(self, item_cols: list[ColumnInfo]) -> tuple[str | None, str]:
        why = "no column holds image paths"
        for c in item_cols:
            if c.kind != "text" or not (_IMAGE.search(c.name) or c.path_share > 0.5):
                continue
            if c.url_share > 0.5:
                self.notes.append(f"{c.name!r} holds URLs; graphrec reads local image files only (download them and "
                                  "put the paths in a column)")
                continue
            paths = self.items_raw[c.name].astype(str).str.strip()
            paths = paths[~is_blank(paths)].head(500)
            root = self.items_path.parent
            found = sum((Path(q) if Path(q).is_absolute() else root / q).is_file() for q in paths)
            if found:
                return c.name, f"{found} of the {len(paths)} paths checked exist (relative to the items file's folder or absolute)"
            why = f"{c.name!r} looks like image paths but none of the {len(paths)} checked exists"
        return None, why

    def item_columns(self, item_col: str) -> _ItemColumns:
        """Image, genres, title and text columns of the items file."""
        tm = self.tm
        item_cols = [c for c in tm.columns if c.name != item_col]
        image, image_why = self._image_column(item_cols)
        genres = next((c for c in item_cols if c.kind == "text" and _GENRES.search(c.name)), None)
        if genres is None:
            genres = next((c for c in item_cols if c.kind == "text" and c.pipe_share > 0.5 and c.name != image
                           and c.n_unique < 0.8 * max(1, tm.rows)), None)
        title = next((c.name for c in item_cols if c.kind == "text" and _TITLE.search(c.name)), None)
        text, skipped = [], []
        for c in item_cols:
            if c.name == image:
                continue
            if c.kind == "empty" or c.n_empty > 0.95 * c.n_values:
                skipped.append(f"{c.name} (empty)")
            elif c.numeric and not _YEAR.search(c.name):
                skipped.append(f"{c.name} (numbers)")
            elif c.url_share > 0.5 or c.path_share > 0.5:
                skipped.append(f"{c.name} (paths/URLs)")
            elif c.kind == "text" and c.n_unique <= 2 and c is not genres:
                skipped.append(f"{c.name} (two values or fewer)")
            else:
                text.append(c.name)
        if title is None:
            title = next((n for n in text if tm.column(n).kind == "text" and tm.column(n) is not genres), None)
        if title is not None and title in text:  # title first: it leads the text
            text = [title] + [n for n in text if n != title]
        return _ItemColumns(text, skipped, title, genres, image, image_why)

    def modalities(self, cols: _ItemColumns, asked: list[str] | None) -> list[str]:
        """Every modality the items file can feed, or the ones asked for (``--modalities``)."""
        have = (["text"] if cols.text else []) + (["image"] if cols.image else [])
        if not have:
            raise DataError(self.items_path, f"no text column and no image column found among {self.tm.names}; an item "
                            "needs content (a title, a description, ...) to be recommendable before anyone interacts with it")
        if asked:
            bad = [m for m in asked if m not in ("text", "image")]
            if bad:
                raise ValueError(f"modalities: unknown {bad}; use text and/or image")
            lack = [m for m in asked if m not in have]
            if lack:
                raise DataError(self.items_path, f"asked for {lack} but the items file has no "
                                + ("text column" if "text" in lack else f"usable image column ({cols.image_why})"))
            self.why_modalities = "asked for on the command line (--modalities)"
            return list(asked)
        self.why_modalities = ("text and image columns found" if len(have) == 2 else
                               f"text only: {cols.image_why}" if have == ["text"] else "image only: no text column")
        return have

    def item_decisions(self, cols: _ItemColumns, use: list[str]) -> None:
        if "text" in use:
            self.add("data.text_cols", cols.text, "text columns (joined into the prepared `text`); left out: "
                     + (", ".join(cols.skipped) if cols.skipped else "nothing"))
            self.add("data.title_col", cols.title, "shown as the item title" if cols.title else "no title-like column")
        else:
            self.add("data.text_cols", [], "image-only run")
        g = cols.genres
        self.add("data.genres_col", g.name if g else None,
                 (f"'|'-separated categories ({g.pipe_share:.0%} of the values are lists)" if g and g.pipe_share > 0
                  else "named like categories" if g else "no category column")
                 + ("; used by the masked-genre objective, plots and the page" if g else ""))
        used = cols.image if "image" in use else None
        self.add("data.image_col", used, cols.image_why if used else
                 (f"not used: {self.why_modalities}" if cols.image else cols.image_why))

    def users_file(self, user_col: str) -> None:
        """The fairness audit's keys (commented out while this graphrec lacks them)."""
        from graphrec.data.config import DataConfig

        tu = self.tu
        has_keys = {"users_file", "user_attribute_cols"} <= {f.name for f in dataclasses.fields(DataConfig)}
        ucol = user_col if user_col in tu.names else (_first(tu.names, _USER) or tu.names[0])
        attrs = [c.name for c in tu.columns if c.name != ucol and c.kind != "empty"
                 and 2 <= c.n_unique <= min(50, tu.rows / 2)]
        left = [c.name for c in tu.columns if c.name != ucol and c.name not in attrs]
        suffix = "" if has_keys else " (this graphrec has no such key yet: uncomment with a version that has it)"
        self.add("data.users_file", os.path.relpath(self.users_path.resolve(), self.root),
                 f"{tu.rows:,} users, columns {tu.names}" + suffix, has_keys)
        self.add("data.user_attribute_cols", attrs, "attributes with 2 to 50 distinct values, each shared by two users "
                 "or more on average (groups for a fairness audit)"
                 + (f"; left out: {left} (too many distinct values or empty)" if left else "") + suffix, has_keys)
        if ucol != user_col:
            self.notes.append(f"the users file names its user id {ucol!r}, the interactions {user_col!r}")

    def encoders(self, cols: _ItemColumns, use: list[str]) -> None:
        """One switch, both keys: encoders.enabled and model.modalities; a template naming its fields."""
        self.add("encoders.enabled", use, self.why_modalities)
        self.add("model.modalities", use, "the model's item tower reads the same modalities as encoders.enabled "
                 "(keep the two equal)")
        genres = cols.genres.name if cols.genres else None
        if "text" in use:
            from graphrec.data.fields import extra_text_fields

            extra = {c: f for f, c in extra_text_fields(cols.text, cols.title, genres).items()}
            fields = [("title", cols.title)] if cols.title else []
            fields += [(extra[n], n) for n in cols.text if n in extra and n != genres]
            if genres is not None and genres in cols.text:
                fields.append(("genres", genres))
            template = " ".join(f"{_label(f)}: {{{f}}}." for f, _ in fields)
            self.add("encoders.text.template", template, "one sentence per field, named so the text encoder sees what "
                     "each value is; a sentence whose field is empty is dropped; `|` in genres becomes ', '. Fields: "
                     + ", ".join(f"{{{f}}} <- column {c!r}" for f, c in fields))
        if genres is not None and use == ["text"]:
            self.notes.append("masked-genre objective: train.genre_hidden hides the text from the genre classifier (the "
                              "text contains the genres), so with text only it has no input and training switches it "
                              "off (loss_weights.genre = 0). To keep it, drop {genres} from encoders.text.template and "
                              "set train.genre_hidden: [] (genres are then predicted from the rest of the text), or add "
                              "images.")
        if len(use) == 1:
            self.notes.append("content_knn's text_weight mixes two modalities; with one it changes nothing")
