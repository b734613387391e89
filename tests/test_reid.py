"""Re-ID benchmark: recipes, equal steps, resumable per-(arm, seed) results, paired deltas, LSRO,
ranking with exclusions, reports, bad input."""

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidaug.bench import BenchConfig, bench, lsro_loss
from reidaug.bench.plan import batch_plan, split_batch, steps_per_epoch
from reidaug.bench.run import Mixed, train_arm
from reidaug.bench.stats import paired_delta
from reidaug.cli import cli
from reidaug.data import SyntheticMarket
from reidaug.errors import UserError
from reidaug.reidnet import adapter
from reidaug.reidnet.ranking import rank, same_camera_mask
from reidaug.reidnet.recipe import RECIPES
from reidaug.synthesis import ShardDataset, synthesize
from reidaug.training import train
from tests.helpers import tiny


@pytest.fixture(scope="module")
def shards(synth_root, tmp_path_factory):
    run = train(tiny(synth_root, tmp_path_factory.mktemp("runs"), iters1=1, iters2=1))
    out = tmp_path_factory.mktemp("shards") / "s"
    synthesize(out, run=run, poses=1, shard_size=500, batch_size=32, workers=0)
    return out


def small(synth_root, shards, out, **kw):
    """The cpu recipe, shrunk to seconds on the embedded dataset."""
    base = dict(
        dataset="synthetic",
        root=str(synth_root),
        shards=str(shards) if shards else None,
        epochs=2,
        batch_size=16,
        workers=0,
        out=str(out),
        device="cpu",
    )
    return BenchConfig.from_recipe("cpu", **{**base, **kw})


def test_lsro_is_cross_entropy_against_a_uniform_target():
    logits = torch.randn(5, 7)
    uniform = torch.full((5, 7), 1 / 7)
    assert torch.allclose(lsro_loss(logits), F.cross_entropy(logits, uniform))


def test_recipes_resolve_and_flags_override():
    cpu = BenchConfig.from_recipe("cpu")
    assert (
        cpu.model,
        cpu.height,
        cpu.width,
        cpu.batch_size,
        cpu.optim,
        cpu.lr,
        cpu.weight_decay,
        cpu.scheduler,
        cpu.epochs,
        cpu.label_smooth,
        cpu.transforms,
    ) == ("osnet_x0_25", 128, 64, 64, "amsgrad", 3e-3, 5e-4, "cosine", 38, True, ["random_flip"])
    assert BenchConfig() == cpu  # the dataclass defaults are the cpu recipe
    gpu = BenchConfig.from_recipe(
        "gpu", epochs=5, fixbase_epochs=2, transforms=["random_flip", "random_erase"]
    )
    assert (gpu.model, gpu.height, gpu.width, gpu.epochs) == ("osnet_x1_0", 256, 128, 5)
    assert gpu.transforms == ["random_flip", "random_erase"] and gpu.recipe == "gpu"
    assert BenchConfig.from_recipe("gpu", lr=None).lr == RECIPES["gpu"]["lr"]  # None: not given
    with pytest.raises(
        UserError, match='unknown recipe "tpu"; expected one of: cpu, pretrained, gpu'
    ):
        BenchConfig.from_recipe("tpu")
    with pytest.raises(
        UserError, match='unknown transform "random_blur"; expected some of: .*random_erase'
    ):
        adapter.transforms(128, 64, ["random_blur"])


def test_equal_steps_per_arm_and_extra_steps():
    cfg = BenchConfig(batch_size=16, synthetic_ratio=0.25)
    n_real, n_syn = 100, 40
    base = batch_plan(cfg, n_real, 0, seed=3, epoch=0)
    aug = batch_plan(cfg, n_real, n_syn, seed=3, epoch=0)
    assert len(base) == len(aug) == steps_per_epoch(cfg, n_real, True) == 100 // 16
    assert split_batch(cfg) == (12, 4)
    for b in base:
        assert len(b) == 16 and max(b) < n_real
    for b in aug:  # a quarter of every batch is synthetic (indices >= n_real)
        assert len(b) == 16 and sum(i >= n_real for i in b) == 4
    # the real stream is the same in both arms; the augmented arm walks it more slowly
    real_aug = [i for b in aug for i in b if i < n_real]
    assert real_aug == [i for b in base for i in b][: len(real_aug)]
    # the plan is a pure function of (seed, epoch): an interrupted arm resumes on the same data
    assert batch_plan(cfg, n_real, n_syn, 3, 1) == batch_plan(cfg, n_real, n_syn, 3, 1)
    assert batch_plan(cfg, n_real, n_syn, 3, 1) != batch_plan(cfg, n_real, n_syn, 4, 1)
    # every real image is seen once per permutation of the stream
    stream = [i for e in range(2) for b in batch_plan(cfg, n_real, 0, 3, e) for i in b]
    assert sorted(stream[:100]) == list(range(100))

    extra = BenchConfig(batch_size=16, synthetic_ratio=0.25, extra_steps=True)
    plan = batch_plan(extra, n_real, n_syn, seed=3, epoch=0)
    assert len(plan) == steps_per_epoch(extra, n_real, True) == (100 + 33) // 16 > len(base)
    flat = [i for b in plan for i in b]
    assert len([i for i in flat if i < n_real]) <= 100 and any(i >= n_real for i in flat)


