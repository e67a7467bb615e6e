"""GradCAM (explanations): an Xception classifier whose localization map is the Grad-CAM of the fake class
at the output of block 11 (728 x 19 x 19 at 299 input, the last layer before the final downsampling).

- Weak (setups A/B): timm ``legacy_xception`` with a 2-class head, image cross-entropy. The CAM is computed
  for a whole batch at once with captum's ``LayerGradCam`` (one forward, one backward from the fake logits to
  block 11; ``torch.autograd.grad`` underneath, so parameters' ``.grad`` are never touched).
- Full (setup C): Xception through block 11 plus a small fully-convolutional head (torchvision's FCNHead
  shape: conv3x3 728->182, BN, ReLU, Dropout 0.1, conv1x1 182->2), per-pixel cross-entropy at 19x19.

The weak map, by default, is the one the official evaluation scored (``cam_norm="minmax"``,
``cam_size="input"``, :func:`official_cam_map`): pytorch-grad-cam's ``BaseCAM`` (ReLU, ``scale_cam_image``
with its 1e-7 and a cv2 INTER_LINEAR resize to the input size, then ``aggregate_multi_layers``: ReLU, mean
over the one layer, ``scale_cam_image`` again), then DOLOS' ``predict.py`` dividing by the map's max. So it is
input-sized (299 x 299), min 0 and max exactly 1. ``cam_size="layer"`` keeps the block-11 map (19 x 19),
min-max scaled without the 1e-7 (:func:`minmax`; weakloc's earlier default).

Every Xception stage is registered under its timm name, so the state dict uses timm's keys and a local timm
weights file (``--init``) loads directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from .base import Localizer, LocalizerOutput, MethodDefaults, mask_classes, register_method
from .scores import CLASS_SCORES, MAP_SCORES, check_choice, class_score, map_score
from .xception import CHANNELS, adopt_stages, legacy_xception, run_stages, set_bn_momentum

CAM_LAYER = "block11"
CAM_NORMS = ("minmax", "relu")
CAM_SIZES = ("input", "layer")
GRADCAM_EPS = 1e-7  # pytorch-grad-cam's scale_cam_image: img / (1e-7 + max)


def fcn_head(in_channels: int, classes: int = 2) -> nn.Sequential:
    """torchvision's FCNHead layout (bias-free 3x3 conv before BN), as the official setup-C GradCAM uses."""
    inner = in_channels // 4
    return nn.Sequential(nn.Conv2d(in_channels, inner, 3, padding=1, bias=False), nn.BatchNorm2d(inner),
                         nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Conv2d(inner, classes, 1))


