"""The folder dataset: the user's own crops (any size, two naming forms), their poses, and
another dataset's generator synthesizing them."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from reidaug.cli import cli as main
from reidaug.data import SyntheticMarket, build_dataset, read_annotations, write_annotations
from reidaug.data import keypoints as K
from reidaug.data.folder import FolderDataset, letterbox, map_keypoints
from reidaug.errors import UserError

SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDAUG_CACHE", str(tmp_path / "cache"))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def upscaled(name: str) -> bool:
    """Every third image is stored at twice the size, so the letterbox has work to do."""
    return sum(map(ord, name)) % 3 == 0


def as_folder(synth_root: Path, out: Path, form: str) -> Path:
    """The embedded dataset written as a folder dataset: Market names in train/query/gallery,
    or ``csv``: ``splitname/personP/k.png`` with an index.csv (pid and camid from 0). Poses go
    to poses.csv in the stored images' pixels."""
    src = SyntheticMarket(synth_root)
    anns = {**src.annotations("train"), **src.annotations("gallery")}
    rows, poses = [], {}
    for split, items in (("train", src.train), ("query", src.query), ("gallery", src.gallery)):
        for k, it in enumerate(items):
            if form == "csv" and it.raw_pid <= 0:
                continue  # a user's own index lists people, no distractors
            if form == "names":
                rel = f"{split}/{it.name}"
            else:
                rel = f"{split}/person{it.raw_pid}/{k}.png"
                rows.append((rel, it.raw_pid - 1, it.camid))
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            big = upscaled(it.name)
            if big:
                with Image.open(it.path) as im:
                    im.resize((128, 256), Image.BICUBIC).save(out / rel)
            elif form == "names":
                shutil.copy(it.path, out / rel)
            else:
                with Image.open(it.path) as im:
                    im.save(out / rel)  # the decoded JPEG, losslessly
            if it.name in anns:
                kps = anns[it.name].copy()
                if big:
                    ok = kps[:, 0] >= 0
                    kps[ok] = kps[ok] * 2
                poses[rel] = kps
    if form == "csv":
        with open(out / "index.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "pid", "camid"])
            w.writerows(rows)
    write_annotations(out / "poses.csv", poses)
    return out


@pytest.mark.parametrize("form", ["names", "csv"])
def test_a_folder_reads_as_the_dataset_it_was_written_from(synth_root, tmp_path, form):
    src = SyntheticMarket(synth_root)
    ds = build_dataset("folder", as_folder(synth_root, tmp_path / "f", form))
    ds.check_before_run()
    for split in ("train", "query", "gallery"):
        a, b = src.items(split), ds.items(split)
        if form == "csv":
            a = [i for i in a if i.raw_pid > 0]
        assert len(a) == len(b)
        assert sorted((i.raw_pid, i.camid) for i in a) == sorted((i.raw_pid, i.camid) for i in b)
    assert ds.num_train_ids == src.num_train_ids
    assert {i.pid for i in ds.train} == set(range(ds.num_train_ids))
    # crops and poses are the originals: exact where the image was 128x64, within the
    # resampling and a pixel of rounding where it was stored at twice the size
    want = src.annotations("train")
    by_key = {}
    for it in src.train:
        by_key.setdefault((it.raw_pid, it.camid), []).append(it)
    got = ds.annotations("train")
    checked = big = 0
    for it in ds.train:
        rel = ds.origin(it.name)
        orig = next(
            o
            for o in by_key[(it.raw_pid, it.camid)]
            if (form == "names" and rel.endswith(o.name))
            or (form == "csv" and rel == f"train/person{o.raw_pid}/{src.train.index(o)}.png")
        )
        crop = np.asarray(Image.open(it.path))
        real = np.asarray(Image.open(orig.path).convert("RGB"))
        assert crop.shape == (128, 64, 3)
        if upscaled(orig.name):
            big += 1
            assert np.abs(crop.astype(int) - real).mean() < 6
            assert np.abs(got[it.name] - want[orig.name]).max() <= 1
        else:
            assert (crop == real).all()
            assert (got[it.name] == want[orig.name]).all()
        checked += 1
    assert checked == len(src.train) and big > 0
    pairs = ds.test_pairs()
    posed = ds.annotations("gallery")
    assert pairs and all(K.is_valid_pose(posed[a]) and K.is_valid_pose(posed[b]) for a, b in pairs)
    gallery = {i.name: i.raw_pid for i in ds.gallery}
    assert all(gallery[a] == gallery[b] for a, b in pairs)


def test_letterbox_keeps_the_aspect_and_maps_points_with_the_pixels():
    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 70:90] = 255  # a square
    crop, fit = letterbox(Image.fromarray(img), 128, 64)
    assert crop.shape == (128, 64, 3)
    ys, xs = np.nonzero(crop[..., 0] > 127)
    assert abs((ys.max() - ys.min()) - (xs.max() - xs.min())) <= 1  # still a square
    # the square's corner (40, 70) lands where the map sends it
    y, x = map_keypoints(np.array([[40, 70]] + [[-1, -1]] * 17), fit)[0]
    assert abs(y - ys.min()) <= 1 and abs(x - xs.min()) <= 1
    assert (crop[:32] == crop[32]).all()  # padded with the edge row, not stretched
    back = map_keypoints(map_keypoints(np.array([[40, 70]] * 18), fit), fit, inverse=True)
    assert np.abs(back - [40, 70]).max() <= 1
    missing = map_keypoints(np.full((18, 2), -1), fit)
    assert (missing == -1).all()


