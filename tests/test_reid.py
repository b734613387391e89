"""Re-ID benchmark: both arms end to end, pid carry-over, LSRO, reports, bad input."""

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidaug.cli import cli
from reidaug.data import SyntheticMarket
from reidaug.errors import UserError
from reidaug.reid import BenchConfig, bench, lsro_loss
from reidaug.reid.bench import _Mixed
from reidaug.synthesis import ShardDataset, synthesize
from reidaug.training import train
from tests.test_training import tiny


@pytest.fixture(scope="module")
def shards(synth_root, tmp_path_factory):
    run = train(tiny(synth_root, tmp_path_factory.mktemp("runs"), iters1=1, iters2=1))
    out = tmp_path_factory.mktemp("shards") / "s"
    synthesize(out, run=run, poses=1, shard_size=500, batch_size=32, workers=0)
    return out


def test_lsro_is_cross_entropy_against_a_uniform_target():
    logits = torch.randn(5, 7)
    uniform = torch.full((5, 7), 1 / 7)
    assert torch.allclose(lsro_loss(logits), F.cross_entropy(logits, uniform))


def test_synthetic_images_carry_their_source_pid(shards, synth_root):
    ds = SyntheticMarket(synth_root)
    sd = ShardDataset(shards)
    label_of = {it.name: it.pid for it in ds.train}
    mixed = _Mixed(ds.train, sd, np.arange(len(sd)), transform=lambda im: im)
    assert len(mixed) == len(ds.train) + len(sd)
    for i in range(len(ds.train), len(mixed), 9):
        _, label, is_syn = mixed[i]
        assert is_syn == 1 and label == label_of[sd[i - len(ds.train)]["source"]]
    _, label, is_syn = mixed[0]
    assert is_syn == 0 and label == ds.train[0].pid


def test_bench_runs_both_arms_and_writes_reports(runner, shards, synth_root, tmp_path):
    out = tmp_path / "bench"
    r = runner.invoke(cli, ["bench-reid", "--dataset", "synthetic", "--root", str(synth_root), "--shards", str(shards),
                            "--epochs", "1", "--batch-size", "16", "--workers", "0", "--label", "lsro",
                            "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "baseline" in r.stderr and "augmented" in r.stderr and "delta" in r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["weights"] == "from scratch"
    for arm in ("baseline", "augmented"):
        assert 0 <= rep["summary"][arm]["mAP"]["mean"] <= 1 and len(rep["runs"][arm]) == 1
    assert rep["runs"]["baseline"][0]["synthetic_per_epoch"] == 0
    assert rep["runs"]["augmented"][0]["synthetic_per_epoch"] == len(
        SyntheticMarket(synth_root).train
    )
    assert "| delta |" in (out / "report.md").read_text() and (out / "cmc.png").stat().st_size > 0


def test_bad_input(shards, synth_root, tmp_path):
    cfg = BenchConfig(
        dataset="synthetic", root=str(synth_root), shards=str(shards), epochs=1, out=str(tmp_path)
    )
    with pytest.raises(
        UserError, match='Unknown re-ID model "resnet5"; expected one of: .*resnet50'
    ):
        bench(BenchConfig(**{**cfg.__dict__, "model": "resnet5"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no shards in"):
        bench(BenchConfig(**{**cfg.__dict__, "shards": str(tmp_path / "empty")}))
    other = tmp_path / "other"
    shutil.copytree(shards, other)
    for f in other.glob("shard-*.h5"):
        with h5py.File(f, "r+") as h:
            h.attrs["dataset"] = "market1501"
    with pytest.raises(UserError, match="shards were made from market1501, not synthetic"):
        bench(BenchConfig(**{**cfg.__dict__, "shards": str(other)}))
    for f in other.glob("shard-*.h5"):
        with h5py.File(f, "r+") as h:
            h.attrs["dataset"] = "synthetic"
            h["pid"][0] = 9999
    with pytest.raises(UserError, match="shard pid 9999 .* is not a training id of synthetic"):
        bench(BenchConfig(**{**cfg.__dict__, "shards": str(other)}))
