import numpy as np
import pytest
from skimage.morphology import dilation, erosion

from reidaug.data import keypoints as K
from reidaug.data.pose import limb_points, pose_mask, render_heatmaps


def skeleton() -> np.ndarray:
    """A hand-made standing figure in a 128x64 frame."""
    k = np.full((18, 2), -1)
    pts = {
        "nose": (14, 32),
        "neck": (24, 32),
        "Rsho": (26, 22),
        "Relb": (44, 20),
        "Rwri": (60, 20),
        "Lsho": (26, 42),
        "Lelb": (44, 44),
        "Lwri": (60, 44),
        "Rhip": (64, 26),
        "Rkne": (90, 26),
        "Rank": (116, 26),
        "Lhip": (64, 38),
        "Lkne": (90, 38),
        "Lank": (116, 38),
        "Reye": (11, 29),
        "Leye": (11, 35),
        "Rear": (12, 26),
    }
    for n, p in pts.items():
        k[K.KP[n]] = p
    return k


def test_pg2_heatmap_is_a_disk_in_minus_one_one():
    k = skeleton()
    hm = render_heatmaps(k)
    assert hm.shape == (18, 128, 64) and hm.dtype == np.float32
    assert set(np.unique(hm)) == {-1.0, 1.0}
    neck = hm[K.KP["neck"]]
    # radius-4 disk of integer points: 49 pixels
    assert (neck == 1).sum() == 49
    assert (
        neck[24, 32] == 1
        and neck[24 + 4, 32] == 1
        and neck[24 + 5, 32] == -1
        and neck[27, 35] == -1
    )
    # a missing keypoint gives an empty (all -1) channel
    assert (hm[K.KP["Lear"]] == -1).all()


def test_gaussian_heatmap():
    hm = render_heatmaps(skeleton(), mode="gaussian", sigma=2.0)
    assert hm[K.KP["neck"], 24, 32] == pytest.approx(1.0)
    assert hm[K.KP["neck"], 24, 34] == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    assert (hm[K.KP["Lear"]] == 0).all()


def test_batched_equals_single():
    a, b = skeleton(), K.flip_keypoints(skeleton(), 64)
    both = render_heatmaps(np.stack([a, b]))
    np.testing.assert_array_equal(both[1], render_heatmaps(b))
    np.testing.assert_array_equal(pose_mask(np.stack([a, b]))[0], pose_mask(a))


def reference_mask(k: np.ndarray, h=128, w=64, r=4) -> np.ndarray:
    """PG2's mask written as the official code loops: stamp a disk point by point."""
    m = np.zeros((h, w), dtype=np.uint8)

    def stamp(y, x):
        y, x = int(y), int(x)
        for i in range(-r, r + 1):
            for j in range(-r, r + 1):
                if i * i + j * j <= r * r and 0 <= y + i < h and 0 <= x + j < w:
                    m[y + i, x + j] = 1

    for a, b in K.LIMBS:
        if (k[a] < 0).any() or (k[b] < 0).any():
            continue
        (y0, x0), (y1, x1) = k[a], k[b]
        stamp(y0, x0)
        stamp(y1, x1)
        n = int(np.hypot(y1 - y0, x1 - x0) / r)
        for i in range(1, n):
            stamp(y0 + (y1 - y0) * i / n, x0 + (x1 - x0) * i / n)
    sq = np.ones((5, 5), bool)
    return erosion(dilation(m, sq), sq).astype(np.float32)


def test_pose_mask_matches_the_pointwise_reference():
    k = skeleton()
    np.testing.assert_array_equal(pose_mask(k), reference_mask(k))
    m = pose_mask(k)
    assert m[45, 32] == 1  # torso, filled by the diagonals and closing
    assert m[100, 26] == 1  # right shin
    assert m[5, 5] == 0 and m[120, 60] == 0
    assert len(K.LIMBS) == 23


def test_pose_mask_of_missing_pose_is_empty():
    assert pose_mask(np.full((18, 2), -1)).sum() == 0
    assert limb_points(np.full((18, 2), -1)).shape == (0, 2)
