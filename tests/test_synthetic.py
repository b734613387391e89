import hashlib

import numpy as np

from reidaug.data import SyntheticMarket, make_synthetic, train_pairs
from reidaug.data import keypoints as K
from reidaug.data.check import check_dataset
from reidaug.data.pairs import load_image
from reidaug.data.pose import pose_mask


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic(tmp_path):
    make_synthetic(tmp_path / "a", ids=3, seed=5, test_pairs=10)
    make_synthetic(tmp_path / "b", ids=3, seed=5, test_pairs=10)
    make_synthetic(tmp_path / "c", ids=3, seed=6, test_pairs=10)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_layout_and_counts(synth_root):
    ds = SyntheticMarket(synth_root)
    rep = check_dataset(ds)
    tr, q, g = rep.splits
    assert tr.ids == 12 and q.ids == 12 and 6 >= tr.cameras >= 4
    assert rep.train_pairs > 300 and rep.test_pairs == 120
    assert rep.junk_images > 0 and 0 in {it.pid for it in ds.gallery}
    for it in ds.train[:5]:
        assert load_image(it.path).shape == (128, 64, 3)


def test_poses_vary_and_lie_on_the_figure(synth_root):
    ds = SyntheticMarket(synth_root)
    ann = ds.annotations("train")
    kps = K.stack([it.name for it in ds.train], ann)
    valid = kps[K.is_valid_pose(kps)]
    # shoulder width spans front/back (wide) and side (narrow) views; ankles move when walking
    width = np.abs(valid[:, K.KP["Rsho"], 1] - valid[:, K.KP["Lsho"], 1])
    assert width.min() <= 8 and width.max() >= 18
    assert (valid[:, K.KP["Rsho"], 1] < valid[:, K.KP["Lsho"], 1]).any()  # front
    assert (valid[:, K.KP["Rsho"], 1] > valid[:, K.KP["Lsho"], 1] + 8).any()  # back
    # the figure is drawn where the keypoints say: pose-masked pixels differ from the background
    it = next(i for i in ds.train if K.is_valid_pose(ann[i.name]))
    img = load_image(it.path).astype(np.float32)
    m = pose_mask(ann[it.name]).astype(bool)
    other = next(
        j
        for j in ds.train
        if j.camid == it.camid and j.pid != it.pid and K.is_valid_pose(ann[j.name])
    )
    m_other = pose_mask(ann[other.name]).astype(bool)
    bg_only = ~m & ~m_other
    img2 = load_image(other.path).astype(np.float32)
    fg_change = np.abs(img - img2)[m ^ m_other].mean()
    bg_change = np.abs(img - img2)[bg_only].mean()
    assert fg_change > 2 * bg_change


def test_identity_look_survives_pose_changes(synth_root):
    """Torso colour is closer within an id than across ids: appearance must be transferred."""
    ds = SyntheticMarket(synth_root)
    ann = ds.annotations("train")
    feats, pids = [], []
    for it in ds.train:
        k = ann[it.name]
        if not K.is_valid_pose(k):
            continue
        img = load_image(it.path).astype(np.float32)
        m = pose_mask(k).astype(bool)
        feats.append(img[m].mean(axis=0) / (img[~m].mean(axis=0) + 1))  # lighting-normalised
        pids.append(it.pid)
    f, p = np.array(feats), np.array(pids)
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)
    same = p[:, None] == p[None]
    off = ~np.eye(len(p), dtype=bool)
    assert d[same & off].mean() < 0.6 * d[~same].mean()


def test_train_pairs_exist_for_most_ids(synth_root):
    ds = SyntheticMarket(synth_root)
    pairs = train_pairs(ds.train, ds.annotations("train"))
    assert len({a[:4] for a, _ in pairs}) >= 10
