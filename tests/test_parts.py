"""Part geometry (Deformable GAN's ten affines and masks), the deformable skips and the
nearest-neighbour loss."""

import numpy as np
import pytest
import torch

from reidaug.data import SyntheticMarket
from reidaug.data import keypoints as K
from reidaug.data.pairs import PairDataset, load_image
from reidaug.data.parts import (
    HEAD,
    LIMBS,
    NUM_PARTS,
    PART_FLIP,
    PART_NAMES,
    TORSO,
    PartWarp,
    deform,
    part_affines,
    part_warp,
    paste_warp,
    warp_images,
    warp_parts,
)
from reidaug.data.pose import pose_mask
from reidaug.losses import nearest_neighbour_l1
from reidaug.models import build

H, W = 128, 64


def _poses(synth_root, n=6):
    ds = SyntheticMarket(synth_root)
    ann = ds.annotations("train")
    kps = [ann[it.name] for it in ds.train if K.is_valid_pose(ann[it.name])]
    # full poses: every part present (the embedded people have all 18 keypoints)
    full = [k for k in kps if K.present(k).all()]
    return torch.tensor(np.stack(full[:n]), dtype=torch.float64)


def _affine(seed):
    """A random pixel-frame affine (rotation, anisotropic scale, shear, shift) near identity."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-0.15, 0.15)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = rot @ np.diag(rng.uniform(0.8, 1.0, 2)) @ np.array([[1, rng.uniform(-0.2, 0.2)], [0, 1]])
    centre = np.array([W / 2, H / 2])
    return m, centre - m @ centre + rng.uniform(-3, 3, 2)


def _moved(target, seed):
    """``target`` keypoints under a random affine (all of them still inside the image)."""
    m, t = _affine(seed)
    sxy = target.flip(-1) @ torch.tensor(m).T + torch.tensor(t)
    assert (sxy >= 0).all() and (sxy[..., 0] < W).all() and (sxy[..., 1] < H).all()
    return sxy.flip(-1)


def _apply(a, xy):
    """``a`` (..., 2, 3) on (..., N, 2) (x, y) points."""
    return xy @ a[..., :2].transpose(-1, -2) + a[..., None, :, 2]


def _part_joints(p):
    if p == 0:
        return list(TORSO)
    if p == 1:
        return list(HEAD) + [K.KP["Lsho"], K.KP["Rsho"]]
    j0, j1, _ = LIMBS[p - 2]
    return [j0, j1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_part_affine_maps_the_target_keypoints_onto_the_source(synth_root, seed):
    target = _poses(synth_root)
    source = _moved(target, seed)
    txy, sxy = target.flip(-1), source.flip(-1)
    a, valid = part_affines(source, target)
    assert valid.all()
    for p in range(NUM_PARTS):
        j = _part_joints(p)
        err = (_apply(a[:, p], txy[:, j]) - sxy[:, j]).norm(dim=-1)
        assert err.max() < 0.5, (PART_NAMES[p], float(err.max()))
    # the normalised affines sample the same source pixels (align_corners=False frame)
    geo = part_warp(source, target, H, W)
    scale = torch.tensor([2 / W, 2 / H], dtype=torch.float64)
    norm = lambda xy: (2 * xy + 1) * scale / 2 - 1  # noqa: E731
    for p in range(NUM_PARTS):
        j = _part_joints(p)
        got = _apply(geo.theta[:, p].double(), norm(txy[:, j]))
        assert (got - norm(sxy[:, j])).abs().max() < 0.5 * scale.min()


def test_a_limb_missing_in_the_source_uses_its_mirror_and_a_missing_target_part_is_dropped(
    synth_root,
):
    target = _poses(synth_root, 2)
    source = target.clone()
    source[:, K.KP["Relb"]] = -1  # the right upper arm and forearm are gone from the source
    a, valid = part_affines(source, target)
    up = PART_NAMES.index("Rupperarm")
    assert valid[:, up].all()
    txy, sxy = target.flip(-1), source.flip(-1)
    got = _apply(a[:, up], txy[:, [K.KP["Rsho"], K.KP["Relb"]]])
    want = sxy[:, [K.KP["Lsho"], K.KP["Lelb"]]]
    assert (got - want).norm(dim=-1).max() < 0.5
    # a part absent from the target has no mask; nor does one absent from both sides of the
    # source
    target2 = target.clone()
    target2[:, K.KP["Lkne"]] = -1
    source2 = target.clone()
    source2[:, [K.KP["Rwri"], K.KP["Lwri"]]] = -1
    g = part_warp(source2, target2, H, W)
    for name in ("Lthigh", "Lshin", "Rforearm", "Lforearm"):
        assert g.masks[:, PART_NAMES.index(name)].sum() == 0, name
    assert (g.masks[:, PART_NAMES.index("Rthigh")].sum((1, 2)) > 0).all()


def test_equal_poses_give_the_identity_warp(synth_root):
    kps = _poses(synth_root, 4)
    img = torch.rand(4, 3, H, W) * 2 - 1
    geo = part_warp(kps, kps, H, W)
    assert torch.allclose(paste_warp(img, geo), img, atol=1e-5)
    parts = warp_parts(img, geo)
    assert torch.allclose(parts, img[:, None] * geo.masks[:, :, None], atol=1e-5)


def test_a_flipped_pair_gives_flipped_masks(synth_root):
    target = _poses(synth_root, 6)
    source = target.flip(0)  # other people's poses
    flip = lambda k: torch.from_numpy(K.flip_keypoints(k.numpy(), W)).double()  # noqa: E731
    m = part_warp(source, target, H, W).masks
    mf = part_warp(flip(source), flip(target), H, W).masks
    assert m.sum() > 0
    assert torch.equal(mf, m[:, list(PART_FLIP)].flip(-1))


def test_the_warp_baseline_moves_the_person_to_the_target_pose(synth_root):
    """The embedded people are drawn from their keypoints: a part-warped source lies closer to
    the target image than the source does, inside the target's limbs."""
    ds = SyntheticMarket(synth_root)
    ann = ds.annotations("gallery")
    pairs = ds.test_pairs()[:40]
    d = ds.split_dir("gallery")
    src = np.stack([load_image(d / a) for a, _ in pairs])
    tgt = np.stack([load_image(d / b) for _, b in pairs]).astype(float)
    warped = warp_images(
        src, np.stack([ann[a] for a, _ in pairs]), np.stack([ann[b] for _, b in pairs])
    )
    assert warped.dtype == np.uint8 and warped.shape == src.shape
    body = np.stack([pose_mask(ann[b], H, W) for _, b in pairs])[..., None] > 0
    err = lambda x: np.abs(x - tgt)[np.broadcast_to(body, tgt.shape)].mean()  # noqa: E731
    assert err(warped) < err(src) - 5, (err(warped), err(src))


