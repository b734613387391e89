"""PG2's step recipe: stage 1 trains G1 (L1 or pose-mask L1), stage 2 trains G2 and D with G1 fixed.

Variants (the paper's ablations): ``g1-l1``, ``g1-posemask``, ``g1-d`` (G1 trained adversarially
as a one-stage model) and ``full`` (G1 + G2 + D).
"""

from __future__ import annotations

import torch
from torch import nn

from reidaug.losses import GANLoss, d_loss, l1, pg2_g2_loss, pose_mask_l1
from reidaug.models import build
from reidaug.training.recipe import Geometry, Recipe, Stage, register_recipe


class PG2Recipe(Recipe):
    name = "pg2"
    #: Paper defaults: Adam lr 2e-5, betas (0.5, 0.999); lambda = 10 for the G2 pose-mask L1
    #: and 1 for the adversarial term (eq. 4).
    defaults = {
        "lr": 2e-5,
        "beta1": 0.5,
        "beta2": 0.999,
        "lambda_l1": 10.0,
        "lambda_adv": 1.0,
        "d_width": 64,
    }
    weights = ("lambda_l1", "lambda_adv")

    def __init__(self, cfg, device, identity=None):
        self.gan = GANLoss("bce")
        super().__init__(cfg, device, identity)

    def build_nets(self) -> dict[str, nn.Module]:
        return build(
            "pg2",
            width=self.cfg.width,
            d_width=int(self.opt("d_width")),
            variant=self.cfg.variant,
            shape=self.cfg.shape,
        )

    @classmethod
    def weights_of(cls, cfg) -> tuple[str, ...]:
        return () if cfg.variant in ("g1-l1", "g1-posemask") else cls.weights

    def stages(self) -> list[Stage]:
        v = self.cfg.variant
        if v in ("g1-l1", "g1-posemask"):
            return [Stage("1", self.cfg.iters1, ("G1",))]
        if v == "g1-d":
            return [Stage("1", self.cfg.iters1, ("G1", "D"))]
        return [Stage("1", self.cfg.iters1, ("G1",)), Stage("2", self.cfg.iters2, ("G2", "D"))]

    def _g1(self, cond: torch.Tensor, pose: torch.Tensor, geo: Geometry | None) -> torch.Tensor:
        return self.run_generator("G1", geo, cond, pose)

    def _geometry(self, batch: dict[str, torch.Tensor]) -> Geometry | None:
        return self.geometry(
            batch["condition"], batch.get("source_keypoints"), batch.get("target_keypoints")
        )

    def _adversarial(self, gen: str, cond, fake, target, mask) -> dict[str, float]:
        """D step on the detached fake, then the generator step against a frozen D; with
        ``lambda_adv`` 0 there is no D and the generator step is the pose-mask L1 alone."""
        lam, adv = self.opt("lambda_l1"), self.opt("lambda_adv")
        out = {}
        if adv:
            D = self.nets["D"]
            with self.autocast():
                ld = d_loss(
                    self.gan, D(self.to_input(cond, target)), D(self.to_input(cond, fake.detach()))
                )
            self.update("D", ld)
            self.requires_grad("D", False)
            with self.autocast():
                lg = pg2_g2_loss(
                    self.gan, D(self.to_input(cond, fake)), fake, target, mask, lam, adv
                )
            out["loss_D"] = ld.item()
        else:
            lg = lam * pose_mask_l1(fake, target, mask)
        total, logged = self.with_aux_losses(lg, fake, target)
        self.update(gen, total)
        self.requires_grad("D", True)
        return out | {f"loss_{gen}": lg.item(), "l1": l1(fake.detach(), target).item()} | logged

    def step(self, stage: str, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cond, pose, target, mask = (
            batch["condition"],
            batch["target_pose"],
            batch["target"],
            batch["target_mask"],
        )
        geo = self._geometry(batch)
        if stage == "1":
            out = self._g1(cond, pose, geo)
            if self.cfg.variant == "g1-d":
                return self._adversarial("G1", cond, out, target, mask)
            loss = (
                l1(out, target) if self.cfg.variant == "g1-l1" else pose_mask_l1(out, target, mask)
            )
            total, logged = self.with_aux_losses(loss, out, target)
            self.update("G1", total)
            return {"loss_G1": loss.item()} | logged
        with torch.no_grad():
            g1 = self._g1(cond, pose, geo)
        fake = g1 + self.run_generator("G2", geo, cond, g1)
        return self._adversarial("G2", cond, fake, target, mask)

    @torch.no_grad()
    def generate(
        self,
        condition: torch.Tensor,
        pose: torch.Tensor,
        source_keypoints: torch.Tensor | None = None,
        target_keypoints: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        geo = self.geometry(condition, source_keypoints, target_keypoints)
        g1 = self._g1(condition, pose, geo)
        out = {"G1": g1}
        if "G2" in self.nets:
            out["G2"] = g1 + self.run_generator("G2", geo, condition, g1)
        return out


register_recipe("pg2", PG2Recipe)
