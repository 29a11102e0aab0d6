"""Serving: load a trained run, recommend, add new items from content alone."""

from graphrec.serve.index import ItemIndex
from graphrec.serve.recommender import Recommender, canonical_new_items

__all__ = ["ItemIndex", "Recommender", "canonical_new_items"]
