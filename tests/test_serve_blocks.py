"""BlockedIndex: warm and cold items searched in their own columns give the full index's results."""

import pytest
import torch

from graphrec.serve.blocks import BlockedIndex
from graphrec.serve.index import ItemIndex


def catalogue(n_warm=300, n_cold=80, width=40, seed=0):
    """Warm rows use columns 10-19 and 20-29, cold rows 0-9 and 20-39 (GraphRec's layout, small)."""
    g = torch.Generator().manual_seed(seed)
    warm_cols, cold_cols = torch.arange(10, 30), torch.cat([torch.arange(0, 10), torch.arange(20, 40)])
    emb = torch.zeros(n_warm + n_cold, width)
    emb[:n_warm, warm_cols] = torch.randn(n_warm, 20, generator=g)
    emb[n_warm:, cold_cols] = torch.randn(n_cold, 30, generator=g)
    perm = torch.randperm(n_warm + n_cold, generator=g)  # warm and cold interleaved in the catalogue
    names = ["warm"] * n_warm + ["cold"] * n_cold
    ids = [f"i{j}" for j in range(len(perm))]
    q = torch.randn(7, width, generator=g)
    return ids, emb[perm], [names[p] for p in perm.tolist()], {"warm": warm_cols, "cold": cold_cols}, q


def test_blocked_search_equals_the_full_index_with_exclusions_and_padding():
    ids, emb, names, blocks, q = catalogue()
    full, blk = ItemIndex(ids, emb), BlockedIndex(ids, emb, blocks, names, "cold")
    ex = [list(range(0, 380, 3)), [], [5], list(range(370)), [], [1, 2, 3], []]
    for k in (1, 20, 400):
        s1, p1 = full.search(q, k, ex)
        s2, p2 = blk.search(q, k, ex)
        assert torch.equal(p1, p2)
        torch.testing.assert_close(s1, s2)
    assert (p2[3, 10:] == -1).all()  # 370 of 380 excluded: padded
    torch.testing.assert_close(blk.emb, emb)
    assert blk.position("i7") == 7 and len(blk) == 380 and blk.width == 40


