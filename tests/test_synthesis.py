"""Bulk synthesis: schema, determinism, kill-and-resume, pids, export, pose strategies, bad
input."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from reidaug.cli import cli
from reidaug.data import Market1501, SyntheticMarket
from reidaug.data import keypoints as K
from reidaug.data.market1501 import parse_name
from reidaug.errors import UserError
from reidaug.synthesis import PoseBank, PoseSampler, ShardDataset, export, synthesize
from reidaug.synthesis import shards as S
from reidaug.training import train
from reidaug.training.checkpoint import latest as C_latest
from tests.helpers import tiny

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(synth_root, tmp_path_factory):
    return train(tiny(synth_root, tmp_path_factory.mktemp("runs"), iters1=2, iters2=2))


@pytest.fixture(scope="module")
def shards(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "s"
    synthesize(out, run=run, poses=2, shard_size=64, batch_size=16, workers=0, command="test")
    return out


def test_schema(shards, synth_root):
    n_train = len(SyntheticMarket(synth_root).train)
    files = sorted(shards.glob("shard-*.h5"))
    man = S.read_manifest(shards)
    assert man["complete"] and man["images"] == 2 * n_train == sum(
        s["images"] for s in man["shards"]
    )
    assert [s["file"] for s in man["shards"]] == [f.name for f in files]
    assert all(s["sha256"] == S.file_sha256(shards / s["file"]) for s in man["shards"])
    with h5py.File(files[0], "r") as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape == (64, 128, 64, 3)
        assert f["images"].compression == "gzip" and f["images"].chunks is not None
        assert f["target_keypoints"].shape == (64, 18, 2)
        for key in ("pid", "label", "camid", "index", "source_name", "target_name"):
            assert f[key].shape == (64,)
        for key in (
            "reidaug_version",
            "model",
            "checkpoint_sha256",
            "config",
            "command",
            "created",
        ):
            assert key in f.attrs
        assert f.attrs["model"] == "pg2" and f.attrs["command"] == "test"
        assert list(f["index"][:4]) == [0, 1, 2, 3]
        ann = SyntheticMarket(synth_root).annotations("train")
        for src, tgt, kps in zip(
            f["source_name"].asstr()[:],
            f["target_name"].asstr()[:],
            f["target_keypoints"][:],
            strict=True,
        ):
            assert src != tgt and np.array_equal(kps, ann[tgt]) and K.is_valid_pose(kps)


def test_pid_and_camid_are_preserved(shards, synth_root):
    ds = ShardDataset(shards)
    labels = {it.name: it.pid for it in SyntheticMarket(synth_root).train}
    for i in range(0, len(ds), 7):
        item = ds[i]
        pid, cam = parse_name(item["source"])
        assert (item["pid"], item["camid"], item["label"]) == (pid, cam - 1, labels[item["source"]])
        assert item["image"].shape == (128, 64, 3) and item["image"].dtype == torch.uint8


def test_shard_dataset_in_worker_processes(shards):
    ds = ShardDataset(shards)
    loader = DataLoader(ds, batch_size=32, num_workers=2)
    pids = torch.cat([b["pid"] for b in loader])
    assert len(pids) == len(ds) and torch.equal(pids, torch.as_tensor(ds.column("pid")))


def test_deterministic(run, shards, tmp_path):
    synthesize(
        tmp_path / "again",
        run=run,
        poses=2,
        shard_size=64,
        batch_size=16,
        workers=0,
        command="test",
    )
    for f in sorted(shards.glob("shard-*.h5")):
        with h5py.File(f, "r") as a, h5py.File(tmp_path / "again" / f.name, "r") as b:
            assert np.array_equal(a["images"][()], b["images"][()])
            created_equal = a.attrs["created"] == b.attrs["created"]
        if created_equal:  # same second: the whole file is byte-identical
            assert f.read_bytes() == (tmp_path / "again" / f.name).read_bytes()


def test_seed_picks_the_poses_and_keeps_the_bytes(run, tmp_path, monkeypatch, runner):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synthesize(
            tmp_path / name,
            run=run,
            poses=2,
            shard_size=64,
            batch_size=16,
            seed=seed,
            workers=0,
            command="test",
        )
    files = sorted(p.name for p in (tmp_path / "a").glob("shard-*.h5"))
    assert files and files == sorted(p.name for p in (tmp_path / "b").glob("shard-*.h5"))
    for f in files:  # the same seed and checkpoint: byte-identical shards
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    a, c = ShardDataset(tmp_path / "a"), ShardDataset(tmp_path / "c")
    assert {x["seed"] for x in a.attrs} == {5} and {x["seed"] for x in c.attrs} == {6}
    assert S.read_manifest(tmp_path / "c")["seed"] == 6

    def targets(folder):
        return np.concatenate(
            [
                h5py.File(f, "r")["target_name"].asstr()[()]
                for f in sorted(folder.glob("shard-*.h5"))
            ]
        )

    ta, tc = targets(tmp_path / "a"), targets(tmp_path / "c")
    assert len(ta) == len(tc) and (ta != tc).mean() > 0.5  # another seed: other target poses

    # the CLI flag reaches the job, and a disagreeing global --seed is refused
    r = runner.invoke(
        cli,
        [
            "synthesize",
            "--run",
            str(run),
            "--poses",
            "2",
            "--seed",
            "6",
            "--shard-size",
            "64",
            "--batch-size",
            "16",
            "--workers",
            "0",
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert np.array_equal(targets(tmp_path / "d"), tc)
    r = runner.invoke(
        cli,
        [
            "--seed",
            "1",
            "synthesize",
            "--run",
            str(run),
            "--seed",
            "2",
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert r.exit_code == 2 and "disagree" in r.stderr


def _cmd(run, out):
    return [
        sys.executable,
        "-m",
        "reidaug",
        "--device",
        "cpu",
        "synthesize",
        "--run",
        str(run),
        "--poses",
        "3",
        "--out",
        out,
        "--shard-size",
        "40",
        "--batch-size",
        "8",
        "--workers",
        "0",
    ]


@pytest.mark.slow
def test_resume_after_sigkill_is_byte_identical(run, tmp_path):
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PYTHONPATH": str(REPO)}
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    subprocess.run(_cmd(run, "out"), cwd=tmp_path / "a", env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        _cmd(run, "out"),
        cwd=tmp_path / "b",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (tmp_path / "b" / "out" / "shard-00001.h5").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = sorted(p.name for p in (tmp_path / "b" / "out").glob("shard-*.h5"))
    total = len(list((tmp_path / "a" / "out").glob("shard-*.h5")))
    assert 2 <= len(killed) < total, "the kill should land mid-job"
    r = subprocess.run(
        _cmd(run, "out"), cwd=tmp_path / "b", env=env, check=True, capture_output=True, text=True
    )
    assert "verified and skipped" in r.stderr
    for f in sorted((tmp_path / "a" / "out").glob("shard-*.h5")):
        assert f.read_bytes() == (tmp_path / "b" / "out" / f.name).read_bytes(), f.name
    assert not list((tmp_path / "b" / "out").glob(".*.tmp"))


def test_export_round_trip(shards, tmp_path):
    n = export(shards, tmp_path / "market")
    ds = ShardDataset(shards)
    assert n == len(ds)
    exported = Market1501(tmp_path / "market")
    items = sorted(exported.train, key=lambda it: int(it.name.split("_")[2]))
    assert len({it.name for it in items}) == n  # unique names
    from reidaug.data.pairs import load_image

    for i in range(0, n, 11):
        it, src = items[i], ds[i]
        assert (it.raw_pid, it.camid) == (src["pid"], src["camid"])
        diff = np.abs(load_image(it.path).astype(int) - src["image"].numpy().astype(int)).mean()
        assert diff < 4  # JPEG quality 95
    with pytest.raises(UserError, match="output folder exists and is not empty"):
        export(shards, tmp_path / "market")


def test_pose_strategies():
    rng = np.random.default_rng(0)
    from reidaug.data.synthetic import sample_pose, to_annotation

    kps = np.stack([to_annotation(sample_pose(rng), 0.0, rng) for _ in range(60)])
    names = [f"{i:04d}.jpg" for i in range(60)]
    bank = PoseBank.from_annotations(names, dict(zip(names, kps, strict=True)))
    assert len(bank) == int(K.is_valid_pose(kps).sum())
    for strategy in ("random", "kmeans", "farthest"):
        sampler = PoseSampler(bank, 5, strategy, seed=1)
        for s, name in enumerate(bank.names[:20]):
            picks = sampler.sample(name, s)
            assert len(set(picks)) == 5 and bank.names.index(name) not in picks
    km = PoseSampler(bank, 5, "kmeans")
    assert set(km.sample("unknown.jpg", 0)) == set(km.sample("other.jpg", 1))
    # farthest-point poses are more spread out than random ones
    fp, rd = PoseSampler(bank, 5, "farthest"), PoseSampler(bank, 5, "random")

    def spread(idx):
        f = fp.features[idx]
        return np.mean([np.linalg.norm(a - b) for i, a in enumerate(f) for b in f[i + 1 :]])

    assert np.mean([spread(fp.sample(n, i)) for i, n in enumerate(bank.names[:10])]) > np.mean(
        [spread(rd.sample(n, i)) for i, n in enumerate(bank.names[:10])]
    )
    with pytest.raises(UserError, match="--poses must be at least 1, got 0"):
        PoseSampler(bank, 0)
    with pytest.raises(
        UserError,
        match=f"the pose bank has {len(bank)} valid poses; --poses {len(bank)} with kmeans needs",
    ):
        PoseSampler(bank, len(bank), "kmeans")
    # as many poses as the bank allows: every source still gets distinct poses, never its own
    full = PoseSampler(bank, len(bank) - 1, "kmeans")
    for s, name in enumerate(bank.names[:5]):
        picks = full.sample(name, s)
        assert len(set(picks)) == len(bank) - 1 and bank.names.index(name) not in picks


def test_bad_input(runner, run, shards, tmp_path):
    def last(*args):
        r = runner.invoke(cli, ["synthesize", *args])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        return r.stderr.strip().splitlines()[-1]

    assert (
        last("--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
        == f"Error: run directory not found: {tmp_path / 'nope'}"
    )
    assert (
        last("--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "o"))
        == f"Error: checkpoint not found: {tmp_path / 'x.pt'}"
    )
    r = runner.invoke(cli, ["synthesize", "--run", str(run), "--poses", "0", "--out", "o"])
    assert (
        r.exit_code == 2 and "Invalid value for '--poses': 0 is not in the range x>=1" in r.stderr
    )
    msg = last("--run", str(run), "--poses", "3", "--shard-size", "64", "--out", str(shards))
    assert msg == f"Error: {shards} holds shards of a different job (poses: 2 != 3)"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert last("--checkpoint", str(bad), "--out", str(tmp_path / "o")).startswith(
        f"Error: cannot load checkpoint {bad}"
    )


def test_a_checkpoint_of_another_datasets_run_is_refused(run, tmp_path, runner):
    from reidaug.data import make_synthetic

    make_synthetic(tmp_path / "other", ids=6, seed=1, test_pairs=20)
    other = train(tiny(tmp_path / "other", tmp_path / "runs", iters1=1, iters2=1))
    r = runner.invoke(
        cli,
        [
            "synthesize",
            "--run",
            str(run),
            "--checkpoint",
            str(C_latest(other)),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"Error: checkpoint {C_latest(other)} was trained on synthetic at {tmp_path / 'other'}"
    )
    assert "give the checkpoint's own run or drop --run" in line and not (tmp_path / "o").exists()


def test_a_relative_root_is_stored_resolved_and_synthesize_takes_a_moved_one(
    tmp_path, monkeypatch, runner
):
    import json

    from reidaug.data import make_synthetic

    make_synthetic(tmp_path / "data", ids=6, seed=2, test_pairs=20)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / train(tiny("data", "runs", iters1=1, iters2=1))
    saved = json.loads((run / "training_options.json").read_text())
    assert saved["root"] == str((tmp_path / "data").resolve())
    monkeypatch.chdir(run)  # another working directory
    args = [
        "synthesize",
        "--run",
        str(run),
        "--poses",
        "1",
        "--workers",
        "0",
        "--out",
        str(tmp_path / "sh"),
    ]
    assert runner.invoke(cli, args).exit_code == 0  # the stored root holds from anywhere
    (tmp_path / "data").rename(tmp_path / "moved")
    r = runner.invoke(cli, [*args[:-1], str(tmp_path / "sh2")])
    assert r.exit_code == 1 and str(tmp_path / "data") in r.stderr
    r = runner.invoke(cli, [*args[:-1], str(tmp_path / "sh2"), "--root", str(tmp_path / "moved")])
    assert r.exit_code == 0, r.output
    assert len(ShardDataset(tmp_path / "sh2")) == len(SyntheticMarket(tmp_path / "moved").train)


def test_another_jobs_shards_are_never_touched_without_a_manifest(run, tmp_path, runner):
    out = tmp_path / "sh"
    synthesize(out, run=run, poses=2, shard_size=64, batch_size=16, workers=0, command="test")
    (out / "manifest.json").unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = runner.invoke(
        cli,
        [
            "synthesize",
            "--run",
            str(run),
            "--poses",
            "1",
            "--shard-size",
            "64",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: {out} holds shards of a different job (shard-00000.h5: poses 2 != 1); nothing "
        "was changed"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (out / "shard-00009.h5").write_bytes(b"junk")
    r = runner.invoke(
        cli,
        [
            "synthesize",
            "--run",
            str(run),
            "--poses",
            "2",
            "--shard-size",
            "64",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 1 and "shard-00009.h5 is not a readable reidaug shard" in r.stderr
    (out / "shard-00009.h5").unlink()
    # the same job without its manifest goes on
    r = runner.invoke(
        cli,
        [
            "synthesize",
            "--run",
            str(run),
            "--poses",
            "2",
            "--shard-size",
            "64",
            "--batch-size",
            "16",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert S.read_manifest(out)["complete"]


def test_verbosity_does_not_change_the_shard_bytes(run, tmp_path):
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PYTHONPATH": str(REPO)}
    args = [
        "synthesize",
        "--run",
        str(run),
        "--poses",
        "1",
        "--shard-size",
        "64",
        "--batch-size",
        "16",
        "--workers",
        "0",
    ]
    for pre, out in (([], "a"), (["-v", "--device", "cpu"], "b")):
        cmd = [sys.executable, "-m", "reidaug", *pre, *args, "--out", str(tmp_path / out)]
        assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    files = sorted(p.name for p in (tmp_path / "a").glob("shard-*.h5"))
    assert files and all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
    with h5py.File(tmp_path / "a" / files[0], "r") as f:
        assert f.attrs["command"].startswith("reidaug synthesize --run ")


def test_full_disk_keeps_finished_shards(run, tmp_path, monkeypatch):
    real = S.write_shard
    calls = {"n": 0}

    def flaky(path, data, attrs):
        calls["n"] += 1
        if calls["n"] == 3:
            real_write = S._write_file

            def full(p, data):
                p.write_bytes(bytes(data)[:100])  # a partial temp file, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(S, "_write_file", full)
            try:
                return real(path, data, attrs)
            finally:
                monkeypatch.setattr(S, "_write_file", real_write)
        return real(path, data, attrs)

    monkeypatch.setattr("reidaug.synthesis.job.write_shard", flaky)
    out = tmp_path / "s"
    with pytest.raises(
        UserError,
        match=r"could not write shard-00002.h5 \(no space left on device\); "
        r"finished shards are kept",
    ):
        synthesize(out, run=run, poses=2, shard_size=64, batch_size=16, workers=0)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "shard-00000.h5",
        "shard-00001.h5",
    ]
    monkeypatch.setattr("reidaug.synthesis.job.write_shard", real)
    s = synthesize(out, run=run, poses=2, shard_size=64, batch_size=16, workers=0)
    assert s["skipped_shards"] == 2 and s["complete"]


def test_shard_images_are_the_generator_outputs_for_their_source_and_pose(run, shards, synth_root):
    """Image i of a shard is the model's final image for (its source, its target pose), and its
    stored pose is the donor's annotation: all-zero images, copied conditions or a misaligned
    pose fail here."""
    from reidaug.data.pairs import load_image, to_tensor, to_uint8
    from reidaug.data.pose import render_heatmaps
    from reidaug.training import load_generator

    gen = load_generator(run)
    rec, cfg = gen.recipe, gen.config
    ds = SyntheticMarket(synth_root)
    ann = ds.annotations("train")
    with h5py.File(sorted(shards.glob("shard-*.h5"))[1], "r") as f:
        images, kps = f["images"][()], f["target_keypoints"][()]
        src, tgt = f["source_name"].asstr()[()], f["target_name"].asstr()[()]
    for j in (0, 7, len(images) - 1):
        assert src[j] != tgt[j] and np.array_equal(kps[j], ann[tgt[j]])
        cond = load_image(ds.split_dir("train") / src[j], ds.height, ds.width)
        pose = render_heatmaps(kps[j], ds.height, ds.width, cfg.heatmap)
        out = to_uint8(rec.final(to_tensor(cond)[None], torch.from_numpy(pose)[None]))[0]
        assert np.abs(out.astype(int) - images[j].astype(int)).max() <= 1, j
        assert np.abs(images[j].astype(int) - cond.astype(int)).mean() > 2  # not the condition


def _warp_cmd(root, out):
    return [sys.executable, "-m", "reidaug", "synthesize", "--source", "warp", "--dataset",
            "synthetic", "--root", str(root), "--real-per-id", "2", "--poses", "3", "--out",
            out, "--shard-size", "8", "--batch-size", "4", "--workers", "0"]  # fmt: skip


def test_warp_source_writes_the_part_warp_of_each_source_and_resumes_byte_identically(
    synth_root, tmp_path, runner
):
    """``--source warp``: image i is the training-free part warp of its source into its stored
    target pose (no model), the subset is the bench's, bench provenance accepts it, and a
    SIGKILLed job resumes to the same bytes."""
    from reidaug.bench.run import check_provenance
    from reidaug.data.pairs import load_image
    from reidaug.data.parts import warp_images

    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PYTHONPATH": str(REPO)}
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    subprocess.run(_warp_cmd(synth_root, "out"), cwd=tmp_path / "a", env=env, check=True)
    whole = tmp_path / "a" / "out"
    ds = SyntheticMarket(synth_root)
    ds.restrict_train(2, None, 0)
    shards = ShardDataset(whole)
    assert len(shards) == 3 * len(ds.train)
    assert {it.name for it in ds.train} == set(shards.column("source").tolist())
    check_provenance(shards, ds)  # no generator: only the sources must lie in the subset
    ann = ds.annotations("train")
    with h5py.File(sorted(whole.glob("shard-*.h5"))[1], "r") as f:
        assert f.attrs["model"] == "warp" and f.attrs["checkpoint_sha256"] == ""
        images, kps = f["images"][()], f["target_keypoints"][()]
        src = f["source_name"].asstr()[()]
    cond = np.stack([load_image(ds.split_dir("train") / s, ds.height, ds.width) for s in src])
    want = warp_images(cond, np.stack([ann[s] for s in src]), kps)
    assert np.array_equal(images, want)
    assert np.abs(images.astype(int) - cond.astype(int)).mean() > 2  # moved, not copied
    # a bench on another subset refuses the warp's shards (sources outside it)
    other = SyntheticMarket(synth_root)
    other.restrict_train(2, None, 1)
    with pytest.raises(UserError, match="outside this bench's training subset"):
        check_provenance(shards, other)

    proc = subprocess.Popen(
        _warp_cmd(synth_root, "out"), cwd=tmp_path / "b", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (tmp_path / "b" / "out" / "shard-00001.h5").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = len(list((tmp_path / "b" / "out").glob("shard-*.h5")))
    total = len(list(whole.glob("shard-*.h5")))
    assert 2 <= killed < total, "the kill should land mid-job"
    r = subprocess.run(
        _warp_cmd(synth_root, "out"), cwd=tmp_path / "b", env=env, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    assert "verified and skipped" in r.stderr
    for f in sorted(whole.glob("shard-*.h5")):
        assert f.read_bytes() == (tmp_path / "b" / "out" / f.name).read_bytes(), f.name


def test_warp_source_refuses_a_generator_and_needs_a_dataset(runner, run, synth_root, tmp_path):
    def last(*args):
        r = runner.invoke(
            cli, ["synthesize", "--source", "warp", "--out", str(tmp_path / "o"), *args]
        )
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        return r.stderr.strip().splitlines()[-1]

    assert last("--run", str(run), "--dataset", "synthetic", "--root", str(synth_root)) == (
        "Error: --source warp uses no generator: drop --run and --checkpoint"
    )
    assert last() == "Error: --source warp needs --dataset and --root: whose people to warp"
    assert not (tmp_path / "o").exists()
    r = runner.invoke(cli, ["synthesize", "--out", str(tmp_path / "o")])
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: synthesize needs --run (or --checkpoint), or --source warp"
    )
