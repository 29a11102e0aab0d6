"""Report notes for rows that are degenerate by construction (graphrec.evaluation.explain)."""

import torch

from graphrec.evaluation.explain import degenerate_row_notes, ranks_cold_below_warm


def _m(v, n_users=10):
    return {"recall@20": v, "ndcg@20": v / 2, "hit@20": v, "precision@20": v / 20, "mrr@20": v / 3, "n_users": n_users}


RESULTS = {
    "graphrec": {"cold": _m(0.3), "warm": _m(0.25), "hybrid": _m(0.2), "cold_full": _m(0.1)},
    "popularity": {"cold": _m(0.05), "warm": _m(0.1), "hybrid": _m(0.08), "cold_full": _m(0.0)},
    "mf_bpr": {"warm": _m(0.2)},
    "heater": {"cold": _m(0.12), "warm": _m(0.19), "hybrid": _m(0.15), "cold_full": _m(0.0)},
    "aldi": {"cold": _m(0.15), "warm": _m(0.2), "hybrid": _m(0.17), "cold_full": _m(0.0)},
}


def test_cold_full_zero_and_teacher_twin_are_explained():
    notes = degenerate_row_notes(RESULTS, teachers={"aldi": "mf_bpr", "heater": "mf_bpr"})
    assert set(notes) == {"popularity", "heater", "aldi"}
    assert "cold_full is 0 by construction" in notes["popularity"] and "cold row is not 0" in notes["popularity"]
    assert "identical to its teacher mf_bpr" in notes["aldi"] and "cold_full is 0" in notes["aldi"]
    assert "teacher" not in notes["heater"]  # heater's warm row differs from mf_bpr's
    assert "graphrec" not in notes and "mf_bpr" not in notes


def test_twins_without_known_teachers_are_noted_once():
    notes = degenerate_row_notes({"mf_bpr": RESULTS["mf_bpr"], "aldi": {"warm": _m(0.2)}, "x": {"warm": _m(0.21)}})
    assert list(notes) == ["aldi"] and "identical to mf_bpr" in notes["aldi"]


def test_nothing_to_explain_when_rows_are_ordinary_or_empty():
    assert degenerate_row_notes({"graphrec": RESULTS["graphrec"]}) == {}
    assert degenerate_row_notes({"p": {"cold_full": _m(0.0, n_users=0)}}) == {}  # no users: not degenerate
    almost = {"a": {"warm": _m(0.2)}, "b": {"warm": {**_m(0.2), "mrr@20": 0.2 / 3 + 1e-6}}}
    assert degenerate_row_notes(almost) == {}  # equal in some metrics only


def test_confirmed_from_scores():
    notes = degenerate_row_notes({"p": {"cold_full": _m(0.0)}}, cold_below_warm={"p": True})
    assert "every cold item scores below every warm item" in notes["p"]
    warm = torch.tensor([True, True, False, False])
    scores = torch.tensor([[0.9, 0.5, 0.1, 0.2], [0.3, 0.6, 0.0, 0.29]])
    assert ranks_cold_below_warm(scores, warm, ~warm)
    scores[1, 3] = 0.31
    assert not ranks_cold_below_warm(scores, warm, ~warm)
    assert not ranks_cold_below_warm(scores, warm, torch.zeros(4, dtype=torch.bool))
