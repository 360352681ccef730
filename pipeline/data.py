"""COCO-format dataset of rendered images for torchvision detection models."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torchvision import tv_tensors
from torchvision.transforms import v2

from pipeline.io import read_json

log = logging.getLogger(__name__)


class CocoInstances(torch.utils.data.Dataset):
    """Images + {boxes (xyxy), labels, masks, image_id}; images without objects are valid samples."""

    def __init__(self, ann_file: Path, image_root: Path, transforms=None) -> None:
        from pipeline.coco import check_coco

        self.coco = read_json(ann_file)
        check_coco(self.coco, ann_file)
        self.ann_file = Path(ann_file)
        self.root = Path(image_root)
        self.transforms = transforms
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
        h, w = info["height"], info["width"]
        boxes, labels, masks = [], [], []
        for ann in self.by_image[info["id"]]:
            x, y, bw, bh = ann["bbox"]
            if bw < 1 or bh < 1:
                log.warning("%s: annotation %s has a degenerate box %s: skipped", self.ann_file, ann["id"], ann["bbox"])
                continue
            boxes.append([x, y, x + bw, y + bh])
            labels.append(ann["category_id"])
            masks.append(mask_utils.decode(ann["segmentation"]))
        target = {
            "boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                              format="XYXY", canvas_size=(h, w)),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": tv_tensors.Mask(torch.from_numpy(np.stack(masks)) if masks
                                     else torch.zeros((0, h, w), dtype=torch.uint8)),
            "image_id": info["id"],
        }
        image = tv_tensors.Image(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def train_transforms(hflip_prob: float, photometric_prob: float = 0.0):
    """Augmentations that keep boxes and masks consistent with the image (flip moves both;
    photometric distortion - brightness, contrast, saturation, hue, channel order - moves neither)."""
    steps = [v2.RandomHorizontalFlip(hflip_prob)]
    if photometric_prob > 0:
        steps.append(v2.RandomPhotometricDistort(p=photometric_prob))
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.SanitizeBoundingBoxes()])


def eval_transforms():
    return v2.Compose([v2.ToDtype(torch.float32, scale=True)])


def collate(batch):
    return tuple(zip(*batch))
