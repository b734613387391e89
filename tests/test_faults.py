"""Faults: corrupt shards, full disks and read-only folders give one ``Error:`` line and lose
nothing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reidaug.cli import cli
from reidaug.errors import UserError
from reidaug.synthesis import ShardDataset, export, synthesize
from reidaug.training import train
from tests.helpers import tiny

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(synth_root, tmp_path_factory):
    return train(tiny(synth_root, tmp_path_factory.mktemp("runs"), iters1=2, iters2=2))


def _shards(run, out):
    synthesize(out, run=run, poses=2, shard_size=32, batch_size=16, workers=0, command="test")
    return out


@pytest.fixture()
def mounted(tmp_path):
    """Mount a tmpfs with these options on a fresh folder; skip where mounting is not allowed."""
    points = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(points)}"
        point.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'mount failed'})")
        points.append(point)
        return point

    yield mount
    for p in points:
        subprocess.run(["umount", str(p)], capture_output=True)


def _reidaug(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reidaug", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_a_truncated_shard_is_named_and_export_leaves_nothing(run, synth_root, tmp_path, runner):
    sh = _shards(run, tmp_path / "s")
    bad = sorted(sh.glob("shard-*.h5"))[1]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    for cmd in (
        ["export", "--shards", str(sh), "--out", str(tmp_path / "m")],
        [
            "bench-reid",
            "--shards",
            str(sh),
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--out",
            str(tmp_path / "b"),
        ],
    ):
        r = runner.invoke(cli, cmd)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert r.stderr.strip().splitlines()[-1].startswith(f"Error: shard {bad} is ")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").rglob("*.jpg"))


def test_a_bit_flipped_shard_fails_its_checksum_and_export_can_rerun(run, tmp_path):
    sh = _shards(run, tmp_path / "s")
    bad = sorted(sh.glob("shard-*.h5"))[0]
    data = bytearray(bad.read_bytes())
    data[len(data) - 100] ^= 0x01  # inside the image chunks
    good = bad.read_bytes()
    bad.write_bytes(bytes(data))
    with pytest.raises(Exception, match=f"shard {bad} does not match its SHA-256"):
        ShardDataset(sh)
    with pytest.raises(Exception, match="SHA-256"):
        export(sh, tmp_path / "m")
    assert not any((tmp_path / "m").rglob("*")) if (tmp_path / "m").exists() else True
    bad.write_bytes(good)  # repaired: the same folder exports
    n = export(sh, tmp_path / "m")
    assert (
        n == len(ShardDataset(sh)) == len(list((tmp_path / "m" / "bounding_box_train").iterdir()))
    )
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]


def test_export_that_fails_midway_leaves_no_images(run, tmp_path, monkeypatch):
    sh = _shards(run, tmp_path / "s")
    from PIL import Image

    real, calls = Image.Image.save, {"n": 0}

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 20:
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Image.Image, "save", failing)
    with pytest.raises(UserError, match=r"could not write .*bounding_box_train \(no space left"):
        export(sh, tmp_path / "m")
    assert list((tmp_path / "m").rglob("*.jpg")) == []
    monkeypatch.setattr(Image.Image, "save", real)
    assert export(sh, tmp_path / "m") == len(ShardDataset(sh))


def test_a_full_disk_during_synthesize_is_one_error_and_keeps_finished_shards(run, mounted):
    small = mounted("size=256k")
    r = _reidaug(
        "synthesize",
        "--run",
        str(run),
        "--poses",
        "8",
        "--shard-size",
        "8",
        "--batch-size",
        "8",
        "--workers",
        "0",
        "--out",
        str(small / "sh"),
    )
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: could not write shard-") and last.endswith(
        "finished shards are kept"
    )
    left = sorted(p.name for p in (small / "sh").iterdir())
    assert not [n for n in left if n.endswith(".tmp")]
    finished = [n for n in left if n.startswith("shard-")]
    assert finished  # what fitted is kept, and readable
    assert len(ShardDataset(small / "sh", check=False)) == 8 * len(finished)


def test_a_full_disk_at_checkpoint_time_is_one_error(synth_root, mounted):
    small = mounted("size=64k")
    r = _reidaug(
        "train",
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--width",
        "8",
        "--iters",
        "2",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--out",
        str(small / "runs"),
    )
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert "no space left on device" in r.stderr.strip().splitlines()[-1].lower()
    assert not list((small / "runs").rglob("*.tmp"))


@pytest.mark.parametrize(
    "command",
    [
        [
            "train",
            "--dataset",
            "synthetic",
            "--width",
            "4",
            "--iters",
            "1",
            "--batch-size",
            "2",
            "--workers",
            "0",
            "--out",
        ],
        ["data", "make-synthetic", "--ids", "2", "--out"],
    ],
)
def test_a_read_only_output_folder_is_one_error(synth_root, mounted, command):
    ro = mounted("ro,size=64k")
    args = [*command, str(ro / "x")]
    if command[0] == "train":
        args[3:3] = ["--root", str(synth_root)]
    r = _reidaug(*args)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert r.stderr.strip().splitlines()[-1].startswith("Error: could not write")
    assert "read-only file system" in r.stderr and "unexpected" not in r.stderr


def test_shards_are_verified_only_against_their_own_manifest(run, tmp_path):
    sh = _shards(run, tmp_path / "s")
    (sh / "manifest.json").unlink()
    copy = tmp_path / "c"
    shutil.copytree(sh, copy)
    assert len(ShardDataset(copy)) == len(ShardDataset(sh))  # no manifest: nothing to check against


def test_a_batch_too_large_for_memory_is_refused_before_training(
    runner, synth_root, tmp_path, monkeypatch
):
    args = [
        "train",
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--width",
        "4",
        "--workers",
        "0",
        "--out",
        str(tmp_path),
    ]
    r = runner.invoke(cli, [*args, "--batch-size", "10000000"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    last = r.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("Error: --batch-size 10000000 needs at least ")
        and "GiB are available (a lower bound" in last
    )
    assert not list(tmp_path.iterdir())  # no run folder is left behind

    def oom(*a, **k):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
        )

    monkeypatch.setattr("reidaug.training.train", oom)  # what the command imports
    r = runner.invoke(cli, [*args, "--batch-size", "4"])
    assert r.exit_code == 1
    assert (
        r.stderr.strip().splitlines()[-1]
        == "Error: out of memory: use a smaller --batch-size (or --width)"
    )
