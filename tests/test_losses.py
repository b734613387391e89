import math

import pytest
import torch
import torch.nn.functional as F

from reidaug.losses import GANLoss, background_l1, d_loss, l1, pg2_g2_loss, pose_mask_l1


def test_pose_mask_l1_weights_the_body_twice():
    pred = torch.zeros(1, 3, 4, 4)
    target = torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # half the image is body
    assert pose_mask_l1(pred, target, mask).item() == 1.5
    assert l1(pred, target).item() == 1.0
    assert background_l1(pred, target, mask).item() == 0.5


def test_gan_loss_hides_labels_and_is_bce_on_logits():
    gan = GANLoss("bce")
    logits = torch.tensor([0.0, 2.0, -1.0])
    assert torch.isclose(
        gan(logits, True), F.binary_cross_entropy_with_logits(logits, torch.ones(3))
    )
    assert math.isclose(gan(torch.zeros(4), False).item(), math.log(2), rel_tol=1e-6)
    # eq. 2 at chance: 2 ln 2
    assert math.isclose(
        d_loss(gan, torch.zeros(2), torch.zeros(2)).item(), 2 * math.log(2), rel_tol=1e-6
    )
    # eq. 4: adversarial + lambda * pose-mask L1
    pred, tgt, m = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2), torch.ones(1, 1, 2, 2)
    assert math.isclose(
        pg2_g2_loss(gan, torch.zeros(1), pred, tgt, m, lam=10).item(),
        math.log(2) + 20,
        rel_tol=1e-6,
    )
    assert GANLoss("lsgan")(torch.ones(3), True).item() == 0.0


def test_ssim_loss_is_one_minus_the_posegan_ssim():
    import numpy as np
    from skimage.metrics import structural_similarity

    from reidaug.losses import ssim_loss

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 128, 64, generator=g) * 2 - 1
    b = (0.5 * a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    ref = np.mean(
        [
            structural_similarity(
                x.permute(1, 2, 0).numpy(),
                y.permute(1, 2, 0).numpy(),
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=2.0,
            )
            for x, y in zip(a, b, strict=True)
        ]
    )
    assert 1 - ssim_loss(b, a).item() == pytest.approx(ref, abs=1e-5)
    assert ssim_loss(a, a).item() == pytest.approx(0, abs=1e-6)
    noise = torch.randn(a.shape, generator=g)
    grows = [ssim_loss((a + s * noise).clamp(-1, 1), a).item() for s in (0.05, 0.2, 0.6)]
    assert 0 < grows[0] < grows[1] < grows[2]
    fake = b.clone().requires_grad_(True)
    ssim_loss(fake, a).backward()
    assert fake.grad.abs().sum() > 0