def test_paired_delta_matches_a_hand_computation():
    base, aug = [0.40, 0.42, 0.41], [0.43, 0.44, 0.45]
    d = paired_delta(base, aug)
    diffs = np.array([0.03, 0.02, 0.04])
    assert d["per_seed"] == pytest.approx(diffs.tolist())
    assert d["mean"] == pytest.approx(0.03) and d["std"] == pytest.approx(0.01)
    half = 4.302652729911275 * 0.01 / np.sqrt(3)  # t(0.975, 2)
    assert d["ci95"] == pytest.approx([0.03 - half, 0.03 + half])
    assert d["verdict"] == "gain"
    assert paired_delta(aug, base)["verdict"] == "loss"
    assert (
        paired_delta([0.4, 0.4, 0.4], [0.41, 0.39, 0.40])["verdict"] == "no measurable difference"
    )
    one = paired_delta([0.4], [0.5])
    assert one["ci95"] is None and one["verdict"] == "no measurable difference"


def test_a_report_names_each_environment_its_runs_were_made_in():
    from reidaug.bench.report import environment_lines

    a = {"torch": "2.9.1", "torchreid": "0.2.5", "device": "cpu", "device_name": None,
         "cpu": "Xeon", "threads": 2}  # fmt: skip
    b = {**a, "torch": "2.14.1"}
    one = environment_lines({"baseline": [{"seed": 1, "environment": a}]})
    assert one == ["", "Made with torch 2.9.1, torchreid 0.2.5, cpu (Xeon, 2 threads)."]
    runs = {
        "baseline": [{"seed": 1, "environment": a}, {"seed": 2, "environment": b}],
        "augmented": [{"seed": 1, "environment": a}, {"seed": 2}],
    }
    lines = environment_lines(runs)
    assert "made in 3 environments" in lines[1]
    assert lines[3:] == [
        "- torch 2.9.1, torchreid 0.2.5, cpu (Xeon, 2 threads): baseline seed 1, augmented seed 1",
        "- torch 2.14.1, torchreid 0.2.5, cpu (Xeon, 2 threads): baseline seed 2",
        "- not recorded: augmented seed 2",
    ]


def test_ranking_with_the_same_camera_mask_is_torchreids():
    rng = np.random.default_rng(0)
    qf, gf = torch.randn(40, 8), torch.randn(300, 8)
    q_pids, g_pids = rng.integers(0, 15, 40), rng.integers(0, 15, 300)
    q_cams, g_cams = rng.integers(0, 4, 40), rng.integers(0, 4, 300)
    cmc_ref, map_ref = adapter.evaluate(qf, gf, q_pids, g_pids, q_cams, g_cams)
    cmc, mAP, n = rank(
        adapter.distance(qf, gf), q_pids, g_pids, same_camera_mask(q_pids, g_pids, q_cams, g_cams)
    )
    assert mAP == pytest.approx(map_ref) and np.allclose(cmc, cmc_ref)
    assert 0 < n <= 40
    # excluding every true match of a query drops that query
    keep = np.ones((40, 300), bool)
    keep[0, g_pids == q_pids[0]] = False
    assert rank(adapter.distance(qf, gf), q_pids, g_pids, keep)[2] == 39


def test_synthetic_images_carry_their_source_pid(shards, synth_root):
    ds = SyntheticMarket(synth_root)
    sd = ShardDataset(shards)
    label_of = {it.name: it.pid for it in ds.train}
    mixed = Mixed(ds.train, sd, transform=lambda im: im)
    assert len(mixed) == len(ds.train) + len(sd)
    for i in range(len(ds.train), len(mixed), 9):
        img, label, which = mixed[i]  # synthetic image j is flagged j + 1
        assert which == i - len(ds.train) + 1 and label == label_of[sd[i - len(ds.train)]["source"]]
        assert np.array_equal(np.asarray(img), sd[i - len(ds.train)]["image"].numpy())
    _, label, which = mixed[0]
    assert which == 0 and label == ds.train[0].pid
    assert sd.transform is None  # the caller's shard dataset is not changed


