"""The identity loss: a frozen re-ID network pulls a generated image's features to the target's.

Re-ID features inside a generator's objective come from FD-GAN (Ge et al., NeurIPS 2018), which
guides its pose-guided generator with a Siamese re-ID network, and DG-Net (Zheng et al., CVPR
2019), which keeps a frozen re-ID "teacher" over its generated images. What reidaug takes is the
frozen teacher: a ``cpu``-recipe re-ID model trained on the real training set embeds the
generated image and the real target, and the loss is the mean cosine distance of the two
features (the target's feature is a constant). It is not FD-GAN's verification classifier nor
DG-Net's soft-label KL.

The network must not be the identity judge of ``evaluate --metrics idp``: a judge of the same
weights (or of the same recipe and seed) rewards images made to please it. By default the
identity network is trained with seed :data:`ID_SEED` and the judge with another
(``reidaug.names.MODEL_ROLES``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reidaug.errors import UserError
from reidaug.names import MODEL_ROLES
from reidaug.reidnet import model as reid_model
from reidaug.reidnet.cache import cached_model
from reidaug.reidnet.recipe import ReidRecipe

#: Seed of the cached identity network (the idp judge uses seed 1).
ID_SEED = MODEL_ROLES["identity-loss"]
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchreid's normalisation


class IdentityLoss(nn.Module):
    """``forward(fake, target)``: mean ``1 - cos(f(fake), f(target))`` under a frozen re-ID net.

    Images are generator outputs in ``[-1, 1]``; they are resized to the network's input size
    when it differs and normalised as torchreid's test transform does. The network stays in
    eval mode (frozen batch-norm statistics) and its weights never receive gradients.
    """

    def __init__(self, net: nn.Module, height: int, width: int) -> None:
        super().__init__()
        self.net, self.size = net.eval(), (height, width)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> IdentityLoss:
        """The network stays in eval mode whatever the caller asks."""
        super().train(mode)
        self.net.eval()
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() + 1) / 2
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)

    def forward(self, fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t = self.embed(target)
        return (1 - F.cosine_similarity(self.embed(fake), t, dim=1)).mean()


def identity_checkpoint(
    dataset: str,
    root: str | None,
    path: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The identity network's checkpoint: ``path`` when given, else the ``cpu``-recipe model
    of seed :data:`ID_SEED` from the user cache (trained once, resumably, on first use)."""
    if path is not None:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise UserError(f"identity network checkpoint not found: {path}")
        return path
    recipe = ReidRecipe.named("cpu")
    path = cached_model(
        recipe, dataset, root, seed=ID_SEED, device=device, progress=progress, log=log
    )
    return path.resolve()


def load_identity(
    path: str | os.PathLike, dataset: str, num_ids: int, device: torch.device | str = "cpu"
) -> IdentityLoss:
    """The frozen identity loss of a re-ID checkpoint trained on ``dataset``'s ``num_ids`` ids."""
    net, meta = reid_model.load_for(path, dataset, num_ids, device, "identity network")
    return IdentityLoss(net, meta["height"], meta["width"]).to(device)
