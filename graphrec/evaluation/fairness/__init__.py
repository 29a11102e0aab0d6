"""Fairness and exposure audit of top-K lists: who gets recommended, who is served well.

Pure functions over what :func:`graphrec.evaluation.protocol.evaluate` returns with
``per_user=True`` (an :class:`~graphrec.evaluation.protocol.EvalResult`: ``.topk[setting] =
(users, items)`` and ``.per_user[setting]``), the :class:`~graphrec.data.dataset.RecData` and
the optional user attribute table (:func:`graphrec.data.users.load_user_attributes`). All at
one cut-off K (``eval.beyond_k``, 20); popularity = distinct *train* users of an item
(:func:`graphrec.evaluation.beyond.item_popularity`), so nothing fitted reads test data.

Item side (per model and setting):

* **exposure share** of an item group = its share of the (non-padding) top-K slots, next to
  its **positive share** (share of the setting's test positives: the relevance it "deserves";
  Singh & Joachims, "Fairness of Exposure in Rankings", KDD 2018, ask exposure to follow
  relevance) and its candidate share. Groups: train-popularity quantiles of warm items +
  ``cold`` (:func:`~graphrec.evaluation.beyond.popularity_buckets`), ``warm``/``cold``, and
  genres. An item with several genres splits its slots (and positives) equally between them,
  so every grouping's shares sum to 1.
* **Gini of exposure** over the setting's candidates (items with no slot count as 0): 0 when
  every candidate gets the same number of slots, ``(n - 1) / n`` when one item gets them all
  (the exposure Gini of Fleder & Hosanagar, Management Science 2009).
* **cold share** of hybrid slots vs the cold share of hybrid test positives.

User side: Recall@K and NDCG@K per user group with percentile-bootstrap intervals
(:mod:`graphrec.evaluation.stats`): train-activity quantiles for every data set, and each user
attribute of the users file (ml1m-mm: gender, age band, occupation). Groups with fewer than
``min_group_users`` evaluated users are pooled into one ``other`` group (dropped if the pool is
still that small), which also keeps tiny groups from identifying anyone. The **gap** is the
best minus the worst group mean (pooled group excluded), with a bootstrap interval from
independent resamples of the two groups.

Popularity inherited by cold items: Spearman rank correlation, over the phase's cold items,
between a model's signal for each cold item and the mean train popularity of its
``k`` most content-similar warm items (content = the item features, per modality centred on
train items and L2-normalised, as :func:`graphrec.baselines.common.content_features`). Two
signals: ``rho_score`` (needs the scorer: each cold-setting user's scores of the cold items
standardised per user, then averaged per item) and ``rho_exposure`` (from the top-K lists
alone: the item's slots in the ``cold`` setting; ties when lists cover most cold items). The
reference ``rho_test_positives`` correlates the cold items' actual test positives with the
same neighbour popularity: a model far above it copies popularity more than the users do.

The audit holds group aggregates only (counts, means, intervals); never a per-user value.

Modules, one job each: :mod:`.exposure` (item side), :mod:`.groups` (user side),
:mod:`.inheritance` (cold popularity inheritance), :mod:`.curves` (re-ranking curves and the
lambdas chosen on validation), :mod:`.report` (``fairness.json`` and the Markdown section),
:mod:`.audit` (:func:`fairness_audit` and the evaluation-stage driver :func:`run_fairness`).
"""

from graphrec.evaluation.fairness.audit import fairness_audit, run_fairness
from graphrec.evaluation.fairness.curves import CHOICES, choose_lambdas, rerank_curve
from graphrec.evaluation.fairness.exposure import (NO_GENRE, OTHER_ITEMS, exposure_counts, gini, group_exposure,
                                                   item_groupings, setting_exposure)
from graphrec.evaluation.fairness.groups import (USER_METRICS, activity_groups, attribute_groups, group_quality,
                                                 user_groupings)
from graphrec.evaluation.fairness.inheritance import (centred_content, cold_inheritance, mean_item_scores,
                                                      neighbour_popularity, spearman)
from graphrec.evaluation.fairness.report import fairness_markdown, write_fairness

__all__ = [
    "CHOICES", "NO_GENRE", "OTHER_ITEMS", "USER_METRICS", "activity_groups", "attribute_groups", "centred_content",
    "choose_lambdas", "cold_inheritance", "exposure_counts", "fairness_audit", "fairness_markdown", "gini",
    "group_exposure", "group_quality", "item_groupings", "mean_item_scores", "neighbour_popularity", "rerank_curve",
    "run_fairness", "setting_exposure", "spearman", "user_groupings", "write_fairness",
]
