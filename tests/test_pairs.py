from pathlib import Path

import numpy as np
import pytest
import torch

from reidaug.data import Market1501, PairDataset, SyntheticMarket, pg2_test_pairs, train_pairs
from reidaug.data import keypoints as K
from reidaug.data.market1501 import Item
from reidaug.data.pairs import stats
from reidaug.data.pose import render_heatmaps


def _items(specs):
    return [Item(Path(f"{n}"), p, 0, p) for n, p in specs]


def test_train_pair_rules():
    good = np.zeros((18, 2), dtype=np.int64) + 10
    bad = good.copy()
    bad[K.KP["Lhip"]] = -1
    names = [
        ("a.jpg", 5),
        ("b.jpg", 5),
        ("c.jpg", 5),
        ("d.jpg", 5),
        ("e.jpg", 7),
        ("j.jpg", -1),
        ("k.jpg", -1),
        ("z.jpg", 0),
        ("y.jpg", 0),
    ]
    ann = {n: good for n, _ in names}
    ann["d.jpg"] = bad  # invalid pose: out
    pairs = train_pairs(_items(names), ann)
    # ids -1 and 0 excluded; id 7 has one image; id 5 has 3 valid images -> 3*2 ordered pairs
    assert sorted(pairs) == sorted((f"{a}.jpg", f"{b}.jpg") for a in "abc" for b in "abc" if a != b)


def test_pg2_test_pairs_are_seeded_and_same_id(synth_root):
    ds = SyntheticMarket(synth_root)
    a = pg2_test_pairs(ds.gallery, ds.annotations("gallery"), n=50, seed=3)
    b = pg2_test_pairs(ds.gallery, ds.annotations("gallery"), n=50, seed=3)
    c = pg2_test_pairs(ds.gallery, ds.annotations("gallery"), n=50, seed=4)
    assert a == b and a != c and len(a) == 50
    for x, y in a:
        assert x != y and x.split("_")[0] == y.split("_")[0]


def test_pair_dataset_item(synth_root):
    ds = SyntheticMarket(synth_root)
    pairs = train_pairs(ds.train, ds.annotations("train"))
    item = PairDataset(ds, pairs, "train", source_pose=True)[3]
    assert item["condition"].shape == item["target"].shape == (3, 128, 64)
    assert item["target_pose"].shape == item["source_pose"].shape == (18, 128, 64)
    assert item["target_mask"].shape == (1, 128, 64)
    for k in ("condition", "target", "target_pose"):
        assert item[k].min() >= -1 and item[k].max() <= 1
    assert set(item["target_mask"].unique().tolist()) == {0.0, 1.0}
    a, b = pairs[3]
    assert int(item["pid"]) == int(b[:4]) == int(a[:4])
    expected = render_heatmaps(ds.annotations("train")[b])
    np.testing.assert_array_equal(item["target_pose"].numpy(), expected)


def test_flip_moves_images_and_keypoints_together(synth_root):
    ds = SyntheticMarket(synth_root)
    pairs = train_pairs(ds.train, ds.annotations("train"))[:10]
    plain = PairDataset(ds, pairs, "train")
    flipped = PairDataset(ds, pairs, "train", flip=True)
    assert len(flipped) == 2 * len(plain)
    for i in range(len(pairs)):
        p, same, f = plain[i], flipped[i], flipped[i + len(pairs)]
        assert torch.equal(same["target"], p["target"])
        assert torch.equal(f["target"], p["target"].flip(-1))
        assert torch.equal(f["condition"], p["condition"].flip(-1))
        # mirrored heatmaps with left and right channels swapped
        assert torch.equal(f["target_pose"], p["target_pose"].flip(-1)[list(K.FLIP_PERMUTATION)])
        # PG2 truncates intermediate limb points with int(), which is not mirror-symmetric
        assert (f["target_mask"] != p["target_mask"].flip(-1)).float().mean() < 0.03
    assert not torch.equal(flipped[len(pairs)]["target_pose"], plain[0]["target_pose"].flip(-1))


@pytest.mark.realdata
def test_real_market_train_pairs(real_market):
    ds = Market1501(real_market)
    pairs = train_pairs(ds.train, ds.annotations("train"))
    assert len(pairs) == 263_632
    groups = {}
    for it in ds.train:
        kps = ds.annotations("train")[it.name]
        if K.is_valid_pose(kps):
            groups.setdefault(it.raw_pid, []).append(it.name)
    assert sum(len(g) for g in groups.values()) == 12_116 and len(groups) == 745
    assert stats(ds.test_pairs())["pairs"] == 12_000