def _only(geo: PartWarp, parts) -> PartWarp:
    keep = torch.zeros(NUM_PARTS)
    keep[list(parts)] = 1
    return PartWarp(geo.theta, geo.masks * keep[None, :, None, None])


def test_deformable_skips_move_each_part_s_features_only_into_its_target_region(synth_root):
    target = _poses(synth_root, 3)
    source = _moved(target, 5)
    shin, head = PART_NAMES.index("Rshin"), PART_NAMES.index("head")
    geo = _only(part_warp(source, target, H, W), (shin, head))
    feats = torch.rand(3, 4, H, W)
    # perturb the features inside the source's right shin (its polygon is the shin mask of the
    # source pose itself)
    src_mask = part_warp(source, source, H, W).masks[:, shin]
    bumped = feats + 5 * src_mask[:, None]
    change = (deform(bumped, geo) - deform(feats, geo)).abs().sum(1)
    assert change.sum() > 0
    assert change[geo.masks[:, shin] == 0].max() == 0  # nothing outside the target's shin
    assert change[geo.masks[:, head] > 0].max() == 0  # the head is untouched


@pytest.mark.parametrize("model", ["pg2", "mscgan"])
def test_a_deformable_generator_sees_the_source_only_through_the_part_masks(synth_root, model):
    nets = build(model, width=8, skip="deform")
    kps = _poses(synth_root, 2)
    geo = part_warp(kps.flip(0), kps, H, W)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3 + 18 + 3, H, W, generator=g)
    s1, s2 = torch.rand(2, 2, 21, H, W, generator=g)
    for name in ("G1", "G2"):
        net = nets[name].eval()
        torch.nn.init.normal_(net.conv_out[0].weight)  # G2 starts as a zero difference map
        xin = x if name == "G1" else x[:, :9]
        with torch.no_grad():
            a, b = net(xin, s1, geo), net(xin, s2, geo)
            empty = PartWarp(geo.theta, torch.zeros_like(geo.masks))
            c, d = net(xin, s1, empty), net(xin, s2, empty)
        assert (a - b).abs().max() > 1e-4, name  # the source features reach the output
        assert torch.equal(c, d), name  # and only through the masked warps
    with pytest.raises(ValueError, match="source input and warp"):
        nets["G1"](x)


def test_the_nearest_neighbour_loss_forgives_a_one_pixel_shift_and_not_more():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 32, 16, generator=g) * 2 - 1
    assert nearest_neighbour_l1(img, img, 3) == 0
    one = torch.cat([img[..., :1], img[..., :-1]], -1)  # shifted right by 1, edge replicated
    down = torch.cat([img[..., :1, :], img[..., :-1, :]], -2)
    assert nearest_neighbour_l1(one, img, 3) == 0
    assert nearest_neighbour_l1(down, img, 3) == 0
    two = torch.cat([img[..., :2], img[..., :-2]], -1)
    assert nearest_neighbour_l1(two, img, 3) > 0.1
    assert nearest_neighbour_l1(two, img, 5) == 0
    assert nearest_neighbour_l1(one, img, 1) == pytest.approx((one - img).abs().sum(1).mean())
    with pytest.raises(ValueError, match="odd"):
        nearest_neighbour_l1(img, img, 4)


