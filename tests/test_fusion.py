"""Test-time pose fusion: the fused features, flip-averaging and the canonical poses."""

import numpy as np
import pytest
import torch

from reidaug.bench.fusion import canonical_poses, flip_average, fuse, generate_views, l2n
from reidaug.errors import UserError


def _feats(n=6, k=3, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, k, d, generator=g)


def test_no_views_gives_the_plain_feature():
    plain, views = _feats(k=0)
    assert torch.allclose(fuse(plain, views), l2n(plain))


def test_views_equal_to_the_image_give_the_plain_feature():
    plain, _ = _feats()
    views = plain[:, None].repeat(1, 4, 1) * 3.0  # unnormalised copies
    for fusion in ("mean", "max"):
        assert torch.allclose(fuse(plain, views, fusion=fusion), l2n(plain), atol=1e-6)


def test_an_image_without_a_pose_keeps_its_plain_feature():
    plain, views = _feats()
    has = torch.tensor([True, False, True, True, False, True])
    out = fuse(plain, views, has)
    assert torch.allclose(out[~has], l2n(plain)[~has])
    assert not torch.allclose(out[has], l2n(plain)[has])
    # the fused ones are the normalised weighted sum of the normalised features
    hand = l2n(0.5 * l2n(plain) + l2n(views).sum(1))
    assert torch.allclose(fuse(plain, views, has, weight=0.5)[has], hand[has], atol=1e-6)


def test_flip_averaging_is_the_mean_of_the_normalised_features():
    a, b = torch.randn(4, 8), torch.randn(4, 8) * 10
    want = (l2n(a) + l2n(b)) / 2
    assert torch.allclose(flip_average(a, b), l2n(want), atol=1e-6)
    # rankings by cosine are those of the plain mean
    assert torch.allclose(flip_average(a, b) * want.norm(dim=1, keepdim=True), want, atol=1e-6)


def test_bad_fusion_options_are_refused():
    plain, views = _feats()
    with pytest.raises(UserError, match='unknown fusion "sum"'):
        fuse(plain, views, fusion="sum")
    with pytest.raises(UserError, match="--fusion-weight must be 0 or more"):
        fuse(plain, views, weight=-1)


def test_canonical_poses_are_distinct_and_the_kmeans_choice(synth_root):
    from reidaug.data import SyntheticMarket
    from reidaug.synthesis.poses import PoseBank, PoseSampler

    ds = SyntheticMarket(synth_root)
    bank = PoseBank.from_annotations([it.name for it in ds.train], ds.annotations("train"))
    idx = canonical_poses(bank, 8, seed=0)
    assert len(set(idx.tolist())) == 8
    assert (idx == canonical_poses(bank, 8, seed=0)).all()
    # the poses synthesize --strategy kmeans gives an image whose own pose is not in the bank
    assert sorted(PoseSampler(bank, 8, "kmeans", 0).sample("none.jpg", 0)) == sorted(idx.tolist())


class _Identity:
    """A generator that returns its input unchanged."""

    def final(self, condition, pose, source_keypoints=None, target_keypoints=None):
        assert pose.shape[0] == condition.shape[0] == target_keypoints.shape[0]
        return condition


def test_an_identity_generator_gives_views_equal_to_the_image():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 8, 3), dtype=np.uint8) for _ in range(5)]
    kps = np.full((5, 18, 2), -1)
    poses = rng.integers(0, 8, (3, 18, 2))
    views = generate_views(_Identity(), images, kps, poses, "pg2", batch_size=4)
    assert views.shape == (5, 3, 16, 8, 3)
    for i, im in enumerate(images):
        assert all((views[i, j] == im).all() for j in range(3))


