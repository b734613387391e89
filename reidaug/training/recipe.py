"""A model = its networks + a step recipe. The training loop knows nothing model-specific."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from reidaug.config import TrainConfig
from reidaug.data.parts import PartWarp, part_warp, paste_warp
from reidaug.data.pose import render_heatmaps
from reidaug.errors import UserError
from reidaug.losses import PerceptualL1, nearest_neighbour_l1, ssim_loss
from reidaug.training import distributed as dist

#: The loss weights that only some models' objectives have (``None`` in a config: not given).
LOSS_WEIGHTS = ("lambda_l1", "lambda_adv", "lambda_bg", "lambda_d1", "lambda_d2")


class Geometry(NamedTuple):
    """What a deformable-skip generator takes besides its plain input: the part geometry of the
    (source, target) poses, the part-warped source image and the source encoder's input (the
    source image and its pose heatmaps)."""

    warp: PartWarp
    warped: torch.Tensor
    source: torch.Tensor


@dataclass(frozen=True)
class Stage:
    """One training stage: a name, its length and the networks it updates."""

    name: str
    iters: int
    trains: tuple[str, ...]


class Recipe:
    """Base class of step recipes. Subclasses build ``self.nets`` and define ``step``.

    Networks are managed by name (``G1``, ``G2``, ``D``, ``D1`` ...) and looped over for
    optimisers, saving, loading and train/eval mode.
    """

    name = "base"
    defaults: dict[str, float] = {}
    #: the model-specific loss weights (of :data:`LOSS_WEIGHTS`) this model's objective has
    weights: tuple[str, ...] = ()

    def __init__(
        self, cfg: TrainConfig, device: torch.device, identity: nn.Module | None = None
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.identity = identity.to(device) if identity is not None else None
        self.perceptual = None
        if cfg.lambda_perceptual:
            self.perceptual = PerceptualL1(cfg.perceptual_layers).to(device)
        self.amp = device.type == "cuda"
        self.nets: dict[str, nn.Module] = self.build_nets()
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in self.nets.values():
            net.to(device=device, memory_format=fmt)
            dist.broadcast_parameters(net)
        lr, b1, b2 = self.opt("lr"), self.opt("beta1"), self.opt("beta2")
        self.opts = {
            n: torch.optim.Adam(m.parameters(), lr=lr, betas=(b1, b2)) for n, m in self.nets.items()
        }
        #: exponential moving averages of the generators' weights and batch-norm statistics
        #: (``cfg.ema``; none when 0): what evaluation and synthesis use once a step made them
        self.averaged: dict[str, AveragedModel] = {
            n: AveragedModel(m, multi_avg_fn=_ema_update(cfg.ema), use_buffers=True)
            for n, m in self.nets.items()
            if cfg.ema and n.startswith("G")
        }

    # ------------------------------------------------------------------ to override
    def build_nets(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    @classmethod
    def weights_of(cls, cfg: TrainConfig) -> tuple[str, ...]:
        """The loss weights a run of ``cfg`` uses (``weights``, or fewer for some variants)."""
        return cls.weights

    def stages(self) -> list[Stage]:
        raise NotImplementedError

    def step(self, stage: str, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step of ``stage``; returns the losses as floats."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(
        self,
        condition: torch.Tensor,
        pose: torch.Tensor,
        source_keypoints: torch.Tensor | None = None,
        target_keypoints: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """All intermediate outputs by name (``G1``, ``G2``); the last one is the final image.

        ``source_keypoints`` and ``target_keypoints`` (``(B, 18, 2)`` ``(y, x)``, -1 where
        missing) are needed by a deformable-skip generator (``skip="deform"``) only."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared helpers
    def opt(self, key: str) -> float:
        """A config value, or this model's paper default when the config leaves it ``None``."""
        v = getattr(self.cfg, key)
        return self.defaults[key] if v is None else v

    def with_aux_losses(
        self, loss: torch.Tensor, fake: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``loss`` (a generator stage's own objective) plus the terms every generator stage
        may add: ``lambda_id`` times the identity loss, ``lambda_ssim`` times ``1 - SSIM``,
        ``lambda_nn`` times the nearest-neighbour L1 and ``lambda_perceptual`` times the
        perceptual L1, each of ``fake`` against ``target``. Returns the total and each weighted
        term by its logged name (``loss_id``, ``loss_ssim``, ``loss_nn``, ``loss_perceptual``;
        none when the weights are 0)."""
        terms: dict[str, torch.Tensor] = {}
        if self.cfg.lambda_id:
            if self.identity is None:
                raise UserError(
                    "--lambda-id needs an identity network: pass --id-checkpoint FILE (a re-ID "
                    "checkpoint of reidaug bench-reid) or let reidaug train build one"
                )
            terms["loss_id"] = self.cfg.lambda_id * self.identity(fake, target)
        if self.cfg.lambda_ssim:
            terms["loss_ssim"] = self.cfg.lambda_ssim * ssim_loss(fake, target)
        if self.cfg.lambda_nn:
            nn_l1 = nearest_neighbour_l1(fake, target, self.cfg.nn_kernel)
            terms["loss_nn"] = self.cfg.lambda_nn * nn_l1
        if self.cfg.lambda_perceptual:
            if self.perceptual is None:  # a resume that turned the loss on
                self.perceptual = PerceptualL1(self.cfg.perceptual_layers).to(self.device)
            terms["loss_perceptual"] = self.cfg.lambda_perceptual * self.perceptual(fake, target)
        for term in terms.values():
            loss = loss + term
        return loss, {k: v.item() for k, v in terms.items()}

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def requires_grad(self, name: str, flag: bool) -> None:
        for p in self.nets[name].parameters():
            p.requires_grad_(flag)

    def update(self, names: tuple[str, ...] | str, loss: torch.Tensor) -> None:
        """Backward ``loss`` and step the optimisers of ``names`` (gradients averaged across
        ranks)."""
        names = (names,) if isinstance(names, str) else names
        for n in names:
            self.opts[n].zero_grad(set_to_none=True)
        loss.backward()
        for n in names:
            dist.average_gradients(self.nets[n])
            self.opts[n].step()
            if n in self.averaged:
                self.averaged[n].update_parameters(self.nets[n])

    def set_lr(self, lr: float) -> None:
        """Set every optimiser's learning rate (the current stage's schedule)."""
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def get_lr(self, names: tuple[str, ...]) -> float:
        """The learning rate the optimiser of ``names[0]`` used last."""
        return float(self.opts[names[0]].param_groups[0]["lr"])

    def final(
        self,
        condition: torch.Tensor,
        pose: torch.Tensor,
        source_keypoints: torch.Tensor | None = None,
        target_keypoints: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The model's final image for a batch, in [-1, 1] (clamped)."""
        outs = self.generate(condition, pose, source_keypoints, target_keypoints)
        return next(reversed(outs.values())).clamp(-1, 1)

    def geometry(
        self,
        condition: torch.Tensor,
        source_keypoints: torch.Tensor | None,
        target_keypoints: torch.Tensor | None,
    ) -> Geometry | None:
        """The deformable skips' inputs for a batch (``None`` for other generators), computed
        on the fly: batched, it costs a few milliseconds a batch of 16 on a CPU."""
        if self.cfg.skip != "deform":
            return None
        if source_keypoints is None or target_keypoints is None:
            raise ValueError(
                "a deformable-skip generator (skip=deform) needs the source and target keypoints"
            )
        h, w = condition.shape[-2:]
        src = source_keypoints.detach().cpu()
        warp = part_warp(src, target_keypoints.detach().cpu(), h, w)
        warp = PartWarp(warp.theta.to(condition.device), warp.masks.to(condition.device), {})
        heatmaps = render_heatmaps(src.round().long().numpy(), h, w, self.cfg.heatmap)
        source = torch.cat([condition, torch.from_numpy(heatmaps).to(condition.device)], 1)
        return Geometry(warp, paste_warp(condition, warp), source)

    def run_generator(
        self, name: str, geometry: Geometry | None, *inputs: torch.Tensor
    ) -> torch.Tensor:
        """Generator ``name`` on its input (``inputs`` concatenated; with ``geometry`` also the
        part-warped source image, the source input and the part warp), in float32."""
        net = self.nets[name]
        with self.autocast():
            if geometry is None:
                return net(self.to_input(*inputs)).float()
            x = self.to_input(*inputs, geometry.warped)
            return net(x, self.to_input(geometry.source), geometry.warp).float()

    def train_mode(self, stage: Stage) -> None:
        """Train mode for the networks ``stage`` updates, eval mode for the rest; a generator
        with averaged weights that this stage leaves fixed (G1 in PG2's stage 2) takes them, so
        the later stage trains on the network that evaluation will use."""
        for n, m in self.nets.items():
            m.train(n in stage.trains)
            self.requires_grad(n, n in stage.trains)
        self.use_averaged([n for n in self.nets if n not in stage.trains])

    def eval_mode(self) -> None:
        for m in self.nets.values():
            m.eval()

    def _has_average(self, name: str) -> bool:
        return name in self.averaged and int(self.averaged[name].n_averaged) > 0

    def use_averaged(self, names: list[str] | None = None) -> list[str]:
        """Replace the weights of ``names`` (default: every generator) by their moving average,
        where a step made one; returns the networks replaced (for inference: training goes on
        from the raw weights)."""
        done = [n for n in (self.averaged if names is None else names) if self._has_average(n)]
        for n in done:
            self.nets[n].load_state_dict(self.averaged[n].module.state_dict())
        return done

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode and the averaged weights (if any) inside the block, each network's own mode
        and weights after it: a sample grid drawn during training shows what evaluation will
        score, and neither uses nor updates batch-norm statistics of its batch."""
        was = {n: m.training for n, m in self.nets.items()}
        raw = {
            n: {k: v.clone() for k, v in self.nets[n].state_dict().items()}
            for n in self.averaged
            if self._has_average(n)
        }
        self.eval_mode()
        self.use_averaged()
        try:
            yield
        finally:
            for n, m in self.nets.items():
                m.train(was[n])
                if n in raw:
                    m.load_state_dict(raw[n])

    def state_dict(self) -> dict:
        return {
            "nets": {n: m.state_dict() for n, m in self.nets.items()},
            "opts": {n: o.state_dict() for n, o in self.opts.items()},
            "averaged": {n: a.state_dict() for n, a in self.averaged.items()},
        }

    def load_state_dict(self, state: dict, optimizers: bool = True) -> None:
        missing = sorted(set(self.nets) - set(state["nets"]))
        if missing:
            raise UserError(
                f"checkpoint has no weights for {', '.join(missing)} (model {self.name})"
            )
        for n, m in self.nets.items():
            try:
                m.load_state_dict(state["nets"][n])
            except RuntimeError as e:
                first = str(e).strip().splitlines()[0]
                raise UserError(
                    f"checkpoint weights for {n} do not fit this model ({first})"
                ) from None
        for n, a in self.averaged.items():
            if n in state.get("averaged", {}):
                a.load_state_dict(state["averaged"][n])
        if optimizers:
            for n, o in self.opts.items():
                if n in state.get("opts", {}):
                    o.load_state_dict(state["opts"][n])

    def to_input(self, *ts: torch.Tensor) -> torch.Tensor:
        x = torch.cat(ts, 1)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x


def _ema_update(decay: float) -> Callable[..., None]:
    """The moving average's update with TensorFlow's warm-up (``ExponentialMovingAverage`` with
    ``num_updates``): after ``n`` updates the decay is ``min(decay, (1 + n) / (10 + n))``, so a
    short stage's average (a G2 that starts as a zero residual) is not held back by the
    initial weights."""

    def update(averaged: list, current: list, n: torch.Tensor) -> None:
        k = int(n)
        get_ema_multi_avg_fn(min(decay, (1 + k) / (10 + k)))(averaged, current, n)

    return update


#: The training step recipe of each generator model, by name (``pg2``, ``mscgan``); the re-ID
#: recipes are named presets of another kind (:data:`reidaug.reidnet.recipe.RECIPES`).
STEP_RECIPES: dict[str, Callable[..., Recipe]] = {}


def register_recipe(name: str, cls: Callable[..., Recipe]) -> None:
    STEP_RECIPES[name] = cls


def check_weights(cfg: TrainConfig) -> None:
    """Refuse a loss weight that ``cfg.model``'s objective does not have (it would be ignored)."""
    weights_of = getattr(STEP_RECIPES.get(cfg.model), "weights_of", None)
    if weights_of is None:  # an unknown model is refused by build_recipe, with the valid ones
        return
    weights = weights_of(cfg)
    for key in LOSS_WEIGHTS:
        if getattr(cfg, key) is not None and key not in weights:
            flags = ", ".join("--" + w.replace("_", "-") for w in weights)
            has = f"whose loss weights are {flags}" if flags else "which has no loss weight to set"
            raise UserError(
                f"--{key.replace('_', '-')} does not apply to {cfg.model} (variant "
                f"{cfg.variant}), {has}"
            )


def build_recipe(
    cfg: TrainConfig, device: torch.device, identity: nn.Module | None = None
) -> Recipe:
    """Instantiate the recipe of ``cfg.model``; an unknown name lists the valid ones.

    ``identity`` is the frozen identity-loss module (``identity(fake, target)`` -> scalar) that
    a run with ``lambda_id > 0`` trains against; generation never needs it.
    """
    if cfg.model not in STEP_RECIPES:
        raise UserError(f'Unknown model "{cfg.model}"; expected one of: {", ".join(STEP_RECIPES)}')
    return STEP_RECIPES[cfg.model](cfg, device, identity)
