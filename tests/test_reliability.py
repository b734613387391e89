"""Concurrent jobs, crafted shards and flags that would do nothing: each is one ``Error:`` line,
and nothing already written is lost."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from reidaug.cli import cli
from reidaug.errors import UserError
from reidaug.lock import folder_lock
from reidaug.synthesis import ShardDataset, export, synthesize
from reidaug.training import train
from tests.helpers import tiny


@pytest.fixture(scope="module")
def run(synth_root, tmp_path_factory):
    return train(tiny(synth_root, tmp_path_factory.mktemp("runs"), iters1=1, iters2=1))


@pytest.fixture()
def shards(run, tmp_path):
    out = tmp_path / "s"
    synthesize(out, run=run, poses=1, shard_size=32, batch_size=16, workers=0, command="test")
    return out


def _hold(folder, name):
    """Another process that holds ``folder``'s lock ``name`` until killed."""
    code = (
        "import sys, time; from reidaug.lock import folder_lock\n"
        f"with folder_lock({str(folder)!r}, {name!r}):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_job_on_a_locked_folder_is_refused_and_names_the_holder(run, shards, tmp_path):
    before = {p.name: p.read_bytes() for p in shards.glob("shard-*.h5")}
    holder = _hold(shards, "synthesize-0-of-1")
    try:
        with pytest.raises(UserError, match=rf"{shards} is in use by another reidaug job \(pid "):
            synthesize(shards, run=run, poses=1, shard_size=32, seed=5, workers=0)
    finally:
        holder.kill()
        holder.wait()
    assert {p.name: p.read_bytes() for p in shards.glob("shard-*.h5")} == before
    with folder_lock(shards, "synthesize-0-of-1"):  # released when its process ended
        pass


def test_two_resumes_and_two_exports_at_once_are_refused(run, shards, tmp_path):
    holder = _hold(run, "train")
    try:
        with pytest.raises(UserError, match=f"{run} is in use by another reidaug job"):
            train(resume=run, changes={"iters2": 2})
    finally:
        holder.kill()
        holder.wait()
    out = tmp_path / "m"
    holder = _hold(out, "export")
    try:
        with pytest.raises(UserError, match=f"{out} is in use by another reidaug job"):
            export(shards, out)
    finally:
        holder.kill()
        holder.wait()
    assert export(shards, out) == len(ShardDataset(shards))


def test_a_shard_with_external_storage_is_refused(shards, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 4096)
    (p,) = sorted(shards.glob("shard-*.h5"))[:1]
    with h5py.File(p, "a") as f:
        n, shape = f["images"].shape[0], f["images"].shape[1:]
        del f["images"]
        f.create_dataset(
            "images", shape=(n, *shape), dtype=np.uint8,
            external=[(str(secret), 0, h5py.h5f.UNLIMITED)],
        )  # fmt: skip
    with pytest.raises(UserError, match=f"shard {p} uses external storage; refusing to read it"):
        ShardDataset(shards, check=False)
    # a crafted folder comes with a manifest that matches it
    from reidaug.weights import file_sha256

    man = json.loads((shards / "manifest.json").read_text())
    man["shards"][0].update(sha256=file_sha256(p), bytes=p.stat().st_size)
    (shards / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match="uses external storage"):
        export(shards, tmp_path / "m")
    assert not (tmp_path / "m" / "bounding_box_train").exists()


def test_manifest_entries_must_be_bare_shard_names(shards, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(shards, other)
    man = json.loads((shards / "manifest.json").read_text())
    man["shards"][0]["file"] = "../other/shard-00000.h5"
    (shards / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match=r"lists '../other/shard-00000.h5', which is not a shard"):
        ShardDataset(shards)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").rglob("*.jpg"))


def test_a_truncated_shard_of_this_job_is_written_again(run, shards):
    (p,) = sorted(shards.glob("shard-*.h5"))[:1]
    good = p.read_bytes()
    with h5py.File(p, "r") as f:
        images = f["images"][()]
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="truncated or was replaced; synthesize it again"):
        ShardDataset(shards)
    s = synthesize(
        shards, run=run, poses=1, shard_size=32, batch_size=16, workers=0, command="test"
    )
    assert s["written_shards"] == 1
    with h5py.File(p, "r") as f:  # the same images (its "created" attribute is the new time)
        assert np.array_equal(f["images"][()], images)
    assert len(ShardDataset(shards)) > 0


def test_idp_refuses_shards_of_another_dataset(shards, tmp_path, runner):
    from reidaug.data import make_synthetic

    other = tmp_path / "other"
    make_synthetic(other, ids=3, seed=7, test_pairs=8)
    r = runner.invoke(cli, ["evaluate", "--shards", str(shards), "--dataset", "synthetic",
                            "--root", str(other), "--metrics", "idp",
                            "--reid-checkpoint", str(tmp_path / "x.pt")])  # fmt: skip
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1].startswith("Error: shard pid ")
    assert f"is not a training id of synthetic at {other}" in r.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["bench-reid", "--arms", "baseline", "--synthetic-ratio", "0.5"],
         "--synthetic-ratio shapes the augmented arms, which --arms leaves out"),
        (["bench-reid", "--arms", "baseline", "--label", "lsro"],
         "--label shapes the augmented arm"),
        (["bench-reid", "--stepsize", "10"], "--stepsize sets the step schedulers' decays"),
        (["train", "--model", "pg2", "--num-scales", "3"],
         "--num-scales sets MsCGAN's discriminators"),
    ],
)  # fmt: skip
def test_flags_that_would_change_nothing_are_refused(runner, args, message):
    r = runner.invoke(cli, args)
    assert r.exit_code == 2 and message in r.stderr, r.stderr