def test_every_test_image_of_the_embedded_dataset_gets_its_fused_feature(synth_root, fusion_setup):
    from reidaug.bench.fusion import ROWS, fused_rows, test_time_features
    from reidaug.data import SyntheticMarket
    from reidaug.data.pairs import load_image
    from reidaug.reidnet import adapter
    from reidaug.synthesis.poses import PoseBank
    from reidaug.training.load import load_generator

    ds = SyntheticMarket(synth_root)
    gen = load_generator(fusion_setup[0])
    bank = PoseBank.from_annotations([it.name for it in ds.train], ds.annotations("train"))
    poses = bank.keypoints[canonical_poses(bank, 3)]
    items = [*ds.query, *ds.gallery]
    ann = ds.annotations("gallery")
    kps = np.stack([ann.get(it.name, np.full((18, 2), -1)) for it in items])
    reid = adapter.build_model("osnet_x0_25", ds.num_train_ids)
    meta = {"height": 128, "width": 64, "num_classes": ds.num_train_ids}
    images = [load_image(it.path, ds.height, ds.width) for it in items]
    (f,) = test_time_features(
        [(reid.eval(), meta)], images, kps, gen.recipe, poses, "pg2", chunk=16
    )
    has = f["has_pose"]
    assert has.sum() > 0 and len(has) == len(items)
    assert f["views"].shape[:2] == (len(items), 3)
    assert (f["views"][has].norm(dim=-1) > 0).all() and (f["views"][~has] == 0).all()
    rows = fused_rows(f)
    assert list(rows) == list(ROWS)
    for feat in rows.values():
        assert feat.shape == f["plain"].shape and torch.allclose(feat.norm(dim=1), torch.ones(1))
    assert torch.allclose(rows["pose-fused"][~has], rows["plain"][~has])
    assert not torch.allclose(rows["pose-fused"][has], rows["plain"][has])


@pytest.fixture(scope="module")
def fusion_setup(synth_root, tmp_path_factory):
    """A tiny generator and two untrained re-ID checkpoints of the embedded dataset."""
    from reidaug.data import SyntheticMarket
    from reidaug.reidnet import adapter
    from reidaug.reidnet import model as reid_model
    from reidaug.training import train
    from tests.helpers import tiny

    tmp = tmp_path_factory.mktemp("fusion")
    run = train(tiny(synth_root, tmp / "runs", iters1=1, iters2=1))
    ds = SyntheticMarket(synth_root)
    cks = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = adapter.build_model("osnet_x0_25", ds.num_train_ids)
        path = tmp / f"reid{seed}.pt"
        reid_model.save(net, path, name="osnet_x0_25", height=128, width=64,
                        num_classes=ds.num_train_ids, dataset=ds.name, recipe={})  # fmt: skip
        cks.append(path)
    return run, cks, tmp


def test_pose_fusion_ranks_four_rows_and_reuses_its_cache(fusion_setup, monkeypatch):
    from reidaug.bench import fusion, testtime
    from reidaug.bench.testtime import FusionConfig, pose_fusion

    run, (a, b), tmp = fusion_setup
    cfg = FusionConfig(generator=str(run), poses=2, estimator="none")
    calls = []
    real = fusion.generate_views
    monkeypatch.setattr(fusion, "generate_views", lambda *x, **k: calls.append(1) or real(*x, **k))
    first = pose_fusion([a], cfg, tmp / "cache")
    rows = first["rows"][str(a)]
    assert list(rows) == ["plain", "flip-averaged", "pose-fused", "pose-fused + flip"]
    assert first["poses"]["none"] > 0 and first["poses"]["shipped"] > 0
    assert len(first["canonical"]) == 2 and calls
    calls.clear()
    again = pose_fusion([a], cfg, tmp / "cache")  # a second run generates nothing
    assert not calls and again["rows"] == first["rows"]
    # a cached rerun computes no features but still times its ranking
    assert "models" not in again["timing"] and again["timing"]["ranking_seconds"] > 0
    pose_fusion([b], cfg, tmp / "cache")  # another checkpoint is not served a's features
    assert calls
    # a cache file holding another checkpoint's features is refused, not used
    fa = sorted((tmp / "cache").glob(".fusion-reid0-*.npz"))[0]
    fb = sorted((tmp / "cache").glob(".fusion-reid1-*.npz"))[0]
    fb.write_bytes(fa.read_bytes())
    with pytest.raises(testtime.UserError, match="holds features of another"):
        pose_fusion([b], cfg, tmp / "cache")