def test_one_pool_is_split_by_identity(synth_root, tmp_path):
    root = tmp_path / "pool"
    src = SyntheticMarket(synth_root)
    for it in src.train:  # train only: a pool of people
        (root / f"cam{it.camid}").mkdir(parents=True, exist_ok=True)
        shutil.copy(it.path, root / f"cam{it.camid}" / it.name)
    ds = FolderDataset(root)
    train_ids = {i.raw_pid for i in ds.train}
    test_ids = {i.raw_pid for i in ds.query} | {i.raw_pid for i in ds.gallery}
    assert not train_ids & test_ids and len(train_ids) == len(test_ids) == src.num_train_ids // 2
    assert len(ds.train) + len(ds.query) + len(ds.gallery) == len(src.train)
    for pid in {i.raw_pid for i in ds.query}:  # one query per camera, the rest in the gallery
        cams = [i.camid for i in ds.query if i.raw_pid == pid]
        assert len(cams) == len(set(cams))
        assert any(g.raw_pid == pid for g in ds.gallery)
    again = FolderDataset(root)
    assert [i.name for i in again.query] == [i.name for i in ds.query]  # seeded


def _check(runner, root) -> str:
    r = runner.invoke(main, ["data", "check", "--dataset", "folder", "--root", str(root)])
    assert r.exit_code != 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    return lines[0]


