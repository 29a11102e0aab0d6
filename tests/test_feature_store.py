"""Feature store: cache hits, incremental re-encoding, fingerprints, atomic writes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakes  # noqa: E402

from graphrec.encoders import FeatureStore, encode_items  # noqa: E402
from graphrec.encoders import store as store_mod  # noqa: E402


@pytest.fixture
def items(tmp_path):
    return fakes.make_items(tmp_path / "img")


def run(items, cache, **over):
    cfg = fakes.fake_config(**{"image.max_pixels": 20000, **over})
    feats, report = encode_items(items, cfg, cache, progress=False)
    return feats, report, fakes.LAST["fake_text"], fakes.LAST["fake_image"]


def test_second_run_is_a_cache_hit(items, tmp_path):
    f1, r1, t1, i1 = run(items, tmp_path / "c")
    assert t1.encoded == 14 and i1.encoded == 9  # everything with an input was encoded
    f2, r2, t2, i2 = run(items, tmp_path / "c")
    assert t2.calls == 0 and i2.calls == 0
    for m in ("text", "image"):
        assert r2["modalities"][m]["cache"] == "hit" and r2["modalities"][m]["cache_hits"] == len(items)
        assert r2["modalities"][m]["counts"] == r1["modalities"][m]["counts"]
        assert r2["modalities"][m]["examples"] == r1["modalities"][m]["examples"]
        assert torch.equal(f1[m].x, f2[m].x) and torch.equal(f1[m].mask, f2[m].mask)
        assert f1[m].fingerprint == f2[m].fingerprint and f2[m].meta["created_at"] == f1[m].meta["created_at"]


def test_new_items_and_changed_inputs_reencode_only_those(items, tmp_path):
    cache = tmp_path / "c"
    f_all, *_ = run(items, cache)
    first, rest = items.iloc[:5], items.iloc[5:]
    _, r, t, i = run(first, cache)  # subset: all cached
    assert t.calls == 0 and i.calls == 0 and r["modalities"]["text"]["cache"] == "hit"
    # new ids: only they are encoded
    new = rest.iloc[:2].copy()
    new["item_id"] = ["n1", "n2"]
    both = pd.concat([first, new], ignore_index=True)
    f, r, t, i = run(both, cache)
    assert r["modalities"]["text"]["encoded"] == 2 and t.encoded == 2 and r["modalities"]["text"]["cache"] == "partial"
    assert torch.equal(f["text"].x[:5], f_all["text"].x[:5])
    assert torch.equal(f["text"].x[5:], f_all["text"].x[5:7])  # same content, new ids
    # a changed text re-encodes that item only; the image store is untouched
    changed = both.copy()
    changed.loc[0, "plot"] = "a completely different story"
    f, r, t, i = run(changed, cache)
    assert t.encoded == 1 and i.calls == 0
    assert not torch.equal(f["text"].x[0], f_all["text"].x[0])
    # a replaced poster file re-encodes that image only
    p = Path(both.loc[1, "image_path"])
    from PIL import Image

    Image.new("RGB", (20, 30), (250, 0, 0)).save(p, format="JPEG")
    os.utime(p, ns=(1, 1))  # different mtime even on coarse clocks
    f, r, t, i = run(changed, cache)
    assert i.encoded == 1 and t.calls == 0 and r["modalities"]["image"]["encoded"] == 1
    # the store kept the union of everything encoded with this fingerprint
    sf, _ = FeatureStore(cache).load("text", "fake_text", f["text"].fingerprint)
    assert set(items.item_id) | {"n1", "n2"} <= set(sf.item_ids)


def test_moved_or_recopied_images_stay_cached(items, tmp_path):
    import shutil

    cache = tmp_path / "c"
    f1, *_ = run(items, cache)
    paths = items["image_path"].fillna("").astype(str)
    src = Path(paths[paths != ""].iloc[0]).parent
    moved = tmp_path / "elsewhere"
    shutil.copytree(src, moved)  # same bytes, new paths
    for f in moved.iterdir():
        os.utime(f, ns=(2, 2))  # and new mtimes
    items2 = items.copy()
    items2["image_path"] = [str(moved / Path(p).relative_to(src)) if p and Path(p).is_relative_to(src) else p
                            for p in paths]
    assert (items2["image_path"] != paths).any()
    f2, r2, _, i2 = run(items2, cache)
    assert i2.calls == 0 and r2["modalities"]["image"]["cache"] == "hit"
    assert torch.equal(f1["image"].x, f2["image"].x)


def test_other_template_or_weights_means_other_fingerprint(items, tmp_path):
    cache = tmp_path / "c"
    f1, *_ = run(items, cache)
    f2, r2, t2, _ = run(items, cache, **{"text.template": "{title}"})
    assert f2["text"].fingerprint != f1["text"].fingerprint and t2.encoded == 14
    assert r2["modalities"]["image"]["cache"] == "hit"
    assert len(list(cache.glob("text__fake_text__*.pt"))) == 2


def test_interrupted_write_leaves_previous_file_and_no_temp(items, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    f1, r1, *_ = run(items, cache)
    path = Path(r1["modalities"]["text"]["cache_file"])
    before = path.read_bytes()

    def exploding_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise KeyboardInterrupt("simulated kill during write")

    monkeypatch.setattr(store_mod.torch, "save", exploding_save)
    more = items.copy()
    more.loc[0, "plot"] = "changed"
    with pytest.raises(KeyboardInterrupt):
        run(more, cache)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
    _, r, t, _ = run(items, cache)  # the old file is still trusted and complete
    assert r["modalities"]["text"]["cache"] == "hit"


def test_corrupt_cache_file_is_ignored_and_reported(items, tmp_path):
    cache = tmp_path / "c"
    f1, r1, *_ = run(items, cache)
    path = Path(r1["modalities"]["image"]["cache_file"])
    path.write_bytes(path.read_bytes()[:100])  # truncated by something outside graphrec
    f2, r2, t, i = run(items, cache)
    rep = r2["modalities"]["image"]
    assert rep["cache"] == "miss" and "cache_ignored" in rep and i.encoded == 9
    assert torch.equal(f1["image"].x, f2["image"].x)
    _, r3, _, i3 = run(items, cache)
    assert r3["modalities"]["image"]["cache"] == "hit" and i3.calls == 0


def test_features_follow_request_order(items, tmp_path):
    cache = tmp_path / "c"
    f1, *_ = run(items, cache)
    rev = items.iloc[::-1].reset_index(drop=True)
    f2, r2, t, i = run(rev, cache)
    assert t.calls == 0 and f2["text"].item_ids == list(rev.item_id)
    assert torch.equal(f2["text"].x, f1["text"].x.flip(0)) and torch.equal(f2["image"].mask, f1["image"].mask.flip(0))
