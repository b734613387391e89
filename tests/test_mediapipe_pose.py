"""The MediaPipe pose backend: COCO-18 mapping by name, framing geometry, CLI errors, and
agreement with the shipped Market annotations (``realdata``). Tests that run MediaPipe itself
skip without the ``reidaug[pose]`` extra."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PIL import Image

from reidaug.cli import cli
from reidaug.data import SyntheticMarket
from reidaug.data import mediapipe_pose as mpp
from reidaug.data.estimate import build_backend
from reidaug.data.keypoints import KEYPOINT_NAMES, KP, LANDMARK_NAMES, is_valid_pose, present
from reidaug.data.market1501 import Market1501
from reidaug.errors import UserError

needs_mediapipe = pytest.mark.skipif(not mpp.available(), reason="mediapipe not installed")


def _landmarks(h: int = 128, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """33 distinct in-crop (x, y) points, all fully visible."""
    i = np.arange(33)
    return np.stack([1 + i % 60, 2 + 3 * i], axis=1).astype(float), np.ones(33)


def test_every_coco18_keypoint_maps_to_the_mediapipe_landmark_of_its_name():
    xy, vis = _landmarks()
    kps = mpp.mediapipe_to_coco18(xy, vis, 0.5, 128, 64)
    for name in KEYPOINT_NAMES:
        long = LANDMARK_NAMES[name]
        if long is None:
            continue
        j = mpp.MEDIAPIPE_NAMES.index(long)
        assert tuple(kps[KP[name]]) == (xy[j, 1], xy[j, 0]), name  # (y, x)
    ls, rs = kps[KP["Lsho"]], kps[KP["Rsho"]]
    assert tuple(kps[KP["neck"]]) == tuple(np.round((ls + rs) / 2).astype(int))
    assert present(kps).all()


@needs_mediapipe
def test_our_landmark_names_are_mediapipes_own():
    import mediapipe as mp

    assert tuple(p.name.lower() for p in mp.solutions.pose.PoseLandmark) == mpp.MEDIAPIPE_NAMES


def test_low_visibility_and_out_of_crop_landmarks_become_missing():
    xy, vis = _landmarks()
    vis[mpp.MEDIAPIPE_NAMES.index("right_shoulder")] = 0.3  # below the threshold: drops the neck
    xy[mpp.MEDIAPIPE_NAMES.index("left_ankle")] = (20, 130)  # below the crop's bottom edge
    xy[mpp.MEDIAPIPE_NAMES.index("nose")] = (-2, 10)  # left of the crop
    kps = mpp.mediapipe_to_coco18(xy, vis, 0.5, 128, 64)
    for name in ("Rsho", "neck", "Lank", "nose"):
        assert tuple(kps[KP[name]]) == (-1, -1), name
    assert present(kps).sum() == 14
    assert present(mpp.mediapipe_to_coco18(xy, vis, 0.2, 128, 64))[KP["Rsho"]]


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_a_landmark_maps_back_to_the_crop_pixel_it_was_drawn_at(margin, monkeypatch):
    """Framing and its inverse: a fake landmarker that returns the canvas position of a marked
    crop pixel must give that pixel back (catches a wrong offset, scale or axis order)."""
    crop = np.zeros((128, 64, 3), np.uint8)
    y, x = 37, 50
    canvas, top, left = mpp.frame(crop, 4, margin)
    assert canvas.shape[0] == canvas.shape[1] == round(512 * (1 + 2 * margin))
    assert (canvas[top : top + 512, left : left + 256] == 0).all()  # the crop, centred
    side = canvas.shape[0]
    nx, ny = (left + 4 * (x + 0.5)) / side, (top + 4 * (y + 0.5)) / side  # normalised centre
    point = types.SimpleNamespace(x=nx, y=ny, visibility=0.9)
    result = types.SimpleNamespace(pose_landmarks=types.SimpleNamespace(landmark=[point] * 33))
    pose = object.__new__(mpp.MediaPipePose)
    pose.min_visibility, pose.scale, pose.framings = 0.5, 4, ((margin, 0.5),)
    pose.correction = None  # the geometry alone
    pose._pose = {0.5: types.SimpleNamespace(process=lambda im: result)}
    xy, vis = pose.landmarks(crop)
    assert np.allclose(xy, [x, y]) and np.allclose(vis, 0.9)
    kps = pose([crop])[0]
    assert tuple(kps[KP["Lsho"]]) == (y, x)


def test_a_crop_where_nobody_is_found_is_tried_with_the_next_framing():
    crop = np.zeros((128, 64, 3), np.uint8)
    y, x = 90, 12
    calls = []

    def second(im):  # finds the person; the landmark is where the 100 % framing puts (y, x)
        calls.append(("second", im.shape[0]))
        side = im.shape[0]
        top, left = (side - 512) // 2, (side - 256) // 2
        p = types.SimpleNamespace(
            x=(left + 4 * (x + 0.5)) / side, y=(top + 4 * (y + 0.5)) / side, visibility=1.0
        )
        return types.SimpleNamespace(pose_landmarks=types.SimpleNamespace(landmark=[p] * 33))

    def first(im):
        calls.append(("first", im.shape[0]))
        return types.SimpleNamespace(pose_landmarks=None)

    pose = object.__new__(mpp.MediaPipePose)
    pose.min_visibility, pose.scale, pose.framings = 0.5, 4, ((0.5, 0.5), (1.0, 0.2))
    pose._pose = {
        0.5: types.SimpleNamespace(process=first),
        0.2: types.SimpleNamespace(process=second),
    }
    xy, _ = pose.landmarks(crop)
    assert calls == [("first", 1024), ("second", 1536)]
    assert np.allclose(xy, [x, y])
    pose._pose[0.2] = types.SimpleNamespace(process=first)
    assert pose([crop]) == [None]


def test_framings_parse_in_order_and_bad_text_is_an_error():
    assert mpp.parse_framings("0.5:0.5,1:0.2") == ((0.5, 0.5), (1.0, 0.2))
    with pytest.raises(UserError, match="MARGIN:CONFIDENCE"):
        mpp.parse_framings("0.5")


@needs_mediapipe
def test_mediapipe_cv2_and_torchreid_share_one_working_cv2():
    """mediapipe brings opencv-contrib-python and torchreid needs opencv-python-headless; both
    install a cv2 package, which must still import and work for both."""
    import cv2
    import mediapipe as mp  # noqa: F401
    import torchreid.reid  # noqa: F401

    small = cv2.resize(np.zeros((128, 64, 3), np.uint8), (32, 64))
    assert small.shape == (64, 32, 3)


def test_options_of_the_other_backend_are_refused():
    with pytest.raises(UserError, match="--min-score.*keypointrcnn|--min-score.*mediapipe"):
        build_backend("mediapipe", min_score=1.0)
    with pytest.raises(UserError, match="--framing do\\(es\\) not apply to the keypointrcnn"):
        build_backend("keypointrcnn", framings=((0.5, 0.5),), state_dict={})


def test_without_mediapipe_the_error_names_the_extra(monkeypatch, runner, synth_root, tmp_path):
    monkeypatch.setattr(mpp, "available", lambda: False)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    it = SyntheticMarket(synth_root).train[0]
    (imgs / it.path.name).write_bytes(it.path.read_bytes())
    r = runner.invoke(
        cli,
        [
            "poses",
            "estimate",
            "--images",
            str(imgs),
            "--out",
            str(tmp_path / "a.csv"),
            "--backend",
            "mediapipe",
        ],
    )
    assert r.exit_code == 1 and "reidaug[pose]" in r.stderr.strip().splitlines()[-1]
    assert r.stderr.strip().splitlines()[-1].startswith("Error: ")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # auto: no weights, no mediapipe
    r = runner.invoke(
        cli, ["poses", "estimate", "--images", str(imgs), "--out", str(tmp_path / "a.csv")]
    )
    last = r.stderr.strip().splitlines()[-1]
    assert r.exit_code == 1 and "keypointrcnn_resnet50_fpn_coco" in last and "reidaug[pose]" in last


@needs_mediapipe
def test_a_broken_image_gets_an_error_line_and_writes_nothing(runner, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(np.zeros((128, 64, 3), np.uint8)).save(imgs / "a.jpg")
    (imgs / "b.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "ann.csv"
    r = runner.invoke(cli, ["poses", "estimate", "--images", str(imgs), "--out", str(out)])
    assert r.exit_code == 1 and not out.exists()
    assert r.stderr.strip().splitlines()[-1].startswith("Error: cannot decode image")
    r = runner.invoke(
        cli, ["poses", "estimate", "--images", str(tmp_path / "nope"), "--out", str(out)]
    )
    assert r.exit_code == 1 and "Error: image folder not found" in r.stderr


@needs_mediapipe
def test_estimate_writes_one_row_per_image_in_the_shipped_format(runner, synth_root, tmp_path):
    ds = SyntheticMarket(synth_root)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for it in ds.train[:4]:
        (imgs / it.path.name).write_bytes(it.path.read_bytes())
    out = tmp_path / "ann.csv"
    r = runner.invoke(
        cli,
        ["poses", "estimate", "--images", str(imgs), "--out", str(out), "--min-visibility", "0.5"],
    )
    assert r.exit_code == 0, r.output
    assert "mediapipe: 4 images" in r.stderr
    from reidaug.data.keypoints import read_annotations

    assert sorted(read_annotations(out)) == sorted(p.name for p in imgs.iterdir())
    r = runner.invoke(
        cli,
        [
            "poses",
            "estimate",
            "--images",
            str(imgs),
            "--out",
            str(out),
            "--backend",
            "mediapipe",
            "--min-score",
            "1",
        ],
    )
    assert r.exit_code == 1 and "--min-score do(es) not apply to the mediapipe" in r.stderr


@needs_mediapipe
@pytest.mark.realdata
def test_agreement_with_the_shipped_annotations_on_50_real_images(real_market):
    """Floors set from experiments/pose_agreement.py on 2,000 images (docs/results/
    mediapipe-poses), with room for the smaller sample: detection >= 0.85, >= 0.75 of points
    within 8 px."""
    ds = Market1501(real_market)
    shipped = ds.annotations("train")
    valid = [
        it for it in ds.train if it.path.name in shipped and is_valid_pose(shipped[it.path.name])
    ]
    rng = np.random.default_rng(1)
    items = [valid[i] for i in rng.choice(len(valid), 50, replace=False)]
    from reidaug.data.estimate import read_crop

    with mpp.MediaPipePose() as pose:
        ours = pose([read_crop(it.path) for it in items])
    found = [k is not None for k in ours]
    assert np.mean(found) >= 0.85
    a = np.stack([k for k in ours if k is not None])
    b = np.stack(
        [shipped[it.path.name] for it, k in zip(items, ours, strict=True) if k is not None]
    )
    both = present(a) & present(b)
    d = np.linalg.norm((a - b).astype(float), axis=-1)[both]
    assert (d <= 8).mean() >= 0.75, np.median(d)


@needs_mediapipe
def test_on_the_embedded_figures_estimates_agree_with_their_drawn_keypoints(synth_root):
    """MediaPipe takes about half of the procedural figures for people (54 % of 80 measured,
    69 % of points within 8 px of the drawn ones, median 5 px): floors below those."""
    from reidaug.data.estimate import read_crop

    ds = SyntheticMarket(synth_root)
    drawn = ds.annotations("train")
    items = [it for it in ds.train if it.path.name in drawn][:80]
    with mpp.MediaPipePose() as pose:
        ours = pose([read_crop(it.path) for it in items])
    assert np.mean([k is not None for k in ours]) >= 0.35
    a = np.stack([k for k in ours if k is not None])
    b = np.stack([drawn[it.path.name] for it, k in zip(items, ours, strict=True) if k is not None])
    both = present(a) & present(b)
    d = np.linalg.norm((a - b).astype(float), axis=-1)[both]
    assert both.sum() >= 200 and (d <= 8).mean() >= 0.55, np.median(d)


@needs_mediapipe
def test_mediapipes_native_info_line_stays_out_of_the_output():
    """TFLite prints "INFO: Created TensorFlow Lite XNNPACK delegate" to file descriptor 2 when
    a graph's model starts, on a thread of its own: a user must see only reidaug's lines. When
    the line escapes depends on thread timing (about one fresh process in two without the
    warm-up), so four fresh processes are checked."""
    import subprocess
    import sys

    code = (
        "import time\nfrom reidaug.data.mediapipe_pose import MediaPipePose\n"
        "p = MediaPipePose()\ntime.sleep(0.3)\np.close()\n"
    )
    for _ in range(4):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "INFO" not in r.stderr + r.stdout


def _person(angle: float, facing_back: bool = False) -> np.ndarray:
    """A standing person's 18 float (y, x) points, rotated by ``angle`` about the torso centre;
    seen from behind, left and right swap sides in the image."""
    pts = np.full((18, 2), np.nan)
    side = -1 if facing_back else 1
    for name, (y, x) in {
        "Rsho": (40, 32 - 10 * side),
        "Lsho": (40, 32 + 10 * side),
        "Rhip": (70, 32 - 7 * side),
        "Lhip": (70, 32 + 7 * side),
        "Rkne": (90, 32 - 7 * side),
        "nose": (25, 32),
    }.items():
        pts[KP[name]] = (y, x)
    centre = pts[[KP["Rsho"], KP["Lsho"], KP["Rhip"], KP["Lhip"]]].mean(0)
    c, s = np.cos(angle), np.sin(angle)
    return (pts - centre) @ np.array([[c, s], [-s, c]]) + centre


def test_the_torso_frame_points_up_the_torso_and_towards_the_left_shoulder():
    centre, u, v, length = mpp.torso_frame(_person(0.0))
    assert np.allclose(u, [-1, 0]) and np.allclose(v, [0, 1]) and length == pytest.approx(30)
    _, u, v, _ = mpp.torso_frame(_person(0.0, facing_back=True))
    assert np.allclose(u, [-1, 0]) and np.allclose(v, [0, -1])  # still towards the left shoulder
    gone = _person(0.0)
    gone[KP["Lhip"]] = np.nan
    assert mpp.torso_frame(gone) is None


def test_a_correction_moves_points_in_the_persons_own_frame():
    offsets = np.zeros((18, 2))
    offsets[KP["Rhip"]] = (0.1, 0.2)  # up the torso by 0.1 and towards the left by 0.2 lengths
    for angle in (0.0, 0.4):
        for back in (False, True):
            pts = _person(angle, back)
            _, u, v, length = mpp.torso_frame(pts)
            moved = mpp.apply_correction(pts, offsets)
            want = pts[KP["Rhip"]] + length * (0.1 * u + 0.2 * v)
            assert np.allclose(moved[KP["Rhip"]], want)
            others = [i for i in range(18) if i != KP["Rhip"]]
            assert np.allclose(moved[others], pts[others], equal_nan=True)


def test_fit_correction_recovers_a_known_offset_from_noisy_people():
    rng = np.random.default_rng(0)
    truth = np.zeros((18, 2))
    truth[KP["Rhip"]], truth[KP["Rkne"]] = (-0.15, 0.05), (0.03, -0.1)
    points, refs = [], []
    for _ in range(300):
        pts = _person(rng.uniform(-0.3, 0.3), rng.random() < 0.5)
        ref = mpp.apply_correction(pts, truth) + rng.normal(0, 0.5, pts.shape)
        points.append(pts)
        refs.append(np.where(np.isnan(ref), -1, np.round(ref)).astype(int))
    offsets, counts = mpp.fit_correction(points, refs)
    assert counts[KP["Rhip"]] == 300 and counts[KP["Leye"]] == 0
    assert np.abs(offsets - truth).max() < 0.02


def test_the_shipped_correction_loads_and_a_bad_file_is_refused(tmp_path):
    offsets = mpp.load_correction()
    assert offsets.shape == (18, 2) and np.isfinite(offsets).all()
    bad = tmp_path / "c.json"
    bad.write_text('{"offsets": {"nose": [0, 0]}}')
    with pytest.raises(UserError, match="cannot read the MediaPipe pose correction"):
        mpp.load_correction(bad)
    with pytest.raises(UserError, match="do.es. not apply to the keypointrcnn backend"):
        build_backend("keypointrcnn", state_dict={}, correct=False)
