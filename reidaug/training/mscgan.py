"""MsCGAN's step recipe, on the same engine as PG2.

* Stage 1 trains G1 with ``L1 + lambda_bg * ||(y - G1(x, p)) * p_m||_1`` (eq. 1).
* Stage 2 keeps G1 fixed and trains G2 (a difference map) against discriminators at
  ``num_scales`` scales: ``sum_k lambda_Dk cGAN(G2, D_k) + lambda_L1 L1 + lambda_bg background``
  (eqs. 3 and 4). D_k judges (condition, image) pairs downsampled by ``2^(k-1)``. G uses the
  non-saturating loss (maximise ``log D(x, G(x))``, section 4.2).
* The final image merges the two stages by their sum ``y1 + y2``, as PG2 does with its
  difference map: the paper only says "weighted sum".

Defaults: Adam lr 1e-4, betas (0.5, 0.9) (section 4.2); the paper gives no lambda values, so
``lambda_bg = 1``, ``lambda_L1 = 10`` (PG2's) and ``lambda_D1 = lambda_D2 = 1`` (an even
weighted sum of the discriminators).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reidaug.errors import UserError
from reidaug.losses import background_l1, l1
from reidaug.models import build
from reidaug.training.pg2 import PG2Recipe
from reidaug.training.recipe import Stage, register_recipe


class MsCGANRecipe(PG2Recipe):
    name = "mscgan"
    defaults = {
        "lr": 1e-4,
        "beta1": 0.5,
        "beta2": 0.9,
        "lambda_l1": 10.0,
        "lambda_bg": 1.0,
        "lambda_d1": 1.0,
        "lambda_d2": 1.0,
        "lambda_d3": 1.0,
        "d_width": 128,
    }
    weights = ("lambda_l1", "lambda_bg", "lambda_d1", "lambda_d2")

    def __init__(self, cfg, device, identity=None):
        if cfg.variant != "full":
            raise UserError(
                f"--variant {cfg.variant} is a PG2 ablation; MsCGAN trains G1 then G2 (full)"
            )
        super().__init__(cfg, device, identity)

    def build_nets(self) -> dict[str, nn.Module]:
        return build(
            "mscgan",
            width=self.cfg.width,
            d_width=int(self.opt("d_width")),
            num_scales=self.cfg.num_scales,
            shape=self.cfg.shape,
        )

    @property
    def discriminators(self) -> list[str]:
        return [f"D{k}" for k in range(1, self.cfg.num_scales + 1)]

    def stages(self) -> list[Stage]:
        return [
            Stage("1", self.cfg.iters1, ("G1",)),
            Stage("2", self.cfg.iters2, ("G2", *self.discriminators)),
        ]

    def lam_d(self, k: int) -> float:
        v = getattr(self.cfg, f"lambda_d{k}")
        return self.defaults[f"lambda_d{k}"] if v is None else float(v)

    @staticmethod
    def pyramid(x: torch.Tensor, k: int) -> torch.Tensor:
        return F.avg_pool2d(x, 2 ** (k - 1)) if k > 1 else x

    def step(self, stage: str, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cond, pose, y, mask = (
            batch["condition"],
            batch["target_pose"],
            batch["target"],
            batch["target_mask"],
        )
        lam_bg, lam_l1 = self.opt("lambda_bg"), self.opt("lambda_l1")
        geo = self._geometry(batch)
        if stage == "1":
            out = self._g1(cond, pose, geo)
            loss = l1(out, y) + lam_bg * background_l1(out, y, mask)
            total, logged = self.with_aux_losses(loss, out, y)
            self.update("G1", total)
            return {"loss_G1": loss.item()} | logged
        with torch.no_grad():
            y1 = self._g1(cond, pose, geo)
        fake = y1 + self.run_generator("G2", geo, cond, y1)
        ds = self.discriminators
        with self.autocast():
            ld = sum(
                self.lam_d(k)
                * (
                    self.gan(
                        self.nets[d](self.to_input(self.pyramid(cond, k), self.pyramid(y, k))), True
                    )
                    + self.gan(
                        self.nets[d](
                            self.to_input(self.pyramid(cond, k), self.pyramid(fake.detach(), k))
                        ),
                        False,
                    )
                )
                for k, d in enumerate(ds, start=1)
            )
        self.update(tuple(ds), ld)
        for d in ds:
            self.requires_grad(d, False)
        with self.autocast():
            adv = sum(
                self.lam_d(k)
                * self.gan(
                    self.nets[d](self.to_input(self.pyramid(cond, k), self.pyramid(fake, k))), True
                )
                for k, d in enumerate(ds, start=1)
            )
        lg = adv + lam_l1 * l1(fake, y) + lam_bg * background_l1(fake, y, mask)
        total, logged = self.with_aux_losses(lg, fake, y)
        self.update("G2", total)
        for d in ds:
            self.requires_grad(d, True)
        out = {"loss_D": ld.item(), "loss_G2": lg.item(), "l1": l1(fake.detach(), y).item()}
        return out | logged


register_recipe("mscgan", MsCGANRecipe)
