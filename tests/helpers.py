"""Helpers shared by the test files: a tiny training config and a held-out G1 score."""

import numpy as np

from reidaug.config import TrainConfig
from reidaug.metrics import mask_ssim, ssim
from reidaug.synthesis import generate_pairs
from reidaug.training import load_generator


def tiny(root, out, **kw):
    base = dict(
        dataset="synthetic",
        root=str(root),
        width=4,
        d_width=4,
        iters1=4,
        iters2=4,
        batch_size=4,
        workers=0,
        log_every=1,
        sample_every=3,
        checkpoint_every=2,
        out=str(out),
        lr=1e-3,
    )
    base.update(kw)
    return TrainConfig(**base)


def evaluate(run, ds, n=120, final=False):
    """Mask-SSIM and SSIM of G1 (or, with ``final``, the model's final image) and of the copy
    baseline."""
    rec = load_generator(run).recipe
    ann = ds.annotations("gallery")
    scores = {"G1": [], "copy": [], "G1_ssim": [], "copy_ssim": []}
    for pairs, arr in generate_pairs(rec, ds, ds.test_pairs()[:n]):
        out = arr["G2"] if final else arr["G1"]
        for i, (_, b) in enumerate(pairs):
            scores["G1"].append(mask_ssim(out[i], arr["target"][i], ann[b]))
            scores["copy"].append(mask_ssim(arr["condition"][i], arr["target"][i], ann[b]))
            scores["G1_ssim"].append(ssim(out[i], arr["target"][i]))
            scores["copy_ssim"].append(ssim(arr["condition"][i], arr["target"][i]))
    return {k: float(np.mean(v)) for k, v in scores.items()}
