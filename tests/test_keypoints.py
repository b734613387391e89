import numpy as np
import pytest

from reidaug.data import keypoints as K
from reidaug.errors import UserError

ROW = (
    "0002_c1s1_000451_03.jpg: [8, 23, 23, 43, 60, 23, 43, 60, 64, 92, 118, 65, 89, 108, 5, 6, 7, 8]"
    ": [39, 37, 20, 12, 8, 53, 59, 53, 22, 24, 24, 43, 43, 45, 36, 42, 31, -1]"
)


def test_parse_and_format_row_round_trip():
    name, kps = K.parse_row(ROW)
    assert name == "0002_c1s1_000451_03.jpg"
    assert kps.shape == (18, 2)
    assert tuple(kps[K.KP["neck"]]) == (23, 37)
    # a point with x missing is missing altogether
    assert tuple(kps[K.KP["Lear"]]) == (-1, -1)  # point 17: OpenPose's LEar
    assert K.format_row(name, K.parse_row(K.format_row(name, kps))[1]) == K.format_row(name, kps)


@pytest.mark.parametrize(
    "bad",
    [
        "x.jpg: [1, 2]: [3, 4]",
        "x.jpg: [" + ", ".join(["1"] * 18) + "]",
        "x.jpg: [" + ", ".join(["a"] * 18) + "]: [" + ", ".join(["1"] * 18) + "]",
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad):
    p = tmp_path / "ann.csv"
    p.write_text(K.HEADER + "\n" + ROW + "\n" + bad + "\n")
    with pytest.raises(UserError, match=r"malformed annotation row at .*ann\.csv:3"):
        K.read_annotations(p)


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ann = {f"{i:04d}_c1s1_000001_01.jpg": rng.integers(-1, 64, size=(18, 2)) for i in range(5)}
    ann = {k: np.where((v < 0).any(axis=1, keepdims=True), -1, v) for k, v in ann.items()}
    K.write_annotations(tmp_path / "a.csv", ann)
    back = K.read_annotations(tmp_path / "a.csv")
    assert list(back) == list(ann)
    for k in ann:
        np.testing.assert_array_equal(back[k], ann[k])


def test_flip_swaps_left_and_right():
    _, kps = K.parse_row(ROW)
    f = K.flip_keypoints(kps, 64)
    # the right shoulder of the flip is the mirrored left shoulder of the original
    assert tuple(f[K.KP["Rsho"]]) == (kps[K.KP["Lsho"], 0], 63 - kps[K.KP["Lsho"], 1])
    assert tuple(f[K.KP["nose"]]) == (kps[K.KP["nose"], 0], 63 - kps[K.KP["nose"], 1])
    # missing points stay missing (Lear was missing, so the flip's Rear is)
    assert tuple(f[K.KP["Rear"]]) == (-1, -1)
    np.testing.assert_array_equal(K.flip_keypoints(f, 64), kps)
    assert sorted(K.FLIP_PERMUTATION) == list(range(18))


def test_valid_pose_needs_shoulders_and_hips():
    _, kps = K.parse_row(ROW)
    assert K.is_valid_pose(kps)
    for name in ("Rsho", "Lsho", "Rhip", "Lhip"):
        k = kps.copy()
        k[K.KP[name]] = -1
        assert not K.is_valid_pose(k)
    k = kps.copy()
    k[K.KP["nose"]] = -1
    assert K.is_valid_pose(k)
    assert K.is_valid_pose(np.stack([kps, np.full((18, 2), -1)])).tolist() == [True, False]


@pytest.mark.realdata
@pytest.mark.parametrize("fname", ["market-annotation-train.csv", "market-annotation-test.csv"])
def test_real_csv_round_trip_is_byte_identical(real_market, tmp_path, fname):
    src = real_market / "annotations" / fname
    ann = K.read_annotations(src)
    K.write_annotations(tmp_path / fname, ann)
    assert (tmp_path / fname).read_bytes() == src.read_bytes()