def test_several_models_share_one_generation_pass_and_get_their_own_features(
    fusion_setup, monkeypatch
):
    from reidaug.bench import fusion
    from reidaug.bench.testtime import FusionConfig, pose_fusion

    run, (a, b), tmp = fusion_setup
    cfg = FusionConfig(generator=str(run), poses=2, estimator="none")
    alone = {ck: pose_fusion([ck], cfg, tmp / f"alone-{ck.stem}")["rows"][str(ck)] for ck in (a, b)}
    calls = []
    real = fusion.generate_views
    monkeypatch.setattr(fusion, "generate_views", lambda *x, **k: calls.append(1) or real(*x, **k))
    one = pose_fusion([a], cfg, tmp / "one")
    per_model = len(calls)
    calls.clear()
    said: list[str] = []
    both = pose_fusion([a, b], cfg, tmp / "both", log=said.append)
    assert per_model and len(calls) == per_model  # the views of two models generated once
    ranking = [m for m in said if m.startswith("test-time ranking")]
    assert ranking == [
        f"test-time ranking: {a.name} (1 of 2 models)",
        f"test-time ranking: {b.name} (2 of 2 models)",
    ]
    assert both["timing"]["models"] == [str(a), str(b)]
    assert both["rows"][str(a)] == one["rows"][str(a)] == alone[a]
    assert both["rows"][str(b)] == alone[b] != alone[a]
    calls.clear()
    mixed = pose_fusion([a, b], cfg, tmp / "one")  # a cached, b computed: one pass for b alone
    assert len(calls) == per_model and mixed["timing"]["models"] == [str(b)]
    assert mixed["rows"] == both["rows"]


def test_no_test_poses_gives_the_plain_ranking(fusion_setup):
    from reidaug.bench.testtime import FusionConfig, pose_fusion

    run, (a, _), tmp = fusion_setup
    out = pose_fusion([a], FusionConfig(generator=str(run), poses=0, estimator="none"), tmp / "c0")
    rows = out["rows"][str(a)]
    assert rows["pose-fused"] == rows["plain"]
    assert rows["pose-fused + flip"] == rows["flip-averaged"]


@pytest.mark.slow
def test_a_bench_ranks_every_model_four_ways(synth_root, fusion_setup, tmp_path):
    from reidaug.bench import BenchConfig, bench

    run, _, _ = fusion_setup
    cfg = BenchConfig.from_recipe(
        "cpu", dataset="synthetic", root=str(synth_root), epochs=1, batch_size=16, workers=0,
        out=str(tmp_path / "b"), device="cpu", arms=["baseline"], seeds=[1, 2], test_poses=2,
        test_generator=str(run), pose_estimator="none",
    )  # fmt: skip
    rep = bench(cfg)
    tt = rep["test_time"]
    assert [r["seed"] for r in tt["runs"]["baseline"]] == [1, 2]
    assert set(tt["summary"]["baseline"]) == {
        "plain", "flip-averaged", "pose-fused", "pose-fused + flip"
    }  # fmt: skip
    pd = tt["paired_vs_flip"]["baseline"]["pose-fused"]["mAP"]
    runs = tt["runs"]["baseline"]
    want = [r["pose-fused"]["mAP"] - r["flip-averaged"]["mAP"] for r in runs]
    assert pd["per_seed"] == pytest.approx(want)
    # the plain row ranks the model's own normalised features of the image files
    from reidaug.data import SyntheticMarket
    from reidaug.reidnet import adapter
    from reidaug.reidnet import model as reid_model

    ds = SyntheticMarket(synth_root)
    net, meta = reid_model.load(tmp_path / "b" / "baseline-seed2.pt")
    qf, gf = (l2n(reid_model.embed(net, items, meta)) for items in (ds.query, ds.gallery))
    pids = [[i.pid for i in s] for s in (ds.query, ds.gallery)]
    cams = [[i.camid for i in s] for s in (ds.query, ds.gallery)]
    _, mAP = adapter.evaluate(qf, gf, *pids, *cams)
    assert runs[1]["plain"]["mAP"] == pytest.approx(mAP, abs=2e-3)
    assert runs[1]["plain"]["mAP"] != pytest.approx(runs[0]["plain"]["mAP"], abs=1e-6)
    md = (tmp_path / "b" / "report.md").read_text()
    assert "Test-time pose fusion: 2 canonical poses" in md
    assert "| baseline | pose-fused - flip-averaged, 95 % CI |" in md
    assert tt["timing"]["ranking_seconds"] > 0
    assert f"Ranking the four rows of every model: {tt['timing']['ranking_seconds']:.0f} s" in md


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fusion", "max"], "--fusion shapes test-time pose fusion; add --test-poses K"),
        (["--test-generator", "runs/x"], "--test-generator shapes test-time pose fusion"),
        (["--test-poses", "8"], "--test-poses needs --test-generator RUN"),
        (["--test-arms", "baseline"], "--test-arms shapes test-time pose fusion"),
    ],
)
def test_fusion_flags_without_fusion_are_refused(runner, tmp_path, args, message):
    from reidaug.cli import cli

    r = runner.invoke(cli, ["bench-reid", "--arms", "baseline", "--out", str(tmp_path), *args])
    assert r.exit_code == 2 and message in r.stderr


