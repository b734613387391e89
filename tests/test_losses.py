import json
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


def test_perceptual_l1_is_the_mean_block_l1_of_the_frozen_imagenet_mobilenet():
    from torchvision.models import mobilenet_v2

    from reidaug.losses import PerceptualL1
    from reidaug.reidnet import backbone

    loss = PerceptualL1((1, 3, 6))
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 64, 32, generator=g) * 2 - 1
    pred = (target + 0.3 * torch.randn(2, 3, 64, 32, generator=g)).requires_grad_(True)
    assert loss(target, target).item() == 0.0
    value = loss(pred, target)
    # by hand, on torchvision's network holding the same ImageNet file
    tv = mobilenet_v2(weights=None).features.eval()
    tv.load_state_dict(backbone.mobilenet_v2_state(backbone.find_weights("mobilenetv2_bnneck")))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    want, a, b = [], (pred.detach() + 1) / 2, (target + 1) / 2
    a, b = (a - mean) / std, (b - mean) / std
    with torch.no_grad():
        for i, block in enumerate(tv[:7]):
            a, b = block(a), block(b)
            if i in (1, 3, 6):
                want.append((a - b).abs().mean())
    assert value.item() == pytest.approx(float(sum(want) / 3), rel=1e-5)
    noisier = loss(target + 0.6 * torch.randn(2, 3, 64, 32, generator=g), target)
    assert noisier > value > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()  # a recipe's train mode never reaches its batch-norm statistics
    assert not any(m.training for m in loss.modules())
    with pytest.raises(ValueError, match="perceptual layers must lie in 0..18"):
        PerceptualL1((2, 19))


def test_a_perceptual_run_logs_its_term_and_refuses_layers_without_it(synth_root, tmp_path, runner):
    import json

    from reidaug.cli import cli
    from reidaug.training import train
    from tests.helpers import tiny

    run = train(tiny(synth_root, tmp_path, iters1=2, iters2=1, lambda_perceptual=0.5))
    rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    g1 = [r for r in rows if r.get("stage") == "1"]
    assert len(g1) == 2 and all(r["losses"]["loss_perceptual"] > 0 for r in g1)
    base = ["train", "--dataset", "synthetic", "--root", str(synth_root)]
    r = runner.invoke(cli, [*base, "--perceptual-layers", "1,3", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "add --lambda-perceptual W" in r.stderr
    r = runner.invoke(cli, [*base, "--lambda-perceptual", "1", "--perceptual-layers", "1,x",
                            "--out", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 2 and "comma-separated block indices" in r.stderr


@pytest.mark.slow
def test_a_killed_perceptual_generator_resumes_to_the_same_weights(synth_root, tmp_path):
    """SIGKILL a ``--lambda-perceptual`` run at a random point after its first checkpoint and
    resume it: every logged loss and the final weights equal an uninterrupted run's."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from reidaug.training import checkpoint as C

    def command(out):
        return [sys.executable, "-m", "reidaug", "--device", "cpu", "train", "--dataset",
                "synthetic", "--root", str(synth_root), "--stage", "1", "--iters1", "12",
                "--width", "4", "--d-width", "4", "--batch-size", "4", "--workers", "0",
                "--lambda-perceptual", "0.5", "--checkpoint-every", "2", "--log-every", "1",
                "--out", str(out)]  # fmt: skip

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command(tmp_path / "whole"), env=env, check=True, capture_output=True)
    p = subprocess.Popen(command(tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while not list((tmp_path / "cut").glob("*/checkpoints/step-*.pt")) and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random().uniform(0, 0.5))
    p.send_signal(signal.SIGKILL)
    p.wait()
    (run,) = (tmp_path / "cut").iterdir()
    assert C.latest(run).name != "step-0000012.pt", "killed too late to test a resume"
    resume = [sys.executable, "-m", "reidaug", "--device", "cpu", "train", "--resume", str(run)]
    subprocess.run(resume, env=env, check=True, capture_output=True)
    (whole,) = (tmp_path / "whole").iterdir()

    def losses(r):
        rows = [json.loads(x) for x in (r / "stats.jsonl").read_text().splitlines()]
        return [(x["global_step"], x["losses"]) for x in rows]

    assert losses(run) == losses(whole) and len(losses(whole)) == 12
    a, b = (C.load(C.latest(r))["nets"] for r in (whole, run))
    for net in a:
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