def minmax(cam: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling of [B, h, w] maps to [0, 1] (the ``cam_size="layer"`` map): pytorch-grad-cam's
    ``scale_cam_image`` without its additive 1e-7, which alone would cap the peak well below 1 when a CAM is
    small (DOLOS' final division by the max undoes that in the official map); a constant map becomes 0."""
    cam = cam - cam.amin(dim=(1, 2), keepdim=True)
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return cam / torch.where(peak > 0, peak, torch.ones_like(peak))


def scale_cam_image(cam: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """pytorch-grad-cam's ``scale_cam_image`` on [B, h, w]: per image ``cam - min``, ``/ (1e-7 + max)``, then
    (``size`` given) cv2.resize's default INTER_LINEAR, which for upsampling is bilinear with half-pixel
    centres and clamped edges: ``F.interpolate(bilinear, align_corners=False, antialias=False)``."""
    cam = cam - cam.amin(dim=(1, 2), keepdim=True)
    cam = cam / (GRADCAM_EPS + cam.amax(dim=(1, 2), keepdim=True))
    if size is None or tuple(cam.shape[-2:]) == tuple(size):
        return cam  # cv2.resize to the same size copies
    return F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=False)[:, 0]


def official_cam_map(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The map the official evaluation scored, from a raw [B, h, w] Grad-CAM: BaseCAM's per-layer step
    (ReLU, ``scale_cam_image`` to the input ``size``), its ``aggregate_multi_layers`` (ReLU, mean over the one
    target layer, ``scale_cam_image`` without resize), then DOLOS' ``mask_pred / mask_pred.max()``.
    A map with no positive value is 0 (officially 0/0 = NaN, which no threshold selects either)."""
    per_layer = scale_cam_image(F.relu(cam), size)
    scaled = scale_cam_image(F.relu(per_layer))
    peak = scaled.amax(dim=(1, 2), keepdim=True)
    return scaled / torch.where(peak > 0, peak, torch.ones_like(peak))


def squash_relu(cam: torch.Tensor) -> torch.Tensor:
    """Raw ReLU(CAM) in [0, 1] on an absolute scale: h*w*CAM is the location's "local logit" (for a linear
    tail, the fake logit the image would get if every location looked like this one; exact for GAP + fc),
    and tanh maps it into [0, 1): 0.5 means a local fake-logit contribution of atanh(0.5) = 0.55."""
    h, w = cam.shape[-2:]
    return torch.tanh(F.relu(cam) * (h * w))


@register_method
class GradCAM(Localizer):
    name = "gradcam"
    short_name = "GC"
    defaults = {
        "A": MethodDefaults(lr=1e-3, batch_size=32, epochs=100),
        "B": MethodDefaults(lr=1e-3, batch_size=32, epochs=100),
        "C": MethodDefaults(lr=1e-3, batch_size=16, epochs=50),
    }

    def __init__(self, setup: str = "A", cam_norm: str | None = None, score: str | None = None,
                 bn_momentum: float | None = None, cam_size: str | None = None) -> None:
        """``cam_norm`` (A/B): "minmax" (official, default: per-image, so a 0.5 threshold is relative to the
        image's own peak) or "relu" (absolute scale, see :func:`squash_relu`). ``cam_size`` (A/B): "input"
        (the map bilinearly upsampled to the input size, as pytorch-grad-cam does) or "layer" (block 11's
        19 x 19); unset: "input" for "minmax" (official, :func:`official_cam_map`), "layer" for "relu".
        ``score``: A/B "logit" (default: the sigmoid of the raw fake logit, the official ranking) or "softmax"
        (p(fake)); C "mean" (official, default) or
        "max" of the map. ``bn_momentum``: BatchNorm running-statistics momentum (None = PyTorch's 0.1; see
        set_bn_momentum). Unset options are stored unset, so a card without ``cam_size`` (written before it
        existed) loads with today's default."""
        super().__init__(setup)
        check_choice("cam_norm", cam_norm, () if self.fully_supervised else CAM_NORMS, setup)
        check_choice("cam_size", cam_size, () if self.fully_supervised else CAM_SIZES, setup)
        check_choice("score", score, MAP_SCORES if self.fully_supervised else CLASS_SCORES, setup)
        self.cam_norm, self.cam_size, self.score, self.bn_momentum = cam_norm, cam_size, score, bn_momentum
        network = legacy_xception(num_classes=2)
        self.trunk = adopt_stages(self, network, None, CAM_LAYER)
        if self.fully_supervised:  # truncated after block 11; the map comes from the FCN head
            self.head = fcn_head(CHANNELS[CAM_LAYER])
            self.tail: tuple[str, ...] = ()
        else:
            self.tail = adopt_stages(self, network, "block12", "fc")
        set_bn_momentum(self, bn_momentum)

    @property
    def needs_grad_to_localize(self) -> bool:  # type: ignore[override]
        """Grad-CAM differentiates the fake logit; the FCN head of setup C predicts its map directly."""
        return not self.fully_supervised

    def options(self) -> dict:
        return {"cam_norm": self.cam_norm, "cam_size": self.cam_size, "score": self.score,
                "bn_momentum": self.bn_momentum}

    @property
    def map_at_input_size(self) -> bool:
        """Whether the weak map is upsampled to the input (``cam_size`` resolved; False in setup C)."""
        if self.fully_supervised:
            return False
        return (self.cam_size or ("layer" if self.cam_norm == "relu" else "input")) == "input"

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = run_stages(self, self.trunk, images)
        if self.fully_supervised:
            return {"map_logits": self.head(features)}
        return {"logits": run_stages(self, self.tail, features)}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.fully_supervised:
            logits = outputs["map_logits"].float()
            return F.cross_entropy(logits, mask_classes(batch["mask"], logits.shape[-2:]))
        return F.cross_entropy(outputs["logits"].float(), batch["label"])

    def localize(self, images: torch.Tensor) -> LocalizerOutput:
        if self.fully_supervised:
            fake = self.forward(images)["map_logits"].float().softmax(dim=1)[:, 1]
            return LocalizerOutput(score=map_score(fake, self.score or "mean"), map=fake)
        cam, logits = self.cam(images)
        fake_map = self.cam_map(cam, tuple(images.shape[-2:]))
        return LocalizerOutput(score=class_score(logits, self.score or "logit").detach(), map=fake_map.detach())

    def cam_map(self, cam: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """Raw Grad-CAM [B, h, w] -> the fake map in [0, 1] that ``cam_norm`` and ``cam_size`` ask for."""
        if self.cam_norm == "relu":  # absolute scale at block 11; upsampling (convex weights) keeps [0, 1)
            squashed = squash_relu(cam)
            if not self.map_at_input_size:
                return squashed
            return F.interpolate(squashed[:, None], size=input_size, mode="bilinear", align_corners=False)[:, 0]
        if self.map_at_input_size:
            return official_cam_map(cam, input_size)
        return minmax(F.relu(cam))

    def cam(self, images: torch.Tensor, target: int | torch.Tensor = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw Grad-CAM [B, h, w] (float32, before ReLU) of class ``target`` (an int or one per image) at
        block 11, for the whole batch in one pass, plus the logits [B, 2] of that same pass."""
        if self.fully_supervised:
            raise RuntimeError("setup C GradCAM has no classifier to explain; its map comes from localize()")
        with torch.no_grad():  # gradients stop at block 11: the entry flow needs no graph (memory, speed)
            features = run_stages(self, self.trunk, images)
        seen: dict[str, torch.Tensor] = {}

        def logits_of(x: torch.Tensor) -> torch.Tensor:
            seen["logits"] = run_stages(self, self.tail, x)  # keep them: captum does not return the outputs
            return seen["logits"]

        with torch.enable_grad():
            # block 12's input is block 11's output; captum makes it require grad. Per-channel terms are
            # summed here in float32 (under bf16 autocast captum's own sum would be bf16).
            terms = LayerGradCam(logits_of, getattr(self, self.tail[0])).attribute(
                features, target=target, relu_attributions=False, attr_dim_summation=False,
                attribute_to_layer_input=True)
        return terms.float().sum(dim=1).detach(), seen["logits"].detach()

    def map_score_kind(self) -> str | None:
        return (self.score or "mean") if self.fully_supervised else None

    def _map_side(self, x: torch.Tensor) -> int:
        """Side of the map: the input's when the CAM is upsampled to it (299 at 299), else block 11's (19 at
        299, 4 at 64; a dry run of the entry flow only)."""
        if self.map_at_input_size:
            return int(x.shape[-1])
        return int(run_stages(self, self.trunk, x).shape[-1])
