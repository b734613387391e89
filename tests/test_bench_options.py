"""Where augmentation pays: --mix add, the baseline-matched control, seed ranges and the
smallest detectable effect."""

import dataclasses
import json

import numpy as np
import pytest
from scipy.stats import t

from reidaug.bench import BenchConfig, bench
from reidaug.bench.plan import arm_plan, extra_per_step, images_per_step
from reidaug.bench.stats import detectable_effect, paired_delta
from reidaug.cli import cli
from reidaug.errors import UserError
from reidaug.synthesis import synthesize
from reidaug.training import train
from tests.helpers import tiny


def _cfg(**kw):
    return BenchConfig.from_recipe("cpu", batch_size=16, **kw)


@pytest.fixture(scope="module")
def tiny_shards(synth_root, tmp_path_factory):
    """One pose of every training image from a one-iteration generator."""
    tmp = tmp_path_factory.mktemp("shards")
    run = train(tiny(synth_root, tmp / "runs", iters1=1, iters2=1))
    synthesize(tmp / "shards", run=run, poses=1, shard_size=500, batch_size=32, workers=0)
    return tmp / "shards"


def test_mix_add_keeps_the_baselines_real_images_step_by_step():
    cfg = _cfg(mix="add", synthetic_ratio=0.25, arms=["baseline", "augmented", "baseline-matched"])
    n_real, n_syn = 100, 37
    m = extra_per_step(cfg)
    assert m == 4 and images_per_step(cfg, "augmented") == (16, 4)
    for epoch in range(3):
        base = arm_plan(cfg, "baseline", n_real, 0, seed=5, epoch=epoch)
        aug = arm_plan(cfg, "augmented", n_real, n_syn, seed=5, epoch=epoch)
        matched = arm_plan(cfg, "baseline-matched", n_real, 0, seed=5, epoch=epoch)
        assert len(base) == len(aug) == len(matched) == n_real // 16
        for b, a, r in zip(base, aug, matched, strict=True):
            assert a[:16] == b and r[:16] == b  # the same real images, in the same order
            assert len(a) == len(r) == 16 + m  # as many images a step in both
            assert all(n_real <= i < n_real + n_syn for i in a[16:])  # synthetic
            assert all(0 <= i < n_real for i in r[16:])  # real
    # the extra real images are not simply the next baseline batch
    base = arm_plan(cfg, "baseline", n_real, 0, seed=5, epoch=0)
    matched = arm_plan(cfg, "baseline-matched", n_real, 0, seed=5, epoch=0)
    assert [r[16:] for r in matched] != [b[:m] for b in base[1:] + base[:1]]


def test_mix_replace_is_unchanged_and_the_control_needs_mix_add():
    cfg = _cfg()
    assert images_per_step(cfg, "augmented") == (12, 4)
    with pytest.raises(UserError, match="baseline-matched arm is the control of --mix add"):
        _cfg(arms=["baseline", "baseline-matched"])
    with pytest.raises(UserError, match="--extra-steps adds steps to --mix replace"):
        _cfg(mix="add", extra_steps=True)


def test_the_detectable_effect_matches_a_hand_computation():
    d = [0.01, -0.02, 0.015, 0.005, -0.004]
    sd = np.std(d, ddof=1)
    hand = (t.ppf(0.975, 4) + t.ppf(0.8, 4)) * sd / np.sqrt(5)
    assert detectable_effect(sd, 5) == pytest.approx(hand)
    assert paired_delta([0.0] * 5, d)["detectable"] == pytest.approx(hand)
    assert np.isnan(detectable_effect(0.1, 1))
    # more seeds detect smaller effects at the same spread
    assert detectable_effect(0.02, 10) < detectable_effect(0.02, 3)


