"""PG2 networks at paper size: every stage's channels and spatial size, and parameter counts."""

import pytest
import torch

from reidaug.models import build
from reidaug.models.pg2 import pg2_d, pg2_g1, pg2_g2


def conv_params(cin, cout, k=3):
    return cin * cout * k * k + cout


def res_params(c):
    return 2 * conv_params(c, c)


def expected_g1_params(w=128, n=5, fc=64, bottom=(8, 4), cin=21):
    """Counted from the description: linear channels, residual blocks, FC 64, mirrored decoder."""
    ch = [w * (i + 1) for i in range(n)]
    hw = bottom[0] * bottom[1]
    total = conv_params(cin, ch[0])
    total += sum(res_params(c) for c in ch)
    total += sum(conv_params(ch[i], ch[i + 1]) for i in range(n - 1))
    total += ch[-1] * hw * fc + fc + fc * w * hw + w * hw  # FC in and out, no activation
    x = w
    for level in reversed(range(n)):
        cat = x + ch[level]
        total += res_params(cat)
        if level > 0:
            total += conv_params(cat, ch[level - 1])  # nearest upsample + 3x3 conv
            x = ch[level - 1]
        else:
            x = cat
    return total + conv_params(x, 3)


def expected_g2_params(w=128, n=3, cin=6):
    ch = [w * (i + 1) for i in range(n)]
    total = conv_params(cin, ch[0]) + sum(res_params(c) for c in ch)
    total += sum(conv_params(ch[i], ch[i + 1]) for i in range(n - 1))
    x = 0
    for level in reversed(range(n)):
        cat = x + ch[level]
        total += res_params(cat)
        if level > 0:
            total += conv_params(cat, ch[level - 1])
            x = ch[level - 1]
        else:
            x = cat
    return total + conv_params(x, 3)


def count(m):
    return sum(p.numel() for p in m.parameters())


def shapes(model, x, kinds):
    out = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: out.append((type(m).__name__, tuple(o.shape[1:]))))
        for m in model.modules()
        if type(m).__name__ in kinds
    ]
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    return out, y


def test_g1_at_paper_size():
    g1 = pg2_g1()
    assert count(g1) == expected_g1_params() == 79_183_683
    out, y = shapes(g1, torch.randn(1, 21, 128, 64), {"ResBlock", "Linear"})
    assert y.shape == (1, 3, 128, 64)
    enc = [s for _, s in out[:5]]
    assert enc == [(128, 128, 64), (256, 64, 32), (384, 32, 16), (512, 16, 8), (640, 8, 4)]
    assert [s for _, s in out[5:7]] == [(64,), (128 * 8 * 4,)]  # FC bottleneck of 64 units
    dec = [s for _, s in out[7:]]
    assert dec == [(768, 8, 4), (1024, 16, 8), (768, 32, 16), (512, 64, 32), (256, 128, 64)]
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Dropout)) for m in g1.modules())


def test_g2_is_fully_convolutional_with_n_minus_2_blocks():
    g2 = pg2_g2()
    assert count(g2) == expected_g2_params()
    assert not any(isinstance(m, torch.nn.Linear) for m in g2.modules())
    out, y = shapes(g2, torch.randn(1, 6, 128, 64), {"ResBlock"})
    assert y.shape == (1, 3, 128, 64)
    assert [s for _, s in out] == [
        (128, 128, 64),
        (256, 64, 32),
        (384, 32, 16),
        (384, 32, 16),
        (512, 64, 32),
        (256, 128, 64),
    ]
    # fully convolutional: other sizes work too
    assert pg2_g2(width=8)(torch.randn(1, 6, 64, 32)).shape == (1, 3, 64, 32)


def test_discriminator():
    d = pg2_d()
    out, y = shapes(d, torch.randn(2, 6, 128, 64), {"Conv2d", "BatchNorm2d", "LeakyReLU"})
    convs = [s for k, s in out if k == "Conv2d"]
    assert convs == [(64, 64, 32), (128, 32, 16), (256, 16, 8), (512, 8, 4)]
    assert sum(k == "BatchNorm2d" for k, _ in out) == 3  # all but the first
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert all(
        m.kernel_size == (4, 4) and m.stride == (2, 2)
        for m in d.modules()
        if isinstance(m, torch.nn.Conv2d)
    )
    assert y.shape == (2,)


def test_width_is_configurable_and_variants_build_what_they_need():
    nets = build("pg2", width=8, d_width=8)
    assert sorted(nets) == ["D", "G1", "G2"]
    assert count(nets["G1"]) == expected_g1_params(w=8)
    assert sorted(build("pg2", width=8, variant="g1-posemask")) == ["G1"]
    assert sorted(build("pg2", width=8, variant="g1-d")) == ["D", "G1"]
    with pytest.raises(Exception, match='Unknown model "pg3"; expected one of: pg2, mscgan'):
        build("pg3")
