"""The Ray Data engine fills the same feature store as the single-process one (issue 15, part 3).

One local Ray instance with two CPUs is started for the module (and shut down by the fixture);
the deterministic fake encoders of tests/fakes.py travel to the actors with the driver's registry.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import fakes  # noqa: E402  (registers fake_text / fake_image)

from graphrec.config_base import ConfigError  # noqa: E402
from graphrec.encoders import EncodersConfig, encode_items, encode_items_local, encode_items_ray  # noqa: E402
from graphrec.encoders.store import FeatureStore  # noqa: E402

ray = pytest.importorskip("ray")

#: A hung Ray (no worker ever starts, a deadlocked shutdown) must fail the run, not stall CI:
#: past this many seconds the module's fixture dumps every thread's stack and exits pytest.
WATCHDOG_S = 300


@pytest.fixture(scope="module")
def local_ray():
    """Two worker CPUs, small object store, no dashboard; always shut down."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    try:
        if ray.is_initialized():
            ray.shutdown()
        # the actors unpickle the fake encoders' factories, so they must import tests/fakes.py too
        path = os.pathsep.join([str(Path(__file__).parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, logging_level="WARNING",
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "PYTHONPATH": path}})
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def items(tmp_path):
    df = fakes.make_items(tmp_path / "img")
    # more rows than blocks x workers, so both actors get work; every image kind is in the table
    extra = pd.DataFrame([{"item_id": f"x{k}", "title": f"Extra {k}", "text": f"extra film {k % 7} space crew",
                           "image_path": df.image_path.iloc[k % 3], "genres": "Drama", "plot": "more words",
                           "director": "D", "actors": "A", "year": "2001", "kind": "ok0"} for k in range(40)])
    return pd.concat([df, extra], ignore_index=True)


def cfg(**kw):
    return fakes.fake_config(**{"image.max_pixels": 20_000, **kw})


def test_ray_features_equal_single_process_and_store_is_reused(local_ray, items, tmp_path):
    local, rep_local = encode_items_local(items, cfg(), tmp_path / "local", progress=False)
    dist, rep = encode_items_ray(items, cfg(), tmp_path / "ray", num_workers=2, progress=False, rows_per_block=5)
    assert rep["engine"]["started_ray"] and rep["engine"]["workers"] == 2
    for m in ("text", "image"):
        a, b = local[m], dist[m]
        assert a.item_ids == b.item_ids == [str(i) for i in items.item_id]
        assert a.fingerprint == b.fingerprint
        torch.testing.assert_close(b.x, a.x, rtol=1e-6, atol=1e-6)
        assert torch.equal(a.mask, b.mask)
        assert rep["modalities"][m]["counts"] == rep_local["modalities"][m]["counts"]
        assert rep["modalities"][m]["encoded"] == len(items) and rep["engine"]["modalities"][m]["blocks"] > 2
        # the same store file, row for row (status, input keys, notes)
        sa, _ = FeatureStore(tmp_path / "local").load(m, a.meta["encoder"], a.fingerprint)
        sb, _ = FeatureStore(tmp_path / "ray").load(m, b.meta["encoder"], b.fingerprint)
        assert sa.item_ids == sb.item_ids and sa.input_keys == sb.input_keys and sa.status == sb.status
        assert sa.meta["notes"] == sb.meta["notes"] and sa.meta["counts"] == sb.meta["counts"]
        assert Path(rep["modalities"][m]["cache_file"]).name == Path(rep_local["modalities"][m]["cache_file"]).name
    assert set(dist["image"].meta["counts"]) >= {"ok", "converted", "unreadable", "missing", "too_large"}

    # a second call finds every row in the store: nothing is computed
    again, rep2 = encode_items_ray(items, cfg(), tmp_path / "ray", num_workers=2, progress=False)
    for m in ("text", "image"):
        assert rep2["modalities"][m]["cache"] == "hit" and rep2["modalities"][m]["encoded"] == 0
        torch.testing.assert_close(again[m].x, dist[m].x)
    assert rep2["engine"]["modalities"] == {}

    # new and changed rows only, through the config key the stage code uses (encode_items)
    more = items.copy()
    more.loc[0, "text"] = "a changed text"
    more.loc[0, "title"] = "Changed title"
    more = pd.concat([more, pd.DataFrame([{"item_id": "new1", "title": "Brand new", "text": "brand new", "image_path": "",
                                           "genres": "", "plot": "", "director": "", "actors": "", "year": ""}])],
                     ignore_index=True)
    text_only = cfg(engine="ray", ray_workers=2, enabled=["text"])
    part, rep3 = encode_items(more, text_only, tmp_path / "ray", progress=False)
    assert rep3["engine"]["name"] == "ray"
    assert rep3["modalities"]["text"]["encoded"] == 2 and rep3["engine"]["modalities"]["text"]["rows"] == 2
    fakes.LAST.pop("fake_text", None)
    loc, rep4 = encode_items(more, text_only.replace(engine="local"), tmp_path / "ray", progress=False)
    assert rep4["modalities"]["text"]["cache"] == "hit" and fakes.LAST["fake_text"].encoded == 0
    fresh, _ = encode_items_local(more, text_only, tmp_path / "fresh", progress=False)
    torch.testing.assert_close(loc["text"].x, fresh["text"].x, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(part["text"].x, fresh["text"].x, rtol=1e-6, atol=1e-6)


def test_batch_encoder_checks_the_driver_fingerprint(items, tmp_path):
    from graphrec.encoders.ray_engine import ROW, RayBatchEncoder

    c = cfg(enabled=["text"])
    ref, _ = encode_items_local(items, c, tmp_path / "g", progress=False)
    with pytest.raises(RuntimeError, match="fingerprint"):
        RayBatchEncoder("text", c.to_dict(), "fake_text", None, "not-the-driver-fingerprint")
    enc = RayBatchEncoder("text", c.to_dict(), "fake_text", None, ref["text"].fingerprint)
    out = enc(items.head(3).assign(**{ROW: np.array([7, 8, 9])}))
    assert out[ROW].tolist() == [7, 8, 9] and out["x"].shape == (3, 32)
    np.testing.assert_allclose(out["x"], ref["text"].x[:3].numpy(), rtol=1e-6, atol=1e-6)
    assert out["status"].tolist() == ["ok", "ok", "empty"]  # fakes: the third item has no text


def test_engine_config_is_validated():
    with pytest.raises(ConfigError, match="engine"):
        EncodersConfig.from_dict({"engine": "spark"})
    with pytest.raises(ConfigError, match="ray_workers"):
        EncodersConfig.from_dict({"ray_workers": 0})
    c = EncodersConfig.from_dict({"engine": "ray", "ray_address": "ray://head:10001", "ray_workers": 4})
    assert (c.engine, c.ray_address, c.ray_workers) == ("ray", "ray://head:10001", 4)


def test_cli_engine_flag_overrides_the_config_key(monkeypatch):
    from graphrec import cli, stages

    seen = {}

    def fake_encode(cfg, force=False, progress=True):
        seen["engine"] = cfg.encoders.engine
        return {}

    monkeypatch.setattr(stages, "stage_encode", fake_encode)
    assert cli.main(["encode", "--engine", "ray", "--no-progress"]) == 0 and seen["engine"] == "ray"
    assert cli.main(["encode", "--set", "encoders.engine=ray", "--engine", "local"]) == 0 and seen["engine"] == "local"
    assert cli.main(["encode"]) == 0 and seen["engine"] == "local"