def test_added_items_join_the_cold_block_and_are_searched_exactly():
    ids, emb, names, blocks, q = catalogue()
    new = torch.zeros(5, 40)
    new[:, blocks["cold"]] = 3.0 * torch.randn(5, 30, generator=torch.Generator().manual_seed(1))
    full, blk = ItemIndex(ids, emb), BlockedIndex(ids, emb, blocks, names, "cold")
    full.add([f"n{j}" for j in range(5)], new)
    blk.add([f"n{j}" for j in range(5)], new)
    s1, p1 = full.search(q, 30, [[380, 1]] * 7)
    s2, p2 = blk.search(q, 30, [[380, 1]] * 7)
    assert torch.equal(p1, p2) and blk.position("n4") == 384 and (p2 != 380).all()
    torch.testing.assert_close(blk.emb, full.emb)
    # every item's score and any item's vector without the full-width matrix (re-ranking, audience, add-items)
    blk._emb = None
    torch.testing.assert_close(blk.scores(q), full.scores(q))
    torch.testing.assert_close(blk.vectors([384, 0, 17, 381]), full.vectors([384, 0, 17, 381]))
    c = torch.randn(40, 40, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(blk.quadratic(c), full.quadratic(c))
    assert blk._emb is None  # none of them assembled it
    with pytest.raises(ValueError, match="already in the index"):
        blk.add(["n0"], new[:1])
    bad = torch.ones(1, 40)  # nonzero in the warm-only columns: it would lose score in the cold block
    with pytest.raises(ValueError, match="row 0 of block 'cold' has nonzero values outside"):
        blk.add(["n9"], bad)
    with pytest.raises(ValueError, match="block 'hot'"):
        blk.add(["n9"], new[:1], block="hot")


def test_each_block_chooses_its_backend_by_its_own_size():
    pytest.importorskip("faiss")
    ids, emb, names, blocks, q = catalogue(n_warm=300, n_cold=40)
    blk = BlockedIndex(ids, emb, blocks, names, "cold", backend="auto", ann_min_items=100)
    assert blk.active_backend == "warm=faiss-hnsw32,cold=exact"
    flat = BlockedIndex(ids, emb, blocks, names, "cold", backend="faiss")  # exact IndexFlatIP per block
    s1, p1 = ItemIndex(ids, emb).search(q, 20, [[0, 1, 2]] * 7)
    s2, p2 = flat.search(q, 20, [[0, 1, 2]] * 7)
    assert torch.equal(p1, p2)
    torch.testing.assert_close(s1, s2, rtol=1e-5, atol=1e-5)


def test_bad_block_names_are_reported():
    ids, emb, names, blocks, _ = catalogue(n_warm=5, n_cold=3)
    with pytest.raises(ValueError, match="block 'hot' is not one of"):
        BlockedIndex(ids, emb, blocks, ["hot"] + names[1:], "cold")
    emb[0] = 1.0
    with pytest.raises(ValueError, match="nonzero values outside"):
        BlockedIndex(ids, emb, blocks, names, "cold")


def test_blocks_are_gathered_in_row_chunks_and_a_bad_row_is_named_by_its_catalogue_row(monkeypatch):
    import graphrec.serve.blocks as blocks_mod

    ids, emb, names, blocks, q = catalogue()
    whole = BlockedIndex(ids, emb, blocks, names, "cold")
    monkeypatch.setattr(blocks_mod, "_CHUNK", 7)  # many chunks, boundaries inside both blocks
    chunked = BlockedIndex(ids, emb, blocks, names, "cold")
    for b in blocks:
        assert torch.equal(chunked.parts[b].emb, whole.parts[b].emb)
    assert torch.equal(chunked.search(q, 25)[1], whole.search(q, 25)[1])
    bad = emb.clone()
    warm_rows = [r for r, n in enumerate(names) if n == "warm"]
    bad[warm_rows[40], 0] = 1.0  # column 0 is cold-only
    with pytest.raises(ValueError, match=f"row {warm_rows[40]} of block 'warm'"):
        BlockedIndex(ids, bad, blocks, names, "cold")


def test_from_blocks_builds_the_same_index_without_the_full_width_matrix():
    ids, emb, names, blocks, q = catalogue()
    parts = {}
    for b in ("warm", "cold"):
        rows = [r for r, n in enumerate(names) if n == b]
        parts[b] = ([ids[r] for r in rows], emb[rows][:, blocks[b]])
    blk = BlockedIndex.from_blocks(40, blocks, parts, "cold")
    order = parts["warm"][0] + parts["cold"][0]  # global positions: the warm block's items, then the cold block's
    reordered = ItemIndex(order, emb[[ids.index(i) for i in order]])
    ex = [[0, 5, 300], [], [301]] + [[]] * 4
    s1, p1 = reordered.search(q, 30, ex)
    s2, p2 = blk.search(q, 30, ex)
    assert torch.equal(p1, p2) and blk.position(order[300]) == 300 and len(blk) == 380
    torch.testing.assert_close(s1, s2)
    torch.testing.assert_close(blk.emb, reordered.emb)
    one = BlockedIndex.from_blocks(40, blocks, {"warm": parts["warm"]}, "cold")  # no cold items yet: add them later
    one.add(["n0"], emb[[names.index("cold")]])
    assert len(one) == 301 and one.position("n0") == 300 and len(one.parts["cold"]) == 1
    with pytest.raises(ValueError, match=r"block 'cold' has 80 ids and vectors of shape \(80, 20\), expected \(80, 30\)"):
        BlockedIndex.from_blocks(40, blocks, {"cold": (parts["cold"][0], parts["warm"][1][:80])}, "cold")
    with pytest.raises(ValueError, match="item id 'i0' is in more than one place"):
        BlockedIndex.from_blocks(40, blocks, {"warm": (["i0"], parts["warm"][1][:1]), "cold": (["i0"], parts["cold"][1][:1])}, "cold")
    with pytest.raises(ValueError, match="block 'hot' is not one of"):
        BlockedIndex.from_blocks(40, blocks, {"hot": parts["warm"]}, "cold")
