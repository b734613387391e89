"""``poses estimate`` / ``poses show``: COCO-17 -> COCO-18 mapping, CSV output, weights errors."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models.detection import keypointrcnn_resnet50_fpn

from reidaug.cli import cli
from reidaug.data import SyntheticMarket
from reidaug.data.estimate import COCO17_NAMES, coco17_to_coco18, pick_person
from reidaug.data.keypoints import KEYPOINT_NAMES, KP, read_annotations

SHORT = {
    "nose": "nose",
    "Rsho": "right_shoulder",
    "Relb": "right_elbow",
    "Rwri": "right_wrist",
    "Lsho": "left_shoulder",
    "Lelb": "left_elbow",
    "Lwri": "left_wrist",
    "Rhip": "right_hip",
    "Rkne": "right_knee",
    "Rank": "right_ankle",
    "Lhip": "left_hip",
    "Lkne": "left_knee",
    "Lank": "left_ankle",
    "Leye": "left_eye",
    "Reye": "right_eye",
    "Lear": "left_ear",
    "Rear": "right_ear",
}


def _hand_made():
    xy = np.array([[10 + i, 100 - 3 * i] for i in range(17)], float)  # (x, y), all distinct
    return xy, np.full(17, 5.0)


def test_coco17_to_coco18_by_name_with_the_neck_rule():
    xy, scores = _hand_made()
    kps = coco17_to_coco18(xy, scores, min_score=1.0)
    for name, coco in SHORT.items():
        j = COCO17_NAMES.index(coco)
        assert tuple(kps[KP[name]]) == (xy[j, 1], xy[j, 0]), name  # (y, x)
    ls, rs = xy[COCO17_NAMES.index("left_shoulder")], xy[COCO17_NAMES.index("right_shoulder")]
    assert tuple(kps[KP["neck"]]) == (round((ls[1] + rs[1]) / 2), round((ls[0] + rs[0]) / 2))
    assert len(KEYPOINT_NAMES) == 18 and (kps >= 0).all()


def test_low_scores_become_missing_and_a_weak_shoulder_drops_the_neck():
    xy, scores = _hand_made()
    scores[COCO17_NAMES.index("right_shoulder")] = 0.2
    scores[COCO17_NAMES.index("left_ankle")] = -3.0
    kps = coco17_to_coco18(xy, scores, min_score=1.0)
    for name in ("Rsho", "Lank", "neck"):
        assert tuple(kps[KP[name]]) == (-1, -1), name
    assert (kps[KP["Lsho"]] >= 0).all()
    assert ((kps == -1).all(1)).sum() == 3


def test_the_centre_person_is_the_most_confident_box_covering_the_centre():
    boxes = np.array([[0, 0, 20, 40], [10, 30, 60, 120], [5, 20, 50, 110]], float)
    scores = np.array([0.99, 0.6, 0.8])
    assert pick_person(boxes, scores, 128, 64) == 2  # box 0 is more confident but off-centre
    assert pick_person(boxes[:1], scores[:1], 128, 64) is None


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, num_keypoints=17
    )
    path = tmp_path_factory.mktemp("w") / "kprcnn-random.pth"
    torch.save(model.state_dict(), path)
    return path


def _images(synth_root, tmp_path, n=3):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for it in SyntheticMarket(synth_root).train[:n]:
        (folder / it.path.name).write_bytes(it.path.read_bytes())
    return folder


def test_estimate_end_to_end_with_random_weights(runner, synth_root, tmp_path, random_weights):
    imgs = _images(synth_root, tmp_path)
    out = tmp_path / "ann.csv"
    args = [
        "poses",
        "estimate",
        "--images",
        str(imgs),
        "--weights",
        str(random_weights),
        "--out",
        str(out),
        "--min-size",
        "128",
        "--batch-size",
        "2",
    ]
    r = runner.invoke(cli, [*args, "--min-score", "-1e9"])
    assert r.exit_code == 0, r.output
    assert "3 images" in r.stderr and "all-missing rows" in r.stderr
    kps = read_annotations(out)  # the shipped format: every other command reads it
    assert sorted(kps) == sorted(p.name for p in imgs.iterdir())
    lines = out.read_text().splitlines()
    assert lines[0] == "name:keypoints_y:keypoints_x" and len(lines) == 4
    detected = [k for k in kps.values() if (k >= 0).any()]
    assert detected and f"{len(detected)} with a centre person" in r.stderr
    for k in detected:  # every point passes a -inf threshold, the neck included, inside the crop
        assert k.shape == (18, 2) and (k >= 0).all()
    # with an impossible threshold every row is all -1 (the missing-point rule), still one per image
    r = runner.invoke(cli, [*args, "--min-score", "1e9"])
    assert r.exit_code == 0, r.output
    assert (
        all((k == -1).all() for k in read_annotations(out).values())
        and len(read_annotations(out)) == 3
    )
    assert "3 all-missing rows" in r.stderr


def test_missing_weights_give_the_documented_error(runner, synth_root, tmp_path, monkeypatch):
    imgs = _images(synth_root, tmp_path, n=1)
    out = tmp_path / "ann.csv"
    r = runner.invoke(
        cli,
        [
            "poses",
            "estimate",
            "--images",
            str(imgs),
            "--weights",
            str(tmp_path / "nope.pth"),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 1 and not out.exists()
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: keypoint R-CNN weights not found: {tmp_path / 'nope.pth'}")
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # an empty hub cache
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
            "keypointrcnn",
        ],
    )
    last = r.stderr.strip().splitlines()[-1]
    assert r.exit_code == 1 and "keypointrcnn_resnet50_fpn_coco-fc266e95.pth" in last
    assert str(tmp_path / "hub") in last and "--weights" in last


def test_show_draws_a_grid(runner, synth_root, tmp_path):
    ds = SyntheticMarket(synth_root)
    out = tmp_path / "grid.png"
    ann = synth_root / "annotations" / "market-annotation-train.csv"
    r = runner.invoke(
        cli,
        [
            "poses",
            "show",
            "--annotations",
            str(ann),
            "--images",
            str(ds.split_dir("train")),
            "--out",
            str(out),
            "--count",
            "10",
        ],
    )
    assert r.exit_code == 0, r.output
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * 128, 8 * 64, 3)  # 10 tiles on rows of 8
    # skeleton colours were drawn onto the crops
    assert ((grid == (255, 255, 0)).all(-1)).sum() > 50