def test_an_interrupted_pass_resumes_from_its_saved_blocks(fusion_setup, monkeypatch):
    from reidaug.bench import testtime
    from reidaug.bench.testtime import FusionConfig, pose_fusion

    run, (a, b), tmp = fusion_setup
    cfg = FusionConfig(generator=str(run), poses=2, estimator="none")
    whole = pose_fusion([a, b], cfg, tmp / "whole")
    monkeypatch.setattr(testtime, "BLOCK", 16)
    blocks = []
    real = testtime.test_time_features

    def dies_in_the_third_block(*x, **k):
        blocks.append(1)
        if len(blocks) == 3:
            raise KeyboardInterrupt
        return real(*x, **k)

    monkeypatch.setattr(testtime, "test_time_features", dies_in_the_third_block)
    with pytest.raises(KeyboardInterrupt):
        pose_fusion([a, b], cfg, tmp / "cut")
    saved = sorted(p.name.split(".block")[0] for p in (tmp / "cut").glob("*.block*.npz"))
    assert len(saved) == 4 and len(set(saved)) == 2  # two blocks of each model
    blocks.clear()
    monkeypatch.setattr(
        testtime, "test_time_features", lambda *x, **k: blocks.append(1) or real(*x, **k)
    )
    again = pose_fusion([a, b], cfg, tmp / "cut")
    n = sum(again["poses"].values())
    assert n > 3 * 16 and len(blocks) == -(-n // 16) - 2  # only the blocks not yet saved
    assert again["rows"] == whole["rows"]
    assert again["timing"]["seconds"] > 0
    assert not list((tmp / "cut").glob("*.block*.npz"))  # merged into one file per model


def test_test_arms_pick_the_models_fusion_ranks(synth_root, tmp_path, monkeypatch):
    from pathlib import Path

    from reidaug.bench import BenchConfig, run
    from reidaug.bench.fusion import ROWS
    from reidaug.data import SyntheticMarket

    cfg = BenchConfig.from_recipe(
        "cpu", dataset="synthetic", root=str(synth_root), out=str(tmp_path), mix="add",
        arms=["baseline", "augmented", "baseline-matched"], seeds=[1, 2], test_poses=2,
        test_generator="g", test_arms=["baseline", "augmented"],
    )  # fmt: skip
    ranked = []
    rows = {r: {"mAP": 0.5, "rank1": 0.5, "rank5": 0.5, "rank10": 0.5} for r in ROWS}

    def fake(cks, *x):
        ranked.extend(Path(c).name for c in cks)
        return {"rows": {str(c): rows for c in cks}, "poses": {}, "canonical": [], "timing": {}}

    monkeypatch.setattr(run, "pose_fusion", fake)
    tt = run.test_time_report(cfg, SyntheticMarket(synth_root), tmp_path, "cpu", None, print)
    assert ranked == [f"{a}-seed{s}.pt" for a in ("baseline", "augmented") for s in (1, 2)]
    assert list(tt["runs"]) == ["baseline", "augmented"]
    with pytest.raises(UserError, match='--test-arms names "baseline-matched"'):
        BenchConfig.from_recipe(
            "cpu", arms=["baseline"], test_poses=2, test_generator="g",
            test_arms=["baseline-matched"],
        )  # fmt: skip
