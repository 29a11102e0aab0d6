"""``graphrec init``: a run config proposed from the data files themselves.

Reads an interactions file, an items file and optionally a users file (CSV, or TSV with a
``.tsv`` suffix, as ``data.format: generic`` reads them), inspects every column (type,
distinct values, emptiness, ``|``-separated lists, image paths that exist) and proposes a
config: which columns are ids, rating (with a threshold on its scale) and timestamp; which
item columns are text, title, genres and image; a text template that names its fields; and
the modalities the data can feed (text-only when there is no usable image column). Every
decision comes with its reason, printed by the command and written as a comment above the key.

>>> info = inspect_table("ratings.csv")
>>> proposal = propose_config("ratings.csv", "movies.csv")
>>> proposal.decisions[0]          # Decision(key='data.user_col', value='userId', why='...')
>>> write_config(proposal, "configs/mydata.yaml")

Pure functions up to :func:`write_config`; nothing here trains or encodes. Modules, one job
each: :mod:`.inspection` (reading and describing the files), :mod:`.decisions` (what a
proposal holds), :mod:`.propose` (the rules), :mod:`.render` (YAML, the config file, the command).
"""

from graphrec.init_config.decisions import Decision, Proposal
from graphrec.init_config.inspection import (IMAGE_SUFFIXES, MAX_ROWS, ColumnInfo, TableInfo, inspect_column, inspect_table,
                                             read_raw)
from graphrec.init_config.propose import propose_config, rating_threshold
from graphrec.init_config.render import main, render_yaml, write_config

__all__ = ["IMAGE_SUFFIXES", "MAX_ROWS", "ColumnInfo", "Decision", "Proposal", "TableInfo", "inspect_column",
           "inspect_table", "main", "propose_config", "rating_threshold", "read_raw", "render_yaml", "write_config"]
