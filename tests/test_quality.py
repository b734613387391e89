"""Weight-free quality metrics: sharpness ratios and identity preservation (idp)."""

import numpy as np
import pytest
import torch
from skimage.filters import gaussian

from reidaug.cli import cli
from reidaug.data import SyntheticMarket
from reidaug.data.pairs import load_image
from reidaug.metrics import evaluate
from reidaug.metrics.idp import IdpScorer
from reidaug.metrics.sharpness import high_frequency_energy, laplacian_variance
from reidaug.reidnet.model import load
from reidaug.synthesis import synthesize
from reidaug.training import train
from tests.helpers import tiny


def _textured(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((128, 64, 3)) * 255).astype(np.uint8)


def test_blur_lowers_both_sharpness_statistics():
    img = _textured()
    blurred = (gaussian(img, sigma=1.5, channel_axis=-1) * 255).astype(np.uint8)
    assert laplacian_variance(blurred) < 0.2 * laplacian_variance(img)
    assert high_frequency_energy(blurred) < 0.2 * high_frequency_energy(img)


def test_sharpness_is_measured_inside_the_mask_only():
    img = np.full((128, 64, 3), 128, np.uint8)
    img[:, 32:] = _textured()[:, 32:]  # texture on the right half only
    left = np.zeros((128, 64), np.uint8)
    left[:, :28] = 1
    assert laplacian_variance(img, left) == pytest.approx(0.0, abs=1e-12)
    assert high_frequency_energy(img, 1 - left) > 100 * high_frequency_energy(img, left)
    # an all-missing pose (empty mask) falls back to the whole image instead of NaN
    assert np.isfinite(laplacian_variance(img, np.zeros((128, 64))))


@pytest.fixture(scope="module")
def trained(synth_root, tmp_path_factory):
    """A width-16 G1 trained ~40 s: blurry, but already person-shaped."""
    cfg = tiny(
        synth_root,
        tmp_path_factory.mktemp("runs"),
        width=16,
        variant="g1-posemask",
        iters1=250,
        batch_size=8,
        lr=5e-4,
        log_every=50,
        sample_every=10**6,
        checkpoint_every=10**6,
        workers=1,
    )
    return train(cfg)