def test_seed_ranges(runner, tmp_path):
    from reidaug.cli.bench_reid import _ints

    assert _ints(None, None, "1-5") == [1, 2, 3, 4, 5]
    assert _ints(None, None, "1-3,7") == [1, 2, 3, 7]
    r = runner.invoke(cli, ["bench-reid", "--seeds", "5-1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "ranges such as 1-5" in r.stderr


@pytest.mark.slow
def test_a_three_arm_mix_add_bench_runs_end_to_end(synth_root, tiny_shards, tmp_path):
    shards = tiny_shards
    cfg = BenchConfig.from_recipe(
        "cpu", dataset="synthetic", root=str(synth_root), shards=str(shards), epochs=1,
        batch_size=16, workers=0, out=str(tmp_path / "b"), device="cpu", mix="add",
        arms=["baseline", "augmented", "baseline-matched"], seeds=[1, 2],
    )  # fmt: skip
    rep = bench(cfg)
    assert set(rep["paired_deltas"]) == {
        "augmented - baseline",
        "baseline-matched - baseline",
        "augmented - baseline-matched",
    }
    arms = rep["arms"]
    assert arms["augmented"]["real_images_per_step"] == arms["baseline"]["real_images_per_step"]
    assert arms["augmented"]["synthetic_images_per_step"] == 4
    assert arms["baseline-matched"]["real_images_per_step"] == 20
    runs = {a: json.loads((tmp_path / "b" / f"{a}-seed1.json").read_text()) for a in arms}
    assert runs["augmented"]["steps"] == runs["baseline"]["steps"]
    assert runs["augmented"]["real_images"] == runs["baseline"]["real_images"]
    assert runs["augmented"]["synthetic_images"] == 4 * runs["augmented"]["steps"]
    assert runs["baseline-matched"]["real_images"] == 20 * runs["baseline"]["steps"]
    md = (tmp_path / "b" / "report.md").read_text()
    assert "| augmented | add |" in md and "detects" in md
    check_report_only(cfg, tmp_path / "b")


def check_report_only(cfg: BenchConfig, out) -> None:
    """--report-only trains nothing and keeps, listing them, results made with other options;
    a plain rerun refuses those."""
    made = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    rep = bench(dataclasses.replace(cfg, report_only=True))
    assert "mixed_options" not in rep
    other = dataclasses.replace(cfg, synthetic_ratio=0.5)
    with pytest.raises(UserError, match="made with other options"):
        bench(other)
    rep = bench(dataclasses.replace(other, report_only=True))
    changed = [(m["arm"], m["seed"], m["fields"]) for m in rep["mixed_options"]]
    assert changed == [
        (arm, seed, ["synthetic_ratio"])
        for seed in (1, 2)
        for arm in ("augmented", "baseline-matched")
    ]
    assert "- baseline-matched seed 2: synthetic_ratio" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["mixed_options"] == rep["mixed_options"]
    for name, mtime in made.items():  # no result or model was rewritten
        if name.endswith((".pt", ".json")) and not name.startswith("report"):
            assert (out / name).stat().st_mtime_ns == mtime, name
    with pytest.raises(UserError, match="baseline-seed3.json does not exist: --report-only"):
        bench(dataclasses.replace(cfg, report_only=True, seeds=[1, 2, 3]))
    assert not (out / "baseline-seed3.json").exists()
    with pytest.raises(UserError, match="drop --test-poses"):
        dataclasses.replace(cfg, report_only=True, test_poses=2, test_generator="g")


def test_the_subset_is_seeded_and_the_same_for_every_use(synth_root):
    from reidaug.data import SyntheticMarket

    a, b, c = (SyntheticMarket(synth_root) for _ in range(3))
    sa = a.restrict_train(real_per_id=2, seed=3)
    sb = b.restrict_train(real_per_id=2, seed=3)
    assert sa == sb and [it.path for it in a.train] == [it.path for it in b.train]
    assert sa["ids"] == 12 and all(
        sum(it.raw_pid == p for it in a.train) <= 2 for p in {it.raw_pid for it in a.train}
    )
    sc = c.restrict_train(id_fraction=0.5, seed=3)
    assert sc["ids"] == 6 and c.num_train_ids == 6
    assert sorted({it.pid for it in c.train}) == list(range(6))  # labels renumbered
    with pytest.raises(UserError, match="--real-per-id must be at least 1"):
        SyntheticMarket(synth_root).restrict_train(real_per_id=0)


@pytest.mark.slow
def test_a_subset_bench_takes_only_shards_of_a_generator_trained_on_that_subset(
    synth_root, tmp_path
):
    def shards_of(name, **subset):
        run = train(tiny(synth_root, tmp_path / name, iters1=1, iters2=1, **subset))
        out = tmp_path / f"{name}-shards"
        synthesize(out, run=run, poses=1, shard_size=500, batch_size=32, workers=0)
        return out

    full, sub = shards_of("full"), shards_of("sub", real_per_id=2, subset_seed=1)
    base = dict(dataset="synthetic", root=str(synth_root), epochs=1, batch_size=8, workers=0,
                device="cpu", real_per_id=2, subset_seed=1)  # fmt: skip
    with pytest.raises(UserError, match="the shards' generator was trained on another training"):
        bench(BenchConfig.from_recipe("cpu", shards=str(full), out=str(tmp_path / "a"), **base))
    rep = bench(BenchConfig.from_recipe("cpu", shards=str(sub), out=str(tmp_path / "b"), **base))
    assert rep["subset"]["real_per_id"] == 2 and rep["train_images"] == rep["subset"]["images"]
    assert rep["train_images"] <= 2 * 12
    for arm in ("baseline", "augmented"):
        key = json.loads((tmp_path / "b" / f"{arm}-seed1.json").read_text())["key"]
        assert key["subset"] == rep["subset"]  # the same subset for every arm, recorded


def test_teacher_and_filter_options_are_checked():
    with pytest.raises(UserError, match="add baseline to --arms"):
        _cfg(label="teacher", arms=["augmented"])
    with pytest.raises(UserError, match="must not be a model the bench trains"):
        _cfg(min_confidence=0.1, judge_seed=1, seeds=[1, 2])
    _cfg(min_confidence=0.1, judge="j.pt", judge_seed=1, seeds=[1])  # a given judge is not trained
    with pytest.raises(UserError, match="--min-confidence must lie in"):
        _cfg(min_confidence=1.5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--judge", "j.pt"], "--judge sets the judge of --min-confidence"),
        (["--teacher-temperature", "2"], "--teacher-temperature shapes --label teacher"),
        (["--arms", "baseline", "--min-confidence", "0.5"], "which --arms leaves out"),
    ],
)
def test_flags_that_would_change_nothing_are_refused(runner, tmp_path, args, message):
    r = runner.invoke(cli, ["bench-reid", "--out", str(tmp_path), *args])
    assert r.exit_code == 2 and message in r.stderr


def test_soft_labels_train_against_their_own_row():
    import torch
    import torch.nn.functional as F

    from reidaug.reidnet.train import soft_loss

    logits = torch.randn(5, 7)
    y = torch.tensor([0, 3, 6, 2, 2])
    assert soft_loss(logits, F.one_hot(y, 7).float()) == pytest.approx(
        F.cross_entropy(logits, y).item(), abs=1e-6
    )
    # synthetic image j (which == j + 1) trains against row j; real images keep ``ce``
    from reidaug.reidnet.train import batch_loss

    soft = torch.softmax(torch.randn(4, 7), 1)
    which = torch.tensor([0, 3, 0, 1, 4])
    ce = torch.nn.CrossEntropyLoss()
    got = batch_loss(logits, y, which, ce, "teacher", soft)
    real = F.cross_entropy(logits[[0, 2]], y[[0, 2]]) * 2
    hand = (real + soft_loss(logits[[1, 3, 4]], soft[[2, 0, 3]]) * 3) / 5
    assert got.item() == pytest.approx(hand.item(), abs=1e-6)
    assert batch_loss(logits, y, which, ce).item() == pytest.approx(
        F.cross_entropy(logits, y).item()
    )


def test_mixed_maps_used_synthetic_images_to_their_shard_rows(synth_root, tiny_shards):
    import torch

    from reidaug.bench.run import Mixed
    from reidaug.data import SyntheticMarket
    from reidaug.reidnet.adapter import transforms
    from reidaug.synthesis.shards import ShardDataset

    ds = SyntheticMarket(synth_root)
    shards = ShardDataset(tiny_shards)
    tf = transforms(128, 64, [])[1]
    index = np.array([5, 2, 9])
    m = Mixed(ds.train, shards, tf, index)
    n = len(ds.train)
    assert len(m) == n + 3 and m[0][2] == 0
    for j, k in enumerate(index):
        x, label, which = m[n + j]
        assert which == j + 1 and label == int(shards.column("label")[k])
        from PIL import Image

        want = tf(Image.fromarray(shards.image(*shards.locate(int(k)))))
        assert torch.equal(x, want)


@pytest.mark.slow
def test_teacher_labels_and_the_confidence_filter(synth_root, tiny_shards, tmp_path):
    import torch

    from reidaug.bench.labels import ShardImages
    from reidaug.reidnet import model as reid_model
    from reidaug.synthesis.shards import ShardDataset

    shards = tiny_shards
    sd = ShardDataset(shards)
    base = dict(dataset="synthetic", root=str(synth_root), shards=str(shards), epochs=1,
                batch_size=16, workers=0, device="cpu")  # fmt: skip
    a = tmp_path / "a"
    bench(BenchConfig.from_recipe("cpu", out=str(a), label="teacher", teacher_temperature=2.0,
                                  **base))  # fmt: skip
    with np.load(a / ".teacher-seed1.npz", allow_pickle=False) as f:
        soft = f["values"].astype(np.float32)
        assert json.loads(str(f["key"]))["temperature"] == 2.0
    assert soft.shape == (len(sd), 12)
    np.testing.assert_allclose(soft.sum(1), 1, atol=2e-3)  # distributions
    # ... from the stated model: this seed's baseline, at the stated temperature
    every = np.arange(len(sd))

    def probs(path, temp):
        model, meta = reid_model.load(a / path)
        feats = reid_model.embed(model, ShardImages(sd, every), meta)
        return torch.softmax(model.classifier(feats) / temp, 1).detach().numpy()

    np.testing.assert_allclose(soft, probs("baseline-seed1.pt", 2.0), atol=2e-3)
    assert np.abs(soft - probs("augmented-seed1.pt", 2.0)).max() > 1e-2

    # the filter: a judge not trained in this bench, kept = its source-class probability >= c
    judge = a / "baseline-seed1.pt"
    conf = probs("baseline-seed1.pt", 1.0)[every, sd.column("label")]
    c = float(np.median(conf))
    b = tmp_path / "b"
    rep = bench(BenchConfig.from_recipe("cpu", out=str(b), min_confidence=c, judge=str(judge),
                                        seeds=[2], arms=["augmented"], **base))  # fmt: skip
    f = rep["synthetic_filter"]
    assert f["kept"] == int((conf >= c).sum()) and f["kept"] + f["dropped"] == len(sd)
    assert 0 < f["dropped"] < len(sd)
    assert f"kept {f['kept']} of {len(sd)}" in (b / "report.md").read_text()
    res = json.loads((b / "augmented-seed2.json").read_text())
    assert res["key"]["filter"]["min_confidence"] == c
    assert res["synthetic_pool"] == f["kept"]  # the arm drew only from the kept images
