"""Cold-start robustness to missing modalities: cold metrics with one modality removed from the cold items."""

from __future__ import annotations

from typing import Sequence

from graphrec.data.dataset import RecData
from graphrec.evaluation.protocol import evaluate


def missing_modality_eval(model, data: RecData, phase: str = "test", ks: Sequence[int] = (20,),
                          modalities: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Cold-setting metrics with each modality removed from the cold items, and with all present.

    For each modality ``m`` the cold items (validation and test) lose ``m`` (zero features,
    mask False) in a copy of ``data`` (:func:`graphrec.augment.with_modality_removed`); the
    model is re-attached to those features with ``set_graph`` (its train-fitted statistics
    only depend on warm items, which are untouched), evaluated in the ``cold`` setting, and
    re-attached to the original features afterwards.

    Returns:
        ``{"both": {...}, "no_<m>": {...}}`` with the ``cold`` metrics of :func:`evaluate`
        and ``n_cold_items_affected``.
    """
    from graphrec.augment import with_modality_removed

    from graphrec.devices import module_device, module_to

    mods = list(modalities or model.modalities)
    names = list(dict.fromkeys(model.modalities + model.knn_modalities))
    device = module_device(model)

    def attach(d: RecData) -> None:
        model.set_graph(d.train, {m: (d.features[m].x, d.features[m].mask) for m in names})
        module_to(model, device)  # set_graph attaches CPU tensors: back to the model's device
        model.eval()

    out: dict[str, dict[str, float]] = {}
    res = evaluate(model, data, phase=phase, settings=("cold",), ks=ks)
    out["both"] = dict(res.get("cold", {}))
    try:
        for m in mods:
            d2 = with_modality_removed(data, m)
            attach(d2)  # deterministic; restored below
            r = evaluate(model, d2, phase=phase, settings=("cold",), ks=ks)
            out[f"no_{m}"] = {**r.get("cold", {}), "n_cold_items_affected": d2.features[m].meta["removed_items"]}
    finally:
        attach(data)
    return out