def test_evaluate_refuses_flags_that_would_change_nothing(run, tmp_path):
    from reidaug.metrics import evaluate

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"random bytes")
    with pytest.raises(UserError, match="--inception-weights serve is, mis and fid"):
        evaluate(run=run, metrics=["ssim"], inception_weights=junk, limit=4, device="cpu")
    with pytest.raises(UserError, match="--reid-epochs shape the cached idp judge"):
        evaluate(run=run, metrics=["idp"], reid_checkpoint=junk, reid_recipe={"epochs": 3},
                 limit=4, device="cpu")  # fmt: skip
    with pytest.raises(UserError, match="this run was trained without --ema"):
        evaluate(run=run, metrics=["ssim"], raw_weights=True, limit=4, device="cpu")


def test_evaluate_checks_its_json_path_before_scoring(run, runner, tmp_path):
    r = runner.invoke(cli, ["evaluate", "--run", str(run), "--metrics", "ssim",
                            "--json", str(tmp_path / "missing" / "x.json")])  # fmt: skip
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: cannot write {tmp_path / 'missing' / 'x.json'}: folder "
        f"{tmp_path / 'missing'} does not exist"
    )
    assert "image quality" not in r.stdout + r.stderr  # it failed before any scoring


def test_a_divergence_never_names_or_writes_a_poisoned_checkpoint(synth_root, tmp_path):
    """Weights of 1e9 are finite; they are still not a checkpoint to resume from."""
    cfg = tiny(synth_root, tmp_path, iters1=3, iters2=1, lr=1e9, checkpoint_every=1)
    with pytest.raises(UserError) as e:
        train(cfg)
    assert "no checkpoint of" in str(e.value) and "start a new run with a lower --lr" in str(
        e.value
    )
    assert not list(tmp_path.rglob("step-*.pt"))


def test_bad_names_and_files_are_named(tmp_path, runner):
    from reidaug.data.keypoints import format_row, read_annotations, write_annotations
    from reidaug.data.market1501 import parse_name

    with pytest.raises(UserError, match="cannot parse person id and camera from image name"):
        parse_name("12-34_c1s1_000001_01.jpg")
    with pytest.raises(UserError, match="camera 0 in image name"):
        parse_name("0002_c0s1_000451_03.jpg")
    kps = np.full((18, 2), -1)
    csv = tmp_path / "a.csv"
    write_annotations(csv, {"0002_c1s1_000451_03.jpg": kps})
    csv.write_text(csv.read_text() + format_row("0002_c1s1_000451_03.jpg", kps) + "\n")
    with pytest.raises(UserError, match=r"a.csv:3: 0002_c1s1_000451_03.jpg is annotated twice"):
        read_annotations(csv)
    with pytest.raises(UserError, match="cannot be written to an annotation CSV"):
        write_annotations(tmp_path / "b.csv", {"x: [1].jpg": kps})
    assert not list(tmp_path.glob(".b.csv*"))  # no temp file is left behind
    out = tmp_path / "demo"
    (out / "data").mkdir(parents=True)
    (out / "data" / "info.json").write_text("{not json")
    r = runner.invoke(cli, ["demo", "--out", str(out), "--ids", "4"])
    assert r.exit_code == 1
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: cannot read {out / 'data' / 'info.json'} (JSONDecodeError)")
    )


def test_unreadable_images_say_why(tmp_path):
    from reidaug.data.estimate import read_crop

    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(UserError, match=r"cannot read image .*loop.jpg \(too many levels"):
        read_crop(loop)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(UserError, match="corrupt or not an image"):
        read_crop(junk)


def test_a_huge_crop_is_framed_at_a_bounded_size():
    from reidaug.data import mediapipe_pose as mpp

    seen = []

    class Fake:
        def process(self, canvas):
            seen.append(canvas.shape)

            class R:
                pose_landmarks = None

            return R()

    pose = mpp.MediaPipePose.__new__(mpp.MediaPipePose)
    pose.scale, pose.framings, pose.min_visibility = 4, ((0.5, 0.5),), 0.7
    pose._pose = {0.5: Fake()}
    assert pose.landmarks(np.zeros((5000, 2500, 3), np.uint8)) is None
    assert max(seen[0][:2]) <= 2 * mpp.MAX_SIDE
    pose.landmarks(np.zeros((128, 64, 3), np.uint8))
    assert seen[1][:2] == (1024, 1024)  # a Market crop keeps its 4x upscale


def test_a_killed_writers_temp_folder_is_removed_by_the_next_run(shards, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    left = out / f".bounding_box_train.{dead.pid}.tmp"
    (left / "x").mkdir(parents=True)
    (left / "x" / "big.bin").write_bytes(b"0" * 1024)
    assert export(shards, out) == len(ShardDataset(shards))
    assert not left.exists()
    assert sorted(p.name for p in out.iterdir()) == ["bounding_box_train"]


def test_equal_checkpoints_are_equal_files(tmp_path):
    """A checkpoint's digest names the generator of a synthesis job and of every augmented
    bench result, so the same weights must give the same bytes whatever file they go to."""
    import torch

    from reidaug.training import checkpoint
    from reidaug.weights import file_sha256

    payload = {"nets": {"G1": {"w": torch.arange(6.0).reshape(2, 3)}}, "config": {"seed": 0}}
    a = checkpoint.save(tmp_path / "a" / "step-0000001.pt", payload)
    b = checkpoint.save(tmp_path / "b.pt", payload)
    assert file_sha256(a) == file_sha256(b)
    assert torch.equal(checkpoint.load(b)["nets"]["G1"]["w"], payload["nets"]["G1"]["w"])
