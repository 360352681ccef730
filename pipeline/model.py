"""Mask R-CNN with 3-class heads on top of (optionally) COCO-pretrained weights."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torchvision.models import resnet50
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d

log = logging.getLogger(__name__)
TRANSFER_MODES = ("feature_extraction", "fine_tune", "full")


def build_model(num_classes: int, weights_info: dict[str, Any], trainable_backbone_layers: int = 3,
                min_size: int = 800, max_size: int = 1333, load_weights: bool = True,
                transfer: str = "fine_tune", replace_heads: bool = True,
                classes: list[str] | None = None, recipe: dict[str, Any] | None = None) -> MaskRCNN:
    """Mask R-CNN ResNet50-FPN: load COCO (or given) weights, then swap box/mask predictors.

    Built the way torchvision builds it: with pretrained weights FrozenBatchNorm and
    the last `trainable_backbone_layers` stages trainable, so COCO state dicts load
    strictly; from scratch (kind none) plain BatchNorm, as torchvision does, because
    frozen identity statistics let a random ResNet's activations explode.
    `transfer`: feature_extraction (only roi_heads learn), fine_tune (last
    `trainable_backbone_layers` ResNet stages + FPN, RPN, heads) or full.
    `load_weights=False` builds the same architecture without reading the file
    (used when a fine-tuned checkpoint is loaded next). `replace_heads=False` keeps the
    91-class COCO heads: the general model, evaluated zero-shot.
    Weights may also be a checkpoint of this pipeline (e.g. another site's model_final.pth):
    when its class list equals `classes`, its trained heads are kept; otherwise new heads.
    `recipe`: the model section's anchor_sizes, anchor_aspect_ratios and mask_roi_size (see `apply_recipe`);
    it is applied before any weights load, so a checkpoint trained with it loads strictly.
    """
    arch = weights_info.get("arch", "maskrcnn_resnet50_fpn")
    pretrained = weights_info["kind"] in ("coco", "path")
    if transfer not in TRANSFER_MODES:
        raise ValueError(f"model.transfer must be one of {TRANSFER_MODES}, got {transfer!r}")
    if not pretrained or transfer == "full":
        trainable_backbone_layers = 5
    if arch != "maskrcnn_resnet50_fpn":
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

        # v2 uses plain BatchNorm throughout (as torchvision ships it); torchvision only honours
        # trainable_backbone_layers when it loads the weights itself, so freeze stages here.
        model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91,
                                         min_size=min_size, max_size=max_size)
        keep = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_backbone_layers]
        if trainable_backbone_layers == 5:
            keep.append("bn1")
        for name, p in model.backbone.body.named_parameters():
            p.requires_grad_(any(name.startswith(k) for k in keep))
    else:
        norm = FrozenBatchNorm2d if pretrained else torch.nn.BatchNorm2d
        backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=norm), trainable_backbone_layers)
        model = MaskRCNN(backbone, num_classes=91, min_size=min_size, max_size=max_size)
    apply_recipe(model, **recipe_of(recipe or {}))
    base_classes = None
    weights_anchors = anchors_of({})  # COCO's: torchvision's defaults
    if pretrained and load_weights:
        path = Path(weights_info["path"])
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state:
            # a checkpoint of this pipeline (a base site's model_final.pth): its heads have its own classes,
            # its RPN the anchors of its own config
            base_classes = state.get("classes")
            weights_anchors = anchors_of(_config_model(state))
            state = state["model"]
            if base_classes is not None:
                set_heads(model, len(base_classes) + 1)
        try:
            load_state(model, state)
        except RuntimeError as exc:
            kind = "hangar-synth checkpoint" if base_classes is not None else "COCO state dict"
            raise ValueError(f"{path}: not a {arch} {kind} ({str(exc).splitlines()[0]})") from None
    if not replace_heads:
        return model
    if base_classes is not None and classes is not None and list(base_classes) == list(classes):
        pass  # same classes as the base model: its trained heads are the best start
    else:
        set_heads(model, num_classes)
    if transfer == "feature_extraction" and pretrained:
        # anchors other than the weights were trained with leave the RPN's head (new predictors, or ones
        # regressing from other anchors) to learn too; the backbone and FPN stay frozen
        anchors_changed = anchors_of(recipe or {}) != weights_anchors
        if anchors_changed and load_weights:
            log.warning("the anchors differ from those the weights were trained with (%s): feature extraction "
                        "trains the RPN head too", weights_anchors)
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("roi_heads.") or (anchors_changed and name.startswith("rpn.head.")))
    freeze_batchnorm(model)
    return model


RECIPE_KEYS = ("anchor_sizes", "anchor_aspect_ratios", "mask_roi_size")
RPN_PREDICTOR = ("rpn.head.cls_logits.weight", "rpn.head.cls_logits.bias",
                 "rpn.head.bbox_pred.weight", "rpn.head.bbox_pred.bias")


def _config_model(ckpt: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        return json.loads(ckpt["config"])["model"]
    except (KeyError, TypeError, ValueError):
        return {}


def anchors_of(model_cfg: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(sizes, ratios) a model config's RPN uses, torchvision's defaults filled in: to compare two configs."""
    sizes = model_cfg.get("anchor_sizes") or (32, 64, 128, 256, 512)
    ratios = model_cfg.get("anchor_aspect_ratios") or (0.5, 1.0, 2.0)
    return tuple(float(v) for v in sizes), tuple(float(v) for v in ratios)


def recipe_of(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The recipe keys of a model config section (absent in older checkpoints: torchvision's defaults)."""
    return {k: model_cfg.get(k) for k in RECIPE_KEYS}


def apply_recipe(model: MaskRCNN, anchor_sizes: list[float] | None = None,
                 anchor_aspect_ratios: list[float] | None = None, mask_roi_size: int | None = None) -> None:
    """Configure torchvision's own Mask R-CNN parts for small objects, the architecture unchanged:

    - `anchor_sizes`: one anchor size (px, on the resized input) per FPN level P2-P6 (torchvision: 32-512);
    - `anchor_aspect_ratios`: height/width ratios at every level (torchvision: 0.5, 1, 2). With another
      number of ratios the RPN head's two 1x1 predictors get that many outputs per location and start
      from torchvision's init (normal std 0.01, bias 0); the RPN's 3x3 conv keeps its weights;
    - `mask_roi_size`: the mask branch's RoIAlign output (torchvision: 14, so 28x28 masks). The mask head
      is fully convolutional: 28 gives 56x56 masks with the same weights."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    if anchor_sizes is not None or anchor_aspect_ratios is not None:
        sizes = tuple((float(s),) for s in (anchor_sizes or (32, 64, 128, 256, 512)))
        ratios = tuple(float(r) for r in (anchor_aspect_ratios or (0.5, 1.0, 2.0)))
        if len(sizes) != 5:
            raise ValueError(f"model.anchor_sizes: one size per FPN level P2-P6 (5), got {len(sizes)}")
        model.rpn.anchor_generator = AnchorGenerator(sizes, (ratios,) * len(sizes))
        head = model.rpn.head
        if head.cls_logits.out_channels != len(ratios):
            channels = head.cls_logits.in_channels
            head.cls_logits = torch.nn.Conv2d(channels, len(ratios), 1)
            head.bbox_pred = torch.nn.Conv2d(channels, 4 * len(ratios), 1)
            for layer in (head.cls_logits, head.bbox_pred):
                torch.nn.init.normal_(layer.weight, std=0.01)
                torch.nn.init.constant_(layer.bias, 0)
    if mask_roi_size is not None and mask_roi_size != model.roi_heads.mask_roi_pool.output_size[0]:
        model.roi_heads.mask_roi_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], int(mask_roi_size), 2)


def load_state(model: MaskRCNN, state: dict[str, Any]) -> None:
    """load_state_dict, strict except for the RPN predictors where the state's are of another shape (COCO's 3
    anchors per location under other ratios, or a base checkpoint trained with another number of ratios):
    those keep torchvision's init, with a warning."""
    own = model.state_dict()
    skipped = [k for k in RPN_PREDICTOR if k in state and k in own and state[k].shape != own[k].shape]
    if not skipped:
        model.load_state_dict(state)
        return
    theirs = state[RPN_PREDICTOR[0]].shape[0]
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    if set(missing) != set(skipped) or unexpected:
        raise RuntimeError(f"missing keys {missing}, unexpected keys {unexpected}")
    log.warning("RPN predictors start from torchvision's init: %d anchors per location (the weights have %d)",
                own[RPN_PREDICTOR[0]].shape[0], theirs)


def set_heads(model: MaskRCNN, num_classes: int) -> None:
    """New box and mask predictors for `num_classes` (background included)."""
    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    in_mask = model.roi_heads.mask_predictor.conv5_mask.in_channels
    model.roi_heads.mask_predictor = MaskRCNNPredictor(in_mask, 256, num_classes)


def freeze_batchnorm(module: torch.nn.Module) -> int:
    """Replace every BatchNorm2d whose parameters do not learn by a FrozenBatchNorm2d with its statistics.

    `requires_grad=False` alone leaves `model.train()` updating the running mean/var of those
    layers (v2 uses plain BatchNorm2d throughout: backbone, FPN, RPN and box/mask heads), so a
    "frozen" part would still drift with every batch. Returns how many layers were replaced.
    """
    count = 0
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm2d) and not any(p.requires_grad for p in child.parameters()):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                if child.affine:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                if child.track_running_stats:
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
            count += 1
        else:
            count += freeze_batchnorm(child)
    return count


def count_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_from_checkpoint(ckpt: dict[str, Any], size_px: tuple[int, int] | None = None) -> MaskRCNN:
    """Rebuild the trained architecture of a loaded checkpoint (no pretrained file read) with its weights.

    The architecture (arch, transfer mode, trainable stages: which BatchNorms are frozen) comes
    from the checkpoint's own config; `size_px` = (min, max) input size overrides the trained one.
    """
    import json

    cfg = json.loads(ckpt["config"])["model"]
    min_size, max_size = size_px or (cfg["min_size_px"], cfg["max_size_px"])
    model = build_model(len(ckpt["classes"]) + 1, json.loads(ckpt["weights"]), cfg["trainable_backbone_layers"],
                        min_size, max_size, load_weights=False, transfer=cfg.get("transfer", "fine_tune"),
                        recipe=cfg)
    model.load_state_dict(ckpt["model"])
    return model


def set_score_threshold(model: MaskRCNN, threshold: float) -> None:
    """Make the model itself keep detections down to `threshold`: its own cut (box_score_thresh,
    0.05 by default) drops lower scores before any caller could filter them."""
    model.roi_heads.score_thresh = threshold


def save_checkpoint(path: Path, **state: Any) -> None:
    """torch.save atomically (temp file then rename)."""
    from pipeline.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, classes: list[str] | None = None) -> dict[str, Any]:
    """Load a training checkpoint with weights_only=True; check the class list matches."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: checkpoint not found") from None
    except Exception as exc:
        raise ValueError(f"{path}: not a hangar-synth checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "classes" not in ckpt:
        raise ValueError(f"{path}: not a hangar-synth checkpoint (expected keys model, classes, ...)")
    if classes is not None and list(ckpt["classes"]) != list(classes):
        raise ValueError(f"{path}: trained for classes {ckpt['classes']}, config has {classes}")
    return ckpt
