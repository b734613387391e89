"""Is G2's posegan-SSIM gain the per-image data range? The first N posegan pairs of a run: G1, G2
and the copy baseline, posegan SSIM, SSIM at data range 255, mean range, saturated fraction.

Usage: python ssim-range-diag.py RUN 640 (RUN: g1g2d-ssim-loss-1000's run directory); the
fixed range goes through reidaug's own ssim(..., fixed_range=True).
"""

import sys

import numpy as np

from reidaug.data import build_dataset
from reidaug.data.pairs import protocol_pairs
from reidaug.metrics.ssim import ssim
from reidaug.synthesis.generate import generate_pairs
from reidaug.training.load import load_generator

run, n = sys.argv[1], int(sys.argv[2])
gen = load_generator(run)
ds = build_dataset(gen.config.dataset, gen.config.root)
pairs = protocol_pairs(ds, "posegan", 0)[:n]
acc = {}
for _, arr in generate_pairs(gen.recipe, ds, pairs):
    t = arr["target"]
    for k in ("G1", "G2", "condition"):
        for i in range(len(t)):
            p = arr[k][i]
            rng = float(p.max()) - float(p.min())
            fixed = ssim(p, t[i], "posegan", fixed_range=True)
            acc.setdefault(k, []).append(
                (ssim(p, t[i], "posegan"), fixed, rng, float((p >= 250).mean() + (p <= 5).mean()))
            )
for k, v in acc.items():
    a = np.array(v)
    print(
        k,
        "posegan {:.4f}  fixed-255 {:.4f}  range {:.1f}  saturated-frac {:.4f}".format(
            *tuple(a.mean(0))
        ),
    )
