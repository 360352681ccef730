"""Optional TensorBoard logging of a training run: losses, lr, validation AP, sample predictions.

The CSV files stay the record; TensorBoard is the live view (`tensorboard --logdir results/<name>`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class Board:
    """A SummaryWriter under `log_dir`, or nothing at all when disabled."""

    def __init__(self, log_dir: Path | None, start_iteration: int = 0) -> None:
        self.writer = None
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise RuntimeError(f"train.tensorboard is on but TensorBoard cannot be imported ({exc}); "
                               "pip install tensorboard, or set train.tensorboard: false") from None
        # purge_step: a resumed run drops the events a killed run wrote after its last checkpoint (the
        # checkpoint's own iteration was logged before it was written: kept)
        self.writer = SummaryWriter(str(log_dir), purge_step=start_iteration + 1 if start_iteration else None)

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def scalars(self, iteration: int, values: dict[str, float], prefix: str) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, iteration)

    def image(self, tag: str, iteration: int, rgb: np.ndarray) -> None:
        """An HxWx3 uint8 image."""
        if self.writer is not None:
            self.writer.add_image(tag, rgb, iteration, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def prediction_sheet(image_root: Path, images: list[dict[str, Any]], preds: list[dict[str, Any]],
                     threshold: float) -> np.ndarray:
    """The given images side by side, each with its predictions above `threshold` drawn on it."""
    from PIL import Image

    from pipeline.contact_sheet import overlay

    tiles = []
    for im in images:
        rgb = np.asarray(Image.open(image_root / im["file_name"]).convert("RGB"))
        tiles.append(overlay(rgb, [p for p in preds if p["image_id"] == im["id"] and p["score"] >= threshold]))
    h = max(t.shape[0] for t in tiles)
    return np.concatenate([np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0)), constant_values=255) for t in tiles],
                          axis=1)
