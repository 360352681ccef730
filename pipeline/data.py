"""COCO-format dataset of rendered images for torchvision detection models."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from pipeline.coco import decode_segmentation
from pipeline.io import read_json

log = logging.getLogger(__name__)


class CocoInstances(torch.utils.data.Dataset):
    """Images + {boxes (xyxy), labels, masks, image_id}; images without objects are valid samples.

    Segmentations may be polygons or RLE (pycocotools' conventions); `iscrowd` regions are left out
    of the targets (they are ignored in evaluation, never trained on). With `targets=False`
    only the image and {image_id} are returned (evaluation: ground truth is scored from the
    JSON, so its masks are never decoded).
    """

    def __init__(self, ann_file: Path, image_root: Path, transforms=None, targets: bool = True,
                 classes: list[str] | None = None) -> None:
        from pipeline.coco import category_labels, check_coco

        self.coco = read_json(ann_file)
        check_coco(self.coco, ann_file)
        self.ann_file = Path(ann_file)
        self.root = Path(image_root)
        self.transforms = transforms
        self.targets = targets
        # labels by category name when the model's classes are given; else the file's ids as they are
        self.label_of = (category_labels(self.coco["categories"], classes, ann_file) if classes is not None
                         else {c["id"]: c["id"] for c in self.coco["categories"]})
        self.images = self.coco["images"]
        self.by_image: dict[int, list[dict[str, Any]]] = {im["id"]: [] for im in self.images}
        for ann in self.coco["annotations"]:
            if ann["image_id"] not in self.by_image:
                raise ValueError(f"{ann_file}: annotation {ann['id']} refers to missing image {ann['image_id']}")
            self.by_image[ann["image_id"]].append(ann)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int):
        info = self.images[idx]
        path = self.root / info["file_name"]
        try:
            img = Image.open(path).convert("RGB")
        except (OSError, FileNotFoundError) as exc:
            raise ValueError(f"{path}: cannot read image ({exc})") from None
        image = tv_tensors.Image(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
        if not self.targets:
            return (self.transforms(image) if self.transforms is not None else image), {"image_id": info["id"]}
        h, w = info["height"], info["width"]
        boxes, labels, masks = [], [], []
        for ann in self.by_image[info["id"]]:
            if ann.get("iscrowd", 0):  # a crowd region is no instance (torchvision's references drop them too)
                continue
            x, y, bw, bh = ann["bbox"]
            if bw < 1 or bh < 1:
                log.warning("%s: annotation %s has a degenerate box %s: skipped", self.ann_file, ann["id"], ann["bbox"])
                continue
            boxes.append([x, y, x + bw, y + bh])
            labels.append(self.label_of[ann["category_id"]])
            try:
                masks.append(decode_segmentation(ann["segmentation"], h, w))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{self.ann_file}: annotation {ann['id']}: {exc}") from None
        target = {
            "boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                              format="XYXY", canvas_size=(h, w)),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": tv_tensors.Mask(torch.from_numpy(np.stack(masks)) if masks
                                     else torch.zeros((0, h, w), dtype=torch.uint8)),
            "image_id": info["id"],
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


class MixedInstances(torch.utils.data.ConcatDataset):
    """Two training sets as one (synthetic frames and a site's real ones), each with its share of the
    samples: `weights()` gives every sample its draw weight for the batch schedule, so a fraction
    `mix_fraction` of the images training sees comes from `mixed`, however many images each holds."""

    def __init__(self, main: CocoInstances, mixed: CocoInstances, mix_fraction: float) -> None:
        if not 0 < mix_fraction < 1:
            raise ValueError(f"mix fraction must be between 0 and 1 (exclusive), got {mix_fraction}")
        super().__init__([main, mixed])
        self.parts, self.mix_fraction = (main, mixed), mix_fraction
        self.images = main.images + mixed.images  # aspect-ratio groups read them

    def weights(self) -> list[float]:
        main, mixed = self.parts
        return [(1 - self.mix_fraction) / len(main)] * len(main) + [self.mix_fraction / len(mixed)] * len(mixed)


class SeededSamples(torch.utils.data.Dataset):
    """`dataset[idx]` under its own seed: keys are (index, seed) pairs from the batch schedule.

    Each augmentation draw depends on the sample's place in the schedule only, not on which
    DataLoader worker loads it or on what was drawn before, so a resumed run (any number of
    workers) draws exactly what the uninterrupted run drew, and DDP processes, whose
    samples have different places, draw independently.
    """

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        idx, seed = key
        with torch.random.fork_rng(devices=[]):  # leaves the caller's CPU RNG as it was
            torch.manual_seed(seed)
            return self.dataset[idx]


class ScaleJitter:
    """Multi-scale training on the images themselves: resize image, boxes and masks to the model's
    own scale (shorter side `min_size`, longer side at most `max_size`) times a factor drawn
    uniformly from [lo, hi]. The model must then skip its own resize while training
    (torchvision's `_skip_resize`, as its references do for large-scale jitter)."""

    def __init__(self, min_size: int, max_size: int, lo: float, hi: float) -> None:
        self.min_size, self.max_size, self.lo, self.hi = min_size, max_size, lo, hi

    def __call__(self, image, target):
        h, w = image.shape[-2:]
        factor = self.lo + (self.hi - self.lo) * float(torch.rand(()))
        scale = min(self.min_size / min(h, w), self.max_size / max(h, w)) * factor
        size = [max(1, round(h * scale)), max(1, round(w * scale))]
        # v2.Resize would resize masks with legacy `nearest` (see resize_masks), so they bypass it; boxes
        # go through it: they scale by the actual new/old size per axis, as the masks and the image do.
        masks = {k: v for k, v in target.items() if isinstance(v, tv_tensors.Mask)}
        image, rest = v2.Resize(size, antialias=True)(image, {k: v for k, v in target.items() if k not in masks})
        rest.update({k: tv_tensors.wrap(resize_masks(v.as_subclass(torch.Tensor), size), like=v)
                     for k, v in masks.items()})
        return image, {k: rest[k] for k in target}


def resize_masks(masks: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Binary (N, H, W) masks at `size` (h, w): an output pixel is set where the object covers at least
    half of its area (the pixel-majority rule the rendered masks themselves follow).

    torchvision resizes masks with legacy `nearest`, which reads input pixel floor(j * in / out), the one
    under the output pixel's top-left corner rather than its centre: masks move half an output pixel right
    and down against image and boxes, and thin tines or tillers come and go with the sampling phase
    (torchvision's references do the same; this departs from them on purpose). The covered share is
    exact: the mask is constant on each input pixel, an output pixel is a rectangle, so the share is
    separable, per axis the overlap of the two pixel intervals (tests/test_mask_resize.py).
    """
    (h, w), (out_h, out_w) = masks.shape[-2:], size
    taps_y, taps_x = _coverage_taps(h, out_h), _coverage_taps(w, out_w)
    out = torch.zeros((len(masks), out_h, out_w), dtype=masks.dtype)
    for mask, dst in zip(masks, out):  # each over its own box: a person is a small part of the image
        rows, cols = torch.nonzero(mask.any(1)), torch.nonzero(mask.any(0))
        if not len(rows):
            continue
        y0, y1 = _output_span(int(rows[0]), int(rows[-1]) + 1, h, out_h)
        x0, x1 = _output_span(int(cols[0]), int(cols[-1]) + 1, w, out_w)
        soft = mask.float()
        for axis, (idx, wt), (a, b) in ((0, taps_y, (y0, y1)), (1, taps_x, (x0, x1))):
            idx, wt = idx[a:b], wt[a:b]
            taps = soft.index_select(axis, idx.reshape(-1)).unflatten(axis, idx.shape)  # (.., span, T, ..)
            soft = (taps * wt.reshape(idx.shape + (1,) * (1 - axis))).sum(axis + 1)
        # a tie (exactly half covered) counts as covered, whatever the rounding of the weights
        dst[y0:y1, x0:x1] = soft >= 0.5 - 1e-6
    return out


def _output_span(lo: int, hi: int, n_in: int, n_out: int) -> tuple[int, int]:
    """The output pixels whose intervals meet input pixels [lo, hi) along one axis."""
    return int(lo * n_out // n_in), min(n_out, -(-hi * n_out // n_in))


def _coverage_taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output pixel o along one axis: the input pixels its interval [o, o + 1) * n_in / n_out meets
    (n_out, T) and the share of the interval each covers (weights sum to 1)."""
    s = n_in / n_out
    o = torch.arange(n_out, dtype=torch.float64)[:, None]
    idx = torch.floor(o * s).long() + torch.arange(math.ceil(s) + 1)[None]
    w = (torch.minimum(idx + 1.0, (o + 1) * s) - torch.maximum(idx.double(), o * s)).clamp(min=0) / s
    return idx.clamp(max=n_in - 1), w.float()


def photometric(channel_permutation: bool = False):
    """SSD-style photometric distortion applied as a whole: brightness, contrast, saturation and hue
    (RandomPhotometricDistort's ranges) in random order; channel permutation only when asked."""
    steps = [v2.ColorJitter(brightness=(0.875, 1.125), contrast=(0.5, 1.5), saturation=(0.5, 1.5),
                            hue=(-0.05, 0.05))]
    if channel_permutation:
        steps.append(v2.RandomChannelPermutation())
    return v2.Compose(steps)


def train_transforms(hflip_prob: float, photometric_prob: float = 0.0, scale: ScaleJitter | None = None,
                     channel_permutation: bool = False):
    """Augmentations that keep boxes and masks consistent with the image (flip and scale move both;
    photometric distortion moves neither). `photometric_prob` is per image: that share of images
    gets the whole distortion, the rest none (torchvision's RandomPhotometricDistort(p) instead
    draws each operation, channel permutation included, with probability p)."""
    steps = [v2.RandomHorizontalFlip(hflip_prob)]
    if photometric_prob > 0:
        steps.append(v2.RandomApply([photometric(channel_permutation)], p=photometric_prob))
    if scale is not None:
        steps.append(scale)
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.SanitizeBoundingBoxes()])


def eval_transforms():
    return v2.Compose([v2.ToDtype(torch.float32, scale=True)])


def collate(batch):
    return tuple(zip(*batch))