@pytest.mark.slow
def test_bench_both_arms_reports_and_a_second_run_trains_nothing(
    runner, shards, synth_root, tmp_path
):
    out = tmp_path / "bench"
    args = [
        "bench-reid",
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--shards",
        str(shards),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--workers",
        "0",
        "--seeds",
        "1,2",
        "--out",
        str(out),
    ]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "CI" in r.stderr and "baseline" in r.stderr and "augmented" in r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["weights"] == "from scratch" and rep["steps"].startswith("equal")
    n_train = len(SyntheticMarket(synth_root).train)
    for arm in ("baseline", "augmented"):
        assert [r["seed"] for r in rep["runs"][arm]] == [1, 2]
        assert all(0 <= r["mAP"] <= 1 for r in rep["runs"][arm])
        assert (out / f"{arm}-seed2.pt").is_file() and (out / f"{arm}-seed2.json").is_file()
    base, aug = rep["runs"]["baseline"], rep["runs"]["augmented"]
    # equal steps: the same optimiser steps per arm; only the augmented arm saw synthetic images
    assert [r["steps"] for r in base] == [r["steps"] for r in aug] == [2 * (n_train // 16)] * 2
    assert all(r["synthetic_images"] == 0 for r in base)
    assert all(r["synthetic_images"] == r["steps"] * 4 for r in aug)  # 0.25 of 16 per batch
    # per-seed paired deltas are the per-arm figures subtracted, seed by seed
    for k in ("mAP", "rank1", "rank5", "rank10"):
        pd = rep["paired_delta"][k]
        assert pd["seeds"] == [1, 2]
        assert pd["per_seed"] == pytest.approx(
            [a[k] - b[k] for a, b in zip(aug, base, strict=True)]
        )
        assert pd["mean"] == pytest.approx(
            rep["summary"]["augmented"][k]["mean"] - rep["summary"]["baseline"][k]["mean"]
        )
        assert pd["verdict"] in ("gain", "loss", "no measurable difference")
    md = (out / "report.md").read_text()
    assert (
        "augmented - baseline, 95 % CI" in md
        and "seed 2:" in md
        and (out / "cmc.png").stat().st_size > 0
    )
    # every unit says where it was made, and the report names the one environment
    env = json.loads((out / "augmented-seed2.json").read_text())["environment"]
    assert env["torch"] == torch.__version__ and env["threads"] == torch.get_num_threads()
    assert env["device"] == "cpu" and env["torchreid"] == "0.2.5" and env["cpu"]
    assert f"Made with torch {torch.__version__}, torchreid 0.2.5, cpu (" in md

    # the same command again: nothing is trained and the report is reproduced
    before = (out / "report.json").read_text()
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert r.stderr.count("finished earlier, skipped") == 4 and "training the" not in r.stderr
    assert (out / "report.json").read_text() == before

    # a changed option that alters results refuses to mix with them
    r = runner.invoke(cli, [*args[:-2], "--lr", "0.001", "--out", str(out)])
    assert (
        r.exit_code == 1
        and "baseline-seed1.json was made with other options (lr: 0.003 there, 0.001 now)"
        in r.stderr
    )
    # LSRO labels change only the augmented arm: its old results are refused, the baseline kept
    r = runner.invoke(cli, [*args, "--label", "lsro"])
    assert (
        r.exit_code == 1 and "augmented-seed1.json was made with other options (label" in r.stderr
    )


@pytest.mark.slow
def test_an_interrupted_arm_resumes_from_its_last_epoch(shards, synth_root, tmp_path):
    whole = bench(small(synth_root, None, tmp_path / "whole", epochs=3, arms=["baseline"]))

    class Stop(Exception):
        pass

    def stop_in_epoch_3(step, total, label, epoch, **kw):
        if epoch == "3/3":
            raise Stop

    cfg = small(synth_root, None, tmp_path / "cut", epochs=3, arms=["baseline"])
    with pytest.raises(Stop):
        bench(cfg, progress=stop_in_epoch_3)
    state = tmp_path / "cut" / ".baseline-seed1.state.pt"
    assert state.is_file() and torch.load(state, weights_only=True)["epoch"] == 2
    said = []
    again = bench(cfg, log=said.append)
    assert any("resuming after epoch 2" in s for s in said) and not state.exists()
    a, b = whole["runs"]["baseline"][0], again["runs"]["baseline"][0]
    assert a["steps"] == b["steps"]
    assert b["mAP"] == pytest.approx(a["mAP"], abs=1e-6) and b["cmc"] == pytest.approx(
        a["cmc"], abs=1e-6
    )


def test_bad_input(shards, synth_root, tmp_path, runner):
    cfg = small(synth_root, shards, tmp_path, epochs=1)
    with pytest.raises(
        UserError, match='Unknown re-ID model "resnet5"; expected one of: .*resnet50'
    ):
        bench(BenchConfig(**{**cfg.__dict__, "model": "resnet5"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no shards in"):
        bench(BenchConfig(**{**cfg.__dict__, "shards": str(tmp_path / "empty")}))
    with pytest.raises(UserError, match="--shards DIR is required"):
        bench(BenchConfig(**{**cfg.__dict__, "shards": None}))
    with pytest.raises(UserError, match="--shards is used only by the augmented arm"):
        bench(BenchConfig(**{**cfg.__dict__, "arms": ["baseline"]}))
    other = tmp_path / "other"
    shutil.copytree(shards, other)
    (other / "manifest.json").unlink()  # edited below: their checksums would fail first
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
    base = [
        "bench-reid",
        "--dataset",
        "synthetic",
        "--root",
        str(synth_root),
        "--shards",
        str(shards),
        "--out",
        str(tmp_path / "o"),
    ]
    for flags, msg in (
        (["--lr", "-1"], "Error: --lr must be a positive number, got -1.0"),
        (["--lr", "nan"], "Error: --lr must be a positive number, got nan"),
        (["--synthetic-ratio", "1"], "Error: --synthetic-ratio is the synthetic share"),
        (["--seeds", "1,1"], "Error: --seeds repeats a seed: [1, 1]"),
        (["--batch-size", "4096"], "Error: --batch-size 4096 exceeds the"),
    ):
        r = runner.invoke(cli, [*base, *flags])
        assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1].startswith(msg), (
            flags,
            r.stderr,
        )
    r = runner.invoke(cli, [*base, "--transforms", "random_flip,blur"])
    assert r.exit_code == 2 and 'unknown transform "blur"' in r.stderr


def test_lsro_labels_put_exactly_the_synthetic_images_under_the_uniform_loss(
    shards, synth_root, monkeypatch
):
    """With ``--label lsro`` every synthetic image of every batch goes through ``lsro_loss``
    (and no real one); with ``same-id`` it is never called."""
    from reidaug.reidnet import train as B

    sizes, real_lsro = [], B.lsro_loss

    def spy(logits):
        sizes.append(len(logits))
        return real_lsro(logits)

    monkeypatch.setattr(B, "lsro_loss", spy)
    ds = SyntheticMarket(synth_root)
    for label in ("same-id", "lsro"):
        sizes.clear()
        cfg = BenchConfig.from_recipe(
            "cpu",
            dataset="synthetic",
            root=str(synth_root),
            epochs=1,
            batch_size=16,
            workers=0,
            label=label,
            device="cpu",
        )
        _, info = train_arm(cfg, ds, ShardDataset(shards), seed=1, device="cpu", tag="augmented")
        if label == "same-id":
            assert sizes == []
        else:
            assert len(sizes) == info["steps"] > 0 and set(sizes) == {4}  # 0.25 of 16 per batch
            assert sum(sizes) == info["synthetic_images"]


def test_a_registered_torchreid_dataset_gives_real_and_synthetic_images_one_label_space(
    synth_root, tmp_path
):
    """torchreid's own ImageDataManager loads reidaug's registered dataset: the real training
    images, the exported synthetic ones under their source's label, Market's test split."""
    from reidaug.reidnet.torchreid_data import register_torchreid

    ds = SyntheticMarket(synth_root)
    folder = tmp_path / "export" / "bounding_box_train"
    folder.mkdir(parents=True)
    src = ds.train[5]
    shutil.copy(src.path, folder / f"{src.raw_pid:04d}_c2s1_000007_01.jpg")
    counts = register_torchreid("reidaug_test_aug", synth_root, tmp_path / "export", "synthetic")
    assert counts == {
        "real": len(ds.train),
        "synthetic": 1,
        "ids": ds.num_train_ids,
        "query": len(ds.query),
        "gallery": len(ds.gallery),
    }
    tr = adapter._tr()
    dm = tr.data.ImageDataManager(
        root=str(tmp_path),
        sources="reidaug_test_aug",
        height=128,
        width=64,
        use_gpu=False,
        batch_size_train=4,
        workers=0,
    )
    assert dm.num_train_pids == ds.num_train_ids
    train_set = dm.train_loader.dataset
    labels = {p: pid for p, pid, *_ in train_set.train}
    assert labels[str(folder / f"{src.raw_pid:04d}_c2s1_000007_01.jpg")] == src.pid
    assert len(train_set.train) == len(ds.train) + 1
    batch = next(iter(dm.train_loader))
    assert batch["img"].shape[1:] == (3, 128, 64)
    # an identity outside the training set is refused, by name
    (folder / "9999_c1s1_000001_01.jpg").write_bytes(src.path.read_bytes())
    with pytest.raises(UserError, match="9999_c1s1_000001_01.jpg.*not in the training set"):
        register_torchreid("reidaug_test_bad", synth_root, tmp_path / "export", "synthetic")