@pytest.mark.slow
def test_idp_and_sharpness_on_a_trained_g1(trained, synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("REIDAUG_CACHE", str(tmp_path / "cache"))
    said, bars = [], []
    recs = evaluate(
        run=trained,
        protocols=["posegan"],
        metrics=["idp", "sharpness"],
        limit=96,
        device="cpu",
        reid_recipe={"epochs": 4, "batch_size": 32, "workers": 0},
        log=said.append,
        progress=lambda done, total, label=None, **kw: bars.append((done, total, label, kw)),
    )
    # the judge's bar counts steps and names the epoch each is in, never "epoch 37/96"
    judge_bars = [b for b in bars if b[2] == "re-ID model"]
    assert judge_bars and judge_bars[-1][3]["epoch"] == "4/4"
    assert judge_bars[-1][0] == judge_bars[-1][1] > 4
    assert {b[2] for b in bars} == {"re-ID model", "posegan"}
    assert all(r["judge"] == "cpu recipe" for r in recs if r["metric"].startswith("idp"))
    v = {(r["metric"], r["source"]): r["value"] for r in recs}
    n = {(r["metric"], r["source"]): r["n"] for r in recs}
    # every source is ranked on the same queries; the judge's own figures come with them
    assert (
        n[("idp-rank1", "G1")]
        == n[("idp-rank1", "copy baseline")]
        == n[("idp-rank1", "real target")]
        > 0
    )
    assert all(
        0 <= v[(m, s)] <= 1
        for m in ("idp-rank1", "idp-mAP")
        for s in ("G1", "copy baseline", "real target", "judge (real queries)")
    )
    # each source is scored on its own images: the same judge ranking the pairs' condition and
    # target images by hand gives the copy-baseline and real-target figures exactly
    (judge,) = (tmp_path / "cache" / "reid").glob("*.pt")
    ds = SyntheticMarket(synth_root)
    model, meta = load(judge)
    scorer = IdpScorer(model, meta, ds)
    pairs = ds.test_pairs()[:96]
    gallery = ds.split_dir("gallery")
    for src, k in (("copy baseline", 0), ("real target", 1)):
        images = np.stack([load_image(gallery / p[k]) for p in pairs])
        scorer.add(src, images, pairs)
        assert scorer.score(src)["mAP"] == pytest.approx(v[("idp-mAP", src)]), src
        assert scorer.score(src)["rank1"] == pytest.approx(v[("idp-rank1", src)]), src
    # a trained G1 is blurrier than the photographs; the reference row is exactly 1
    assert v[("lapvar", "G1")] < 0.8 and v[("hfe", "G1")] < 0.8, v
    assert v[("lapvar", "real target")] == pytest.approx(1.0)
    assert any("trained" in s or "training the re-ID model" in s for s in said)
    cached = list((tmp_path / "cache" / "reid").glob("synthetic-osnet_x0_25-*.pt"))
    assert len(cached) == 1 and load(cached[0])[1]["num_classes"] == 12

    # the cached model is reused, not retrained
    said.clear()
    again = evaluate(
        run=trained,
        protocols=["posegan"],
        metrics=["idp"],
        limit=32,
        device="cpu",
        reid_recipe={"epochs": 4, "batch_size": 32, "workers": 0},
        log=said.append,
    )
    assert any("from the cache" in s for s in said) and again


def test_shards_of_a_subset_generator_are_scored_beside_the_unseen_real_views(synth_root):
    from reidaug.metrics.idp import train_id_accuracy
    from reidaug.reidnet import adapter
    from reidaug.reidnet import model as reid_model

    ds = SyntheticMarket(synth_root)
    sources = ds.train[::3]  # the generator saw a third of the training images
    people = {it.pid for it in sources}

    class Shards:  # two synthetic images of each source: the images are the sources themselves
        rows = [it for it in sources for _ in range(2)]

        def __len__(self):
            return len(self.rows)

        def column(self, key):
            col = {
                "label": [it.pid for it in self.rows],
                "source": [it.path.name for it in self.rows],
            }
            return np.array(col[key])

        def locate(self, i):
            return (i,)

        def image(self, i):
            return load_image(self.rows[i].path, ds.height, ds.width)

    torch.manual_seed(0)
    model = adapter.build_model("osnet_x0_25", ds.num_train_ids).eval()
    meta = {"height": 128, "width": 64, "num_classes": ds.num_train_ids}
    got = train_id_accuracy(model, meta, ds, Shards())
    unseen = [it for it in ds.train if it.pid in people and it not in sources]
    assert unseen and got["real unseen images"]["n"] == len(unseen)
    pred = reid_model.classify(model, reid_model.embed(model, unseen, meta))
    top1 = float((pred == torch.as_tensor([it.pid for it in unseen])).float().mean())
    assert got["real unseen images"]["top1"] == pytest.approx(top1)
    assert got["real source images"]["n"] == len(sources)

    Shards.rows = [it for it in ds.train for _ in range(2)]  # the full training set: no row
    assert "real unseen images" not in train_id_accuracy(model, meta, ds, Shards())


@pytest.mark.slow
def test_idp_top1_on_training_id_shards(trained, synth_root, tmp_path, monkeypatch, runner):
    monkeypatch.setenv("REIDAUG_CACHE", str(tmp_path / "cache"))
    shards = tmp_path / "shards"
    synthesize(shards, run=trained, poses=1, shard_size=64, batch_size=32, workers=0)
    recs = evaluate(
        shards=shards,
        metrics=["idp"],
        dataset="synthetic",
        root=synth_root,
        device="cpu",
        reid_recipe={"epochs": 2, "batch_size": 32, "workers": 0},
    )
    by = {r["source"]: r for r in recs}
    n_train = len(SyntheticMarket(synth_root).train)
    assert set(by) == {"synthetic", "real source images", "judge (real queries)"}
    assert {r["metric"] for r in recs if r["source"] == "judge (real queries)"} == {
        "idp-rank1",
        "idp-mAP",
    }
    assert by["synthetic"]["n"] == n_train and by["synthetic"]["metric"] == "idp-top1"
    assert 0 <= by["synthetic"]["value"] <= 1 and by["real source images"]["n"] == n_train
    # the real-source top-1 is the cached judge classifying the real training images
    from reidaug.reidnet import model as reid_model

    (judge,) = (tmp_path / "cache").rglob("*.pt")
    model, meta = reid_model.load(judge)
    ds = SyntheticMarket(synth_root)
    pred = reid_model.classify(model, reid_model.embed(model, ds.train, meta))
    top1 = float((pred == torch.as_tensor([it.pid for it in ds.train])).float().mean())
    assert by["real source images"]["value"] == pytest.approx(top1)

    r = runner.invoke(
        cli,
        [
            "evaluate",
            "--run",
            str(trained),
            "--metrics",
            "idp",
            "--reid-checkpoint",
            str(tmp_path / "none.pt"),
        ],
    )
    assert r.exit_code == 1
    assert (
        r.stderr.strip().splitlines()[-1]
        == f"Error: re-ID checkpoint not found: {tmp_path / 'none.pt'}"
    )
    r = runner.invoke(
        cli,
        ["evaluate", "--shards", str(shards), "--dataset", "synthetic", "--root", str(synth_root)],
    )
    assert r.exit_code == 1 and "add idp to --metrics" in r.stderr


@pytest.mark.slow
def test_a_generator_of_the_real_targets_scores_no_more_than_the_judge(
    synth_root, tmp_path, monkeypatch
):
    """The idp gallery leaves out both real images of a pair and every view of the person from
    their two cameras, so copying the target earns what the judge earns on real queries, no more."""
    from PIL import Image

    from reidaug.metrics.idp import JUDGE

    monkeypatch.setenv("REIDAUG_CACHE", str(tmp_path / "cache"))
    ds = SyntheticMarket(synth_root)
    pairs = ds.test_pairs()
    images = tmp_path / "images"
    images.mkdir()
    for a, b in pairs:  # a "generator" whose images are exactly the real targets
        Image.open(ds.split_dir("gallery") / b).save(images / f"{a}___{b}.png")
    said = []
    recs = evaluate(
        images=images,
        dataset="synthetic",
        root=synth_root,
        protocols=["posegan"],
        metrics=["idp"],
        device="cpu",
        log=said.append,
        reid_recipe={"epochs": 12, "batch_size": 16, "workers": 0},
    )
    v = {(r["metric"], r["source"]): r for r in recs}
    judge = v[("idp-rank1", JUDGE)]
    assert judge["protocol"] == "real queries" and judge["n"] == len(ds.query)
    assert ("idp-mAP", JUDGE) in v
    target, generated = v[("idp-rank1", "real target")], v[("idp-rank1", "images")]
    assert generated["value"] == pytest.approx(target["value"])  # the same images, the same score
    assert 0 < target["n"] <= len(pairs)
    assert target["value"] <= judge["value"] + 0.10, (target["value"], judge["value"])
    assert any("idp judge (cpu recipe) on the real synthetic queries" in s for s in said)
    if v[("idp-mAP", JUDGE)]["value"] < 0.30:
        assert any(s.startswith("warning: the idp judge reaches only") for s in said)


def test_outputs_of_stages_a_checkpoint_never_trained_are_not_scored(synth_root, tmp_path):
    said = []
    run = train(tiny(synth_root, tmp_path, stage="1", iters1=2))
    recs = evaluate(
        run=run, protocols=["posegan"], metrics=["ssim"], limit=8, device="cpu", log=said.append
    )
    assert {r["source"] for r in recs} == {"G1", "warp", "copy baseline", "real target"}
    assert any(s.startswith("not trained in step-0000002.pt: D, G2;") for s in said), said


@pytest.mark.slow
def test_the_pretrained_idp_judge_is_the_pretrained_recipes_model(
    synth_root, tmp_path, monkeypatch, runner
):
    monkeypatch.setenv("REIDAUG_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    ds = SyntheticMarket(synth_root)
    gallery = ds.split_dir("gallery")
    from PIL import Image

    for a, b in ds.test_pairs()[:8]:  # the real targets as the "generated" images
        Image.open(gallery / b).convert("RGB").save(images / f"{a}___{b}.png")
    recs = evaluate(
        images=images,
        protocols=["posegan"],
        metrics=["idp"],
        dataset="synthetic",
        root=synth_root,
        limit=8,
        device="cpu",
        reid_recipe={
            "recipe": "pretrained",
            "epochs": 2,
            "warmup_epochs": 1,
            "workers": 0,
            "batch_size": 16,
        },  # fmt: skip
    )
    assert recs and all(r["judge"] == "pretrained recipe" for r in recs)
    from reidaug.reidnet import model as reid_model

    (judge,) = (tmp_path / "cache").rglob("*.pt")
    _, meta = reid_model.load(judge)
    assert meta["model"] == "mobilenetv2_bnneck" and meta["recipe"]["pretrained"] == "imagenet"