def test_bad_folders_get_one_error_line_naming_the_problem(synth_root, tmp_path, runner):
    base = as_folder(synth_root, tmp_path / "base", "csv")

    def fresh(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(base, d)
        return d

    def edit_index(root: Path, fn) -> None:
        rows = read_rows(root / "index.csv")
        with open(root / "index.csv", "w", newline="") as f:
            csv.writer(f).writerows(fn(rows))

    root = fresh("col")
    edit_index(root, lambda r: [["path", "person", "camid"], *r[1:]])
    assert "no column 'pid'" in _check(runner, root)
    root = fresh("dup")
    edit_index(root, lambda r: [*r, r[1]])
    assert "listed twice" in _check(runner, root)
    root = fresh("pid")
    edit_index(root, lambda r: [r[0], [r[1][0], "x7", r[1][2]], *r[2:]])
    assert "pid 'x7' is not an integer" in _check(runner, root)
    root = fresh("neg")
    edit_index(root, lambda r: [r[0], [r[1][0], "-3", r[1][2]], *r[2:]])
    assert "pid -3 must be from 0" in _check(runner, root)
    root = fresh("gone")
    edit_index(root, lambda r: [*r, ["train/nobody.png", "0", "0"]])
    assert "image not found: train/nobody.png" in _check(runner, root)
    root = fresh("tiny")
    first = read_rows(root / "index.csv")[1][0]
    Image.new("RGB", (8, 20)).save(root / first)
    assert f"{first} is 8x20 pixels" in _check(runner, root)
    root = fresh("empty")
    (root / first).write_bytes(b"")
    assert first in _check(runner, root)
    root = fresh("lonely")
    person = next(r[0] for r in read_rows(root / "index.csv") if r[0].startswith("gallery/"))
    person = person.split("/")[1]
    edit_index(root, lambda r: [row for row in r if not row[0].startswith(f"gallery/{person}/")])
    msg = _check(runner, root)
    assert "no gallery image" in msg and f"query/{person}/" in msg
    root = fresh("noposes")
    (root / "poses.csv").unlink()
    msg = _check(runner, root)
    assert "reidaug poses estimate --dataset folder --root" in msg
    root = tmp_path / "mixed"
    (root / "train").mkdir(parents=True)
    assert "missing query folder" in _check(runner, root)
    assert "is a Market-1501 root" in _check(runner, synth_root)


def test_data_check_names_the_images_without_a_pose(synth_root, tmp_path, runner):
    root = as_folder(synth_root, tmp_path / "f", "csv")
    anns = read_annotations(root / "poses.csv")
    dropped = sorted(k for k in anns if k.startswith("train/"))[:2]
    write_annotations(root / "poses.csv", {k: v for k, v in anns.items() if k not in dropped})
    r = runner.invoke(main, ["data", "check", "--dataset", "folder", "--root", str(root)])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "2 train images have no row in the pose file" in flat
    assert all(d in flat for d in dropped)


def test_poses_estimate_writes_the_folder_pose_file_in_original_pixels(
    synth_root, tmp_path, runner, monkeypatch
):
    root = as_folder(synth_root, tmp_path / "f", "names")
    (root / "poses.csv").unlink()
    kp = np.array([[10 + 5 * i, 20 + i] for i in range(18)])

    class Fixed:  # a detector that sees the same pose in every 128x64 crop
        name = "fixed"

        def __call__(self, images):
            assert all(im.shape == (128, 64, 3) for im in images)
            return [kp.copy() for _ in images]

        def close(self):
            pass

    monkeypatch.setattr("reidaug.data.estimate.build_backend", lambda *a, **k: Fixed())
    r = runner.invoke(main, ["poses", "estimate", "--dataset", "folder", "--root", str(root)])
    assert r.exit_code == 0, r.output
    written = read_annotations(root / "poses.csv")
    ds = FolderDataset(root)
    assert set(written) == {s.rel for s in ds.sources}
    for rel, kps in written.items():
        with Image.open(root / rel) as im:
            scale = im.size[1] / 128
        assert np.abs(kps - kp * scale).max() <= 1, rel  # back in the stored image's pixels
    got = ds.annotations("train")
    assert all((v == kp).all() for v in got.values())  # and forward again on the crops
    r = runner.invoke(main, ["poses", "estimate", "--root", str(root)])
    assert r.exit_code != 0 and "--images DIR" in r.output


def test_a_generator_needs_two_images_of_each_training_person(synth_root, tmp_path):
    from reidaug.training import train
    from tests.helpers import tiny

    root = as_folder(synth_root, tmp_path / "f", "csv")
    with open(root / "index.csv") as f:
        rows = list(csv.reader(f))
    first = next(r for r in rows[1:] if r[0].startswith("train/"))
    keep = [r for r in rows if not (r[0].startswith("train/") and r[1] == first[1])]
    with open(root / "index.csv", "w", newline="") as f:
        csv.writer(f).writerows([*keep, first])
    with pytest.raises(UserError, match=f"one image \\(first: {first[0]}\\)"):
        train(tiny(root, tmp_path / "runs", dataset="folder"))


@pytest.fixture(scope="module")
def market_run(synth_root, tmp_path_factory):
    from reidaug.training import train
    from tests.helpers import tiny

    out = tmp_path_factory.mktemp("runs")
    return train(tiny(synth_root, out, stage="1", iters1=2))


def test_another_datasets_generator_synthesizes_the_folders_people(
    synth_root, market_run, tmp_path, runner
):
    from reidaug.bench.run import check_provenance
    from reidaug.synthesis import ShardDataset
    from reidaug.synthesis.shards import check_fits

    root = as_folder(synth_root, tmp_path / "f", "csv")
    out = tmp_path / "shards"
    args = ["synthesize", "--run", str(market_run), "--dataset", "folder", "--root", str(root)]
    r = runner.invoke(main, [*args, "--real-per-id", "2", "--poses", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    ds = FolderDataset(root)
    ds.restrict_train(2, None, 0)
    shards = ShardDataset(out)
    assert len(shards) == 2 * len(ds.train)
    assert set(shards.column("source").tolist()) == {i.name for i in ds.train}
    with h5py.File(sorted(out.glob("shard-*.h5"))[0]) as f:
        assert f.attrs["dataset"] == "folder" and f.attrs["generator_dataset"] == "synthetic"
        job = json.loads(f.attrs["config"])["job"]
    assert job["people"]["dataset"] == "folder" and job["people"]["subset"]["real_per_id"] == 2
    check_fits(shards, ds)
    check_provenance(shards, ds)  # a generator of other people saw none of these
    with pytest.raises(UserError, match="made from folder, not synthetic"):
        check_fits(shards, SyntheticMarket(synth_root))
    other = FolderDataset(root)
    other.restrict_train(2, None, 1)
    with pytest.raises(UserError, match="outside this bench's training subset"):
        check_provenance(shards, other)
    moved = tmp_path / "other"
    shutil.copytree(root, moved)
    rows = read_rows(moved / "index.csv")
    with open(moved / "index.csv", "w", newline="") as f:
        csv.writer(f).writerows([r for r in rows if r[0] != rows[1][0]])
    with pytest.raises(UserError, match="people of another folder dataset"):
        check_fits(shards, FolderDataset(moved))
    r = runner.invoke(main, ["synthesize", "--run", str(market_run), "--real-per-id", "2",
                             "--out", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code != 0 and "another --dataset" in r.output
    r = runner.invoke(main, ["synthesize", "--run", str(market_run), "--dataset", "folder",
                             "--out", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code != 0 and "--dataset folder needs --root" in r.output
    assert not (tmp_path / "x").exists()


@pytest.mark.realdata
def test_half_of_markets_training_people_as_a_folder_of_symlinks(real_market, tmp_path):
    from reidaug.data import Market1501

    market = Market1501(real_market)
    ids = sorted({i.raw_pid for i in market.train})
    half = set(ids[1::2])
    root = tmp_path / "half"
    root.mkdir()
    anns = market.annotations("train")
    poses = {}
    for it in market.train:
        if it.raw_pid in half:
            os.symlink(it.path.resolve(), root / it.name)
            if it.name in anns:
                poses[it.name] = anns[it.name]
    write_annotations(root / "poses.csv", poses)
    ds = FolderDataset(root)
    ds.check_before_run()
    everything = ds.train + ds.query + ds.gallery
    assert len(everything) == sum(i.raw_pid in half for i in market.train)
    assert {i.raw_pid for i in everything} == half
    assert len({i.raw_pid for i in ds.train}) == len(half) - len(half) // 2
    got = {**ds.annotations("train"), **ds.annotations("gallery")}
    for it in everything:
        rel = ds.origin(it.name)
        if rel in anns and it.name in got:
            assert (got[it.name] == anns[rel]).all()
    assert len(ds.test_pairs()) > 1000


def test_untrusted_names_and_files_in_a_folder(synth_root, tmp_path, runner):
    src = SyntheticMarket(synth_root)
    root = as_folder(synth_root, tmp_path / "f", "names")
    # names with spaces and unicode are files like any other; a text file is not an image
    it = src.train[0]
    odd = root / "train" / f"{it.name[:-4]} cópia ü.jpg"
    shutil.copy(it.path, odd)
    (root / "train" / "notes.txt").write_text("not an image")
    ds = FolderDataset(root)
    assert any(ds.origin(i.name) == f"train/{odd.name}" for i in ds.train)
    assert len(ds.train) == len(src.train) + 1
    # a .jpg that is not an image, a 10,000-pixel crop, a line break in a name: refused by name
    fake = root / "train" / f"{it.name[:-4]}_fake.jpg"
    fake.write_text("<html>not a jpeg</html>")
    assert f"{fake.name}" in _check(runner, root)
    fake.unlink()
    huge = root / "train" / f"{it.name[:-4]}_huge.png"
    Image.new("RGB", (16, 10_000)).save(huge)
    assert "16x10000 pixels" in _check(runner, root)
    huge.unlink()
    broken = root / "train" / f"{it.name[:-4]}_a\nb.jpg"
    shutil.copy(it.path, broken)
    assert "line break" in _check(runner, root)
