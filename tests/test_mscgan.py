"""MsCGAN: layer tables 4 to 8, multi-scale discriminators, and learning on the embedded dataset."""

import pytest
import torch
from torch import nn

from reidaug.config import TrainConfig
from reidaug.data import SyntheticMarket
from reidaug.errors import UserError
from reidaug.models import build
from reidaug.models.mscgan import mscgan_d, mscgan_g1, mscgan_g2
from reidaug.training import build_recipe, train
from tests.helpers import evaluate, tiny


def layers(model, x):
    """(kind, kernel, stride, out channels) of every conv, deconv and FC, in forward order."""
    seen = []

    def hook(m, i, o):
        if isinstance(m, nn.Linear):
            seen.append(("FC", o.shape[1]))
        else:
            kind = "DECONV" if isinstance(m, nn.ConvTranspose2d) else "CONV"
            seen.append((kind, m.kernel_size[0], m.stride[0], m.out_channels))

    hs = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    with torch.no_grad():
        y = model(x)
    for h in hs:
        h.remove()
    return seen, y


def c(k, s, ch):
    return ("CONV", k, s, ch)


def test_g1_matches_tables_4_and_5():
    seen, y = layers(mscgan_g1(), torch.randn(1, 21, 128, 64))
    encoder = [
        c(3, 1, 128),
        c(3, 1, 128),
        c(3, 1, 128),
        c(3, 2, 256),
        c(3, 1, 256),
        c(3, 1, 256),
        c(3, 2, 512),
        c(3, 1, 512),
        c(3, 1, 512),
        c(3, 2, 1024),
        c(3, 1, 1024),
        c(3, 1, 1024),
        ("FC", 64),
    ]
    decoder = [
        ("FC", 4096),
        c(3, 1, 1024),
        c(3, 1, 1024),
        ("DECONV", 3, 2, 512),
        c(3, 1, 512),
        c(3, 1, 512),
        ("DECONV", 3, 2, 256),
        c(3, 1, 256),
        c(3, 1, 256),
        ("DECONV", 3, 2, 128),
        c(3, 1, 128),
        c(3, 1, 128),
        c(3, 1, 3),
    ]
    assert seen == encoder + decoder
    assert y.shape == (1, 3, 128, 64)


def test_g2_matches_tables_6_and_7():
    g2 = mscgan_g2()
    seen, y = layers(g2, torch.randn(1, 6, 128, 64))
    encoder = [
        c(3, 1, 128),
        c(3, 1, 128),
        c(3, 1, 128),
        c(4, 2, 256),
        c(3, 1, 256),
        c(3, 1, 256),
        c(4, 2, 512),
        c(3, 1, 512),
        c(3, 1, 512),
    ]
    decoder = [
        c(3, 1, 512),
        c(3, 1, 512),
        ("DECONV", 4, 2, 256),
        c(3, 1, 256),
        c(3, 1, 256),
        ("DECONV", 4, 2, 128),
        c(3, 1, 128),
        c(3, 1, 128),
        c(3, 1, 3),
    ]
    assert seen == encoder + decoder
    assert not any(isinstance(m, nn.Linear) for m in g2.modules())
    assert torch.count_nonzero(y) == 0  # zero-initialised difference map: starts as G1's image


def test_discriminators_match_table_8_and_d2_sees_half_resolution():
    nets = build("mscgan")
    assert sorted(nets) == ["D1", "D2", "G1", "G2"]
    for name, size in (("D1", (128, 64)), ("D2", (64, 32))):
        seen, y = layers(nets[name], torch.randn(2, 6, *size))
        assert seen == [c(4, 2, 128), c(4, 2, 256), c(4, 2, 512), c(4, 2, 1024), ("FC", 1)]
        assert y.shape == (2,)
        convs = [m for m in nets[name].modules() if isinstance(m, nn.Conv2d)]
        assert all(m.padding == (1, 1) for m in convs)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in nets[name].modules()) == 3
    with pytest.raises(RuntimeError):
        nets["D2"](torch.randn(1, 6, 128, 64))  # D2 only takes the half-resolution pair
    assert sorted(build("mscgan", num_scales=3)) == ["D1", "D2", "D3", "G1", "G2"]
    assert sorted(build("mscgan", num_scales=1)) == ["D1", "G1", "G2"]
    assert mscgan_d(scale=3).out.in_features == 1024 * 2 * 1


def test_recipe_defaults_and_scales(synth_root, tmp_path):
    cfg = TrainConfig(model="mscgan", width=8, d_width=8, num_scales=3)
    r = build_recipe(cfg, torch.device("cpu"))
    assert r.opts["G1"].defaults["lr"] == 1e-4 and r.opts["G1"].defaults["betas"] == (0.5, 0.9)
    assert [s.trains for s in r.stages()] == [("G1",), ("G2", "D1", "D2", "D3")]
    with pytest.raises(UserError, match="is a PG2 ablation"):
        build_recipe(TrainConfig(model="mscgan", variant="g1-l1", width=8), torch.device("cpu"))
    run = train(tiny(synth_root, tmp_path, model="mscgan", num_scales=2, d_width=4))
    assert run.name == "00000-mscgan-synthetic"
    assert (run / "samples" / "step-0000008.png").is_file()


@pytest.mark.slow
def test_small_mscgan_beats_the_copy_baseline(synth_root, tmp_path):
    cfg = tiny(
        synth_root,
        tmp_path,
        model="mscgan",
        width=16,
        d_width=16,
        iters1=300,
        iters2=40,
        batch_size=8,
        lr=5e-4,
        log_every=50,
        sample_every=10**6,
        checkpoint_every=10**6,
        workers=1,
    )
    s = evaluate(train(cfg), SyntheticMarket(synth_root), final=True)
    assert s["G1"] > s["copy"] + 0.005, s
