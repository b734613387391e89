"""Metrics: SSIM protocols, masks, IS from its definition, the Inception module, `evaluate`."""

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity
from torchvision.models import inception_v3

from reidaug.cli import cli
from reidaug.data import keypoints as K
from reidaug.errors import UserError
from reidaug.metrics import (
    InceptionScorer,
    evaluate,
    fid,
    inception_score,
    mask_ssim,
    posegan_mask,
    ssim,
)
from reidaug.metrics.inception import TF_WEIGHTS, find_weights, tf_inception
from reidaug.metrics.ssim import apply_mask
from reidaug.training import train
from tests.helpers import tiny
from tests.test_pose import skeleton


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(128, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape), 30, 220).astype(np.uint8)
    return a, b


def test_ssim_equals_direct_scikit_image_calls(pair):
    a, b = pair
    assert ssim(a, b, "pg2") == structural_similarity(a, b, channel_axis=-1, data_range=255)
    direct = structural_similarity(
        a,
        b,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=float(a.max()) - float(a.min()),
    )
    assert ssim(a, b, "posegan") == direct
    assert ssim(a, a, "pg2") == pytest.approx(1.0)


def test_posegan_ssim_rewards_a_wider_range_and_ssim_fixed_does_not():
    """posegan's data range is the prediction's own: two saturated pixels added to a blurred,
    low-contrast prediction widen its range and lift its SSIM from about 0.42 to 0.82;
    ``ssim-fixed`` (a range of 255) does not move."""
    rng = np.random.default_rng(0)
    a = gaussian_filter(rng.normal(128, 60, (128, 64, 3)), (2, 2, 0)).clip(0, 255).astype(np.uint8)
    blurred = (gaussian_filter(a.astype(float), (3, 3, 0)) * 0.8 + 25).astype(np.uint8)
    spiked = blurred.copy()
    spiked[0, 0], spiked[-1, -1] = 0, 255
    assert ssim(spiked, a, "posegan") > ssim(blurred, a, "posegan") + 0.3
    assert ssim(spiked, a, "posegan", True) == pytest.approx(
        ssim(blurred, a, "posegan", True), abs=1e-3
    )
    assert ssim(blurred, a, "posegan", True) == structural_similarity(
        blurred,
        a,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim(blurred, a, "pg2", True) == ssim(blurred, a, "pg2")


def test_mask_ssim_masks_both_images_with_the_target_pose(pair):
    a, b = pair
    k = skeleton()
    from reidaug.data.pose import pose_mask

    m = pose_mask(k)
    expected = structural_similarity(
        (m[..., None] * a).astype(np.uint8),
        (m[..., None] * b).astype(np.uint8),
        channel_axis=-1,
        data_range=255,
    )
    assert mask_ssim(a, b, k, "pg2") == expected


def test_posegan_mask_matches_a_hand_computed_limb():
    """One horizontal limb (neck -> Rsho): a rectangle of half-width 4 plus radius-4 end disks."""
    k = np.full((18, 2), -1)
    k[K.KP["neck"]] = (20, 20)
    k[K.KP["Rsho"]] = (20, 40)
    yy, xx = np.mgrid[0:128, 0:64]
    rect = (np.abs(yy - 20) <= 4) & (xx >= 20) & (xx <= 40)
    disks = ((yy - 20) ** 2 + (xx - 20) ** 2 < 16) | ((yy - 20) ** 2 + (xx - 40) ** 2 < 16)
    np.testing.assert_array_equal(posegan_mask(k).astype(bool), rect | disks)
    assert posegan_mask(np.full((18, 2), -1)).sum() == 0
    # the full skeleton covers the body and not the corners
    m = posegan_mask(skeleton())
    assert m[45, 32] == 1 and m[100, 26] == 1 and m[2, 2] == 0
    assert (apply_mask(np.full((128, 64, 3), 200, np.uint8), m)[m == 0] == 0).all()


def test_inception_score_from_its_definition():
    uniform = np.full((100, 10), 0.1)
    assert inception_score(uniform, splits=10)[0] == pytest.approx(1.0)
    k = 7
    confident = np.eye(k)[np.arange(700) % k]  # one-hot, spread evenly over k classes
    mean, std = inception_score(confident, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0, abs=1e-6)


def test_fid_is_zero_for_identical_sets_and_grows_with_a_shift():
    f = np.random.default_rng(0).normal(size=(200, 8))
    assert fid(f, f) == pytest.approx(0, abs=1e-6)
    assert fid(f, f + 1.0) == pytest.approx(8.0, rel=1e-3)


def test_fid_with_fewer_images_than_dimensions_is_finite_and_quiet():
    rng = np.random.default_rng(0)
    a, b = (np.maximum(rng.normal(size=(5, 16)), 0) for _ in range(2))  # ReLU-like features
    a[:, :8] = b[:, :8] = 0  # dimensions no image activates: scipy's sqrtm warns on these
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's LinAlgWarning would fail here
        assert np.isfinite(fid(a, b)) and fid(a, b) > 0


def test_inception_loads_a_torchvision_1008_class_state_dict_key_for_key(tmp_path):
    ref = inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    path = tmp_path / TF_WEIGHTS
    torch.save(ref.state_dict(), path)
    assert list(tf_inception().state_dict()) == list(ref.state_dict())
    scorer = InceptionScorer("is-tf2015", weights=path)
    probs, feats = scorer(torch.randint(0, 256, (2, 128, 64, 3), dtype=torch.uint8))
    assert probs.shape == (2, 1008) and feats.shape == (2, 2048)
    assert torch.allclose(probs.sum(1), torch.ones(2))
    for name, t in ref.state_dict().items():
        assert torch.equal(scorer.net.state_dict()[name], t)


def test_missing_inception_weights_name_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("REIDAUG_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(UserError) as e:
        find_weights("is-tf2015")
    assert str(e.value) == (
        f"Inception weights not found: {TF_WEIGHTS}. Put the file in "
        f"{tmp_path / 'hub' / 'checkpoints'}/ or "
        "pass --inception-weights FILE (or set REIDAUG_INCEPTION_WEIGHTS); nothing is downloaded"
    )


@pytest.fixture(scope="module")
def tiny_run(synth_root, tmp_path_factory):
    return train(tiny(synth_root, tmp_path_factory.mktemp("runs"), iters1=2, iters2=2))


def test_evaluate_command_on_a_tiny_run(runner, tiny_run, tmp_path):
    out = tmp_path / "m.json"
    r = runner.invoke(
        cli, ["evaluate", "--run", str(tiny_run), "--limit", "12", "--json", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "ssim (pg2)" in r.stderr and "mssim (posegan)" in r.stderr
    recs = json.loads(out.read_text())
    by = {(x["metric"], x["protocol"], x["source"]): x for x in recs}
    for proto in ("pg2", "posegan"):
        for src in ("G1", "G2", "copy baseline", "real target"):
            assert by[("ssim", proto, src)]["n"] == 12
        assert by[("ssim", proto, "real target")]["value"] == pytest.approx(1.0)
        assert by[("mssim", proto, "real target")]["value"] == pytest.approx(1.0)
        assert by[("ssim", proto, "G1")]["value"] < 0.99
    lines = (tiny_run / "metric-ssim.jsonl").read_text().splitlines()
    # 2 protocols x 5 sources (G1, G2, warp, copy baseline, real target)
    assert len(lines) == 10 and json.loads(lines[0])["checkpoint"].endswith("step-0000004.pt")
    assert by[("ssim", "posegan", "warp")]["n"] == 12


def test_is_mis_fid_with_random_weights(tiny_run):
    sd = inception_v3(
        weights=None, num_classes=1008, aux_logits=False, init_weights=True
    ).state_dict()
    said = []
    recs = evaluate(
        run=tiny_run,
        protocols=["posegan"],
        metrics=["is", "mis", "fid"],
        limit=4,
        inception_state_dict=sd,
        log=said.append,
    )
    by = {(x["metric"], x["source"]): x for x in recs}
    assert by[("is", "G2")]["protocol"] == "posegan/is-tf2015"
    # the figures are the definitions applied to the same network's outputs on the same images
    from reidaug.data import SyntheticMarket
    from reidaug.data.pairs import load_image
    from reidaug.metrics.ssim import protocol_mask

    ds = SyntheticMarket(json.loads((tiny_run / "training_options.json").read_text())["root"])
    pairs, gallery = ds.test_pairs()[:4], ds.split_dir("gallery")
    net = InceptionScorer("is-tf2015", state_dict=sd)
    copy, real = (np.stack([load_image(gallery / p[k]) for p in pairs]) for k in (0, 1))
    (p_real, f_real), (p_copy, f_copy) = (net(torch.from_numpy(x)) for x in (real, copy))
    assert by[("is", "real target")]["value"] == pytest.approx(
        inception_score(p_real.numpy())[0], rel=1e-4
    )
    assert by[("fid", "copy baseline")]["value"] == pytest.approx(
        fid(f_copy.numpy(), f_real.numpy()), rel=1e-3
    )
    ann = ds.annotations("gallery")
    masks = np.stack([protocol_mask(ann[p[1]], "posegan", ds.height, ds.width) for p in pairs])
    p_mreal, _ = net(torch.from_numpy(apply_mask(real, masks)))
    assert by[("mis", "real target")]["value"] == pytest.approx(
        inception_score(p_mreal.numpy())[0], rel=1e-4
    )
    assert ("mis", "real target") in by
    assert ("fid", "real target") not in by and by[("fid", "copy baseline")]["value"] > 0
    # 4 pairs against 2,048 features: said once, not left to scipy's LinAlgWarning
    assert [s for s in said if "FID on 4 pairs" in s] == [
        "warning: FID on 4 pairs, no more than the 2048 feature dimensions: the covariances are "
        "singular and FID depends on the count; compare FIDs only at equal counts (Heusel et al. "
        "recommend at least 10,000 images)"
    ]


def test_evaluate_images_folder(tiny_run, synth_root, tmp_path, runner):
    from reidaug.data import SyntheticMarket
    from reidaug.data.pairs import load_image

    ds = SyntheticMarket(synth_root)
    pairs = ds.test_pairs()[:5]
    from PIL import Image

    for a, b in pairs:  # "generated" = the real target: SSIM must be 1
        Image.fromarray(load_image(ds.split_dir("gallery") / b)).save(tmp_path / f"{a}___{b}.png")
    recs = evaluate(
        images=tmp_path, dataset="synthetic", root=synth_root, protocols=["posegan"], limit=5
    )
    by = {(x["metric"], x["source"]): x["value"] for x in recs}
    assert by[("ssim", "images")] == pytest.approx(1.0) and by[("ssim", "copy baseline")] < 0.9
    r = runner.invoke(
        cli,
        [
            "evaluate",
            "--images",
            str(tmp_path),
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--protocol",
            "posegan",
            "--limit",
            "6",
        ],
    )
    assert r.exit_code == 1
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: 1 of 6 images are missing from {tmp_path}")
    )
    # a wrongly shaped image is refused by name, never resized and scored
    a, b = pairs[0]
    Image.new("RGB", (1, 1)).save(tmp_path / f"{a}___{b}.png")
    r = runner.invoke(
        cli,
        [
            "evaluate",
            "--images",
            str(tmp_path),
            "--dataset",
            "synthetic",
            "--root",
            str(synth_root),
            "--protocol",
            "posegan",
            "--limit",
            "5",
        ],
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path / f'{a}___{b}.png'} is 1x1 pixels, expected 64x128 (width x height), "
        "the size of the dataset's images"
    )


def test_evaluate_figures_equal_direct_computations_on_the_same_images(
    tiny_run, synth_root, monkeypatch
):
    """The engine's ssim, mssim, is and mis of G1 are the plain functions applied to the very
    images the generator makes for the protocol's pairs: a wrong mask, a wrong target, a
    mask applied to one side only or IS of the unmasked images for mis all fail here."""
    from reidaug.data import SyntheticMarket
    from reidaug.synthesis import generate_pairs
    from reidaug.training import load_generator

    sd = inception_v3(
        weights=None, num_classes=1008, aux_logits=False, init_weights=True
    ).state_dict()

    def coarse_colour(self, images):  # a random Inception gives every image the same p(y|x)
        f = F.adaptive_avg_pool2d(images.permute(0, 3, 1, 2).float() / 255, (2, 1)).flatten(1)
        return torch.softmax(30 * f, dim=1), f

    monkeypatch.setattr(InceptionScorer, "forward", coarse_colour)
    recs = evaluate(
        run=tiny_run,
        protocols=["posegan"],
        metrics=["ssim", "ssim-fixed", "mssim", "is", "mis"],
        limit=20,
        device="cpu",
        inception_state_dict=sd,
    )
    by = {(x["metric"], x["source"]): x for x in recs}
    ds = SyntheticMarket(synth_root)
    ann = ds.annotations("gallery")
    gen, g1, target, masks = load_generator(tiny_run), [], [], []
    for pairs, arr in generate_pairs(gen.recipe, ds, ds.test_pairs()[:20], "gallery", 4):
        g1 += list(arr["G1"])
        target += list(arr["target"])
        masks += [posegan_mask(ann[b]) for _, b in pairs]

    def direct(p, t, rng=None):
        rng = float(p.max()) - float(p.min()) if rng is None else rng
        return structural_similarity(
            p,
            t,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=rng,
        )

    def masked(im, m):
        return (m[..., None] * im).astype(np.uint8)

    assert by[("ssim", "G1")]["value"] == pytest.approx(
        np.mean([direct(p, t) for p, t in zip(g1, target, strict=True)])
    )
    assert by[("ssim-fixed", "G1")]["value"] == pytest.approx(
        np.mean([direct(p, t, 255.0) for p, t in zip(g1, target, strict=True)])
    )
    assert by[("mssim", "G1")]["value"] == pytest.approx(
        np.mean(
            [direct(masked(p, m), masked(t, m)) for p, t, m in zip(g1, target, masks, strict=True)]
        )
    )
    assert by[("mssim", "G1")]["n"] == 20 and by[("mssim", "real target")][
        "value"
    ] == pytest.approx(1)
    net = InceptionScorer("is-tf2015", state_dict=sd)
    net.eval()

    def hand_is(images, splits=10):  # exp(E_x KL(p(y|x) || p(y))) per split, then the mean
        p = net(torch.from_numpy(np.stack(images)))[0].double().numpy()
        out = []
        for part in np.array_split(p, splits):
            py = part.mean(0, keepdims=True)
            out.append(np.exp((part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1).mean()))
        return float(np.mean(out))

    # the barely trained G1 draws one image for every pair: the real targets differ
    assert by[("is", "G1")]["value"] == pytest.approx(hand_is(g1), rel=1e-4)
    assert by[("is", "real target")]["value"] == pytest.approx(hand_is(target), rel=1e-4)
    assert by[("mis", "real target")]["value"] == pytest.approx(
        hand_is([masked(t, m) for t, m in zip(target, masks, strict=True)]), rel=1e-4
    )
    assert by[("is", "real target")]["value"] > 1.05
    assert by[("is", "real target")]["value"] != pytest.approx(
        by[("mis", "real target")]["value"], rel=1e-3
    )


def test_fd_mnv2_ranks_sources_against_the_real_targets(tiny_run, synth_root):
    """fd-mnv2 of every source on the same pairs: the real target's own halves and the copy
    baseline sit below an untrained generator's output, and the copy figure equals the Fréchet
    distance computed by hand on the same network's features of the same images."""
    from reidaug.data import SyntheticMarket
    from reidaug.data.pairs import load_image
    from reidaug.metrics.fd_mnv2 import MobileNetFeatures

    recs = evaluate(run=tiny_run, protocols=["posegan"], metrics=["fd-mnv2"], limit=24)
    by = {x["source"]: x for x in recs if x["metric"] == "fd-mnv2"}
    assert {"G1", "G2", "copy baseline", "warp", "real target (half vs half)"} <= set(by)
    assert by["real target (half vs half)"]["value"] < by["G1"]["value"]
    assert by["copy baseline"]["value"] < by["G1"]["value"]
    ds = SyntheticMarket(synth_root)
    pairs, gallery = ds.test_pairs()[:24], ds.split_dir("gallery")
    net = MobileNetFeatures()
    copy, real = (
        net(torch.from_numpy(np.stack([load_image(gallery / p[k]) for p in pairs]))).numpy()
        for k in (0, 1)
    )
    assert by["copy baseline"]["value"] == pytest.approx(fid(copy, real), rel=1e-4)
