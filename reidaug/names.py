"""The names and defaults a user chooses from, in one module that imports nothing heavy, so that
the CLI can build its options (and answer ``--help``) without loading torch. Each registry
(datasets, generators, metrics) is checked against its list here by the tests."""

from __future__ import annotations

from typing import Literal

DATASETS = ("market1501", "synthetic", "folder")
GENERATORS = ("mscgan", "pg2")
METRICS = ("ssim", "mssim", "ssim-fixed", "sharpness", "is", "mis", "fid", "fd-mnv2", "idp")
#: How ``synthesize`` picks target poses from the training pose bank.
STRATEGIES: tuple[str, ...] = ("random", "kmeans", "farthest")
#: What draws ``synthesize``'s images (``config.SynthesisSource``).
SOURCES: tuple[str, ...] = ("generator", "warp")

#: Cached re-ID models by role, each with its own training seed, so that no role reuses
#: another's network: the idp judge scores generators, so it must be a network that no
#: training step used (the identity loss trains against seed 2, the bench's confidence filter
#: judges with seed 0 unless ``--judge-seed`` says otherwise).
MODEL_ROLES: dict[str, int] = {"idp-judge": 1, "identity-loss": 2, "confidence-judge": 0}

#: The re-ID bench: named recipes, arms, and torchreid's choices it exposes.
REID_RECIPES = ("cpu", "pretrained", "gpu")
ARMS = ("baseline", "augmented", "baseline-matched")
#: How the bench labels synthetic images.
LABELS = ("same-id", "lsro", "teacher")
#: The arms a bench trains unless told otherwise.
DEFAULT_ARMS = ("baseline", "augmented")
OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "radam")
SCHEDULERS = ("single_step", "multi_step", "cosine")
TRANSFORMS = ("random_flip", "random_crop", "random_patch", "color_jitter", "random_erase")

#: Pose estimation: backends, torchvision's keypoint R-CNN weights file, MediaPipe's framing.
PoseBackendName = Literal["auto", "mediapipe", "keypointrcnn"]
KEYPOINTRCNN_WEIGHTS = "keypointrcnn_resnet50_fpn_coco-fc266e95.pth"
DEFAULT_MIN_VISIBILITY = 0.7
DEFAULT_SCALE = 4
DEFAULT_FRAMINGS: tuple[tuple[float, float], ...] = ((0.5, 0.5), (1.0, 0.2))