@pytest.mark.slow
def test_a_warping_g1_is_sharper_than_the_plain_g1_at_equal_steps_and_keeps_identity(
    synth_root, tmp_path, monkeypatch
):
    """The learning gate: the same G1, seed, batches and steps, with and without the
    deformable skips; the warping one keeps more of the person's own texture."""
    from reidaug.metrics import evaluate
    from reidaug.training import train
    from tests.helpers import tiny

    monkeypatch.setenv("REIDAUG_CACHE", str(tmp_path / "cache"))
    scores = {}
    for skip in ("add", "deform"):
        cfg = tiny(
            synth_root,
            tmp_path / skip,
            width=16,
            variant="g1-posemask",
            skip=skip,
            norm="batch",
            iters1=150,
            batch_size=8,
            lr=5e-4,
            log_every=50,
            sample_every=10**6,
            checkpoint_every=10**6,
        )
        recs = evaluate(
            run=train(cfg),
            protocols=["posegan"],
            metrics=["idp", "sharpness"],
            limit=96,
            device="cpu",
            reid_recipe={"epochs": 12, "batch_size": 32, "workers": 0},
        )
        scores[skip] = {(r["metric"], r["source"]): r["value"] for r in recs}
    plain, warping = scores["add"], scores["deform"]
    for metric in ("lapvar", "hfe"):  # 1.46 -> 1.97 and 1.14 -> 1.62 when written
        assert warping[(metric, "G1")] > 1.2 * plain[(metric, "G1")], (metric, plain, warping)
    # identity: at this size a 12-epoch judge ranks 94 queries (the copy baseline's Rank-1 is
    # about 10 %), so Rank-1 moves by whole hits from machine to machine and cannot order the
    # two G1s; the warping G1 must not lose more than that noise in mAP. Market's 12,000
    # pairs carry the identity claim (docs/results/generators).
    mean_ap = (plain[("idp-mAP", "G1")], warping[("idp-mAP", "G1")])
    assert mean_ap[1] >= mean_ap[0] - 0.02, mean_ap
    # the reference rows do not depend on the model, and the warp row is there
    assert warping[("idp-rank1", "warp")] == plain[("idp-rank1", "warp")]


def test_a_warping_model_synthesizes_from_both_poses(synth_root, tmp_path):
    """``synthesize`` hands the deformable generator the source's and the target pose's
    keypoints: a shard image equals the model's image for those two poses."""
    import h5py

    from reidaug.data.pairs import to_tensor, to_uint8
    from reidaug.data.pose import render_heatmaps
    from reidaug.synthesis import synthesize
    from reidaug.training import load_generator, train
    from tests.helpers import tiny

    run = train(tiny(synth_root, tmp_path / "runs", skip="deform", iters1=2, iters2=2))
    out = tmp_path / "shards"
    synthesize(out, run=run, poses=1, shard_size=64, batch_size=16, workers=0)
    ds = SyntheticMarket(synth_root)
    rec = load_generator(run).recipe
    with h5py.File(sorted(out.glob("shard-*.h5"))[0], "r") as f:
        name = f["source_name"][0].decode()
        target = f["target_keypoints"][0]
        image = f["images"][0]
    source = ds.annotations("train")[name]
    cond = to_tensor(load_image(ds.split_dir("train") / name))[None]
    pose = torch.from_numpy(render_heatmaps(target, H, W, rec.cfg.heatmap))[None]
    kps = [torch.tensor(k, dtype=torch.float32)[None] for k in (source, target)]
    assert np.array_equal(to_uint8(rec.final(cond, pose, *kps))[0], image)
    other = torch.tensor(np.roll(target, 3, axis=0), dtype=torch.float32)[None]
    assert not np.array_equal(to_uint8(rec.final(cond, pose, kps[0], other))[0], image)


def test_a_residual_warping_g1_starts_as_the_part_warp_and_needs_deform(synth_root):
    from reidaug.config import TrainConfig
    from reidaug.errors import UserError
    from reidaug.training import build_recipe

    ds = SyntheticMarket(synth_root)
    data = PairDataset(ds, ds.test_pairs()[:4], "gallery")
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    kps = (batch["source_keypoints"], batch["target_keypoints"])
    cfg = TrainConfig(dataset="synthetic", width=8, skip="deform", deform_output="residual")
    rec = build_recipe(cfg, torch.device("cpu"))
    rec.eval_mode()
    out = rec.generate(batch["condition"], batch["target_pose"], *kps)
    warp = paste_warp(batch["condition"], part_warp(*kps, H, W))
    assert torch.allclose(out["G1"], warp, atol=1e-6) and torch.allclose(out["G2"], warp)
    with pytest.raises(UserError, match="use skip deform"):
        TrainConfig(dataset="synthetic", skip="add", deform_output="residual")
