"""Test-time pose fusion: the fused features, flip-averaging and the canonical poses."""

import numpy as np
import pytest
import torch

from reidaug.bench.fusion import canonical_poses, flip_average, fuse, generate_views, l2n
from reidaug.errors import UserError


def _feats(n=6, k=3, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, k, d, generator=g)


def test_no_views_gives_the_plain_feature():
    plain, views = _feats(k=0)
    assert torch.allclose(fuse(plain, views), l2n(plain))


def test_views_equal_to_the_image_give_the_plain_feature():
    plain, _ = _feats()
    views = plain[:, None].repeat(1, 4, 1) * 3.0  # unnormalised copies
    for fusion in ("mean", "max"):
        assert torch.allclose(fuse(plain, views, fusion=fusion), l2n(plain), atol=1e-6)


def test_an_image_without_a_pose_keeps_its_plain_feature():
    plain, views = _feats()
    has = torch.tensor([True, False, True, True, False, True])
    out = fuse(plain, views, has)
    assert torch.allclose(out[~has], l2n(plain)[~has])
    assert not torch.allclose(out[has], l2n(plain)[has])
    # the fused ones are the normalised weighted sum of the normalised features
    hand = l2n(0.5 * l2n(plain) + l2n(views).sum(1))
    assert torch.allclose(fuse(plain, views, has, weight=0.5)[has], hand[has], atol=1e-6)


def test_flip_averaging_is_the_mean_of_the_normalised_features():
    a, b = torch.randn(4, 8), torch.randn(4, 8) * 10
    want = (l2n(a) + l2n(b)) / 2
    assert torch.allclose(flip_average(a, b), l2n(want), atol=1e-6)
    # rankings by cosine are those of the plain mean
    assert torch.allclose(flip_average(a, b) * want.norm(dim=1, keepdim=True), want, atol=1e-6)


def test_bad_fusion_options_are_refused():
    plain, views = _feats()
    with pytest.raises(UserError, match='unknown fusion "sum"'):
        fuse(plain, views, fusion="sum")
    with pytest.raises(UserError, match="--fusion-weight must be 0 or more"):
        fuse(plain, views, weight=-1)


def test_canonical_poses_are_distinct_and_the_kmeans_choice(synth_root):
    from reidaug.data import SyntheticMarket
    from reidaug.synthesis.poses import PoseBank, PoseSampler

    ds = SyntheticMarket(synth_root)
    bank = PoseBank.from_annotations([it.name for it in ds.train], ds.annotations("train"))
    idx = canonical_poses(bank, 8, seed=0)
    assert len(set(idx.tolist())) == 8
    assert (idx == canonical_poses(bank, 8, seed=0)).all()
    # the poses synthesize --strategy kmeans gives an image whose own pose is not in the bank
    assert sorted(PoseSampler(bank, 8, "kmeans", 0).sample("none.jpg", 0)) == sorted(idx.tolist())


class _Identity:
    """A generator that returns its input unchanged."""

    def final(self, condition, pose, source_keypoints=None, target_keypoints=None):
        assert pose.shape[0] == condition.shape[0] == target_keypoints.shape[0]
        return condition


def test_an_identity_generator_gives_views_equal_to_the_image():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 8, 3), dtype=np.uint8) for _ in range(5)]
    kps = np.full((5, 18, 2), -1)
    poses = rng.integers(0, 8, (3, 18, 2))
    views = generate_views(_Identity(), images, kps, poses, "pg2", batch_size=4)
    assert views.shape == (5, 3, 16, 8, 3)
    for i, im in enumerate(images):
        assert all((views[i, j] == im).all() for j in range(3))
