"""Report figures (matplotlib, Agg) as base64 PNG strings."""
from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def loss_plot(metrics_csv: Path) -> str:
    """Loss components and lr against iteration."""
    plt = _plt()
    rows = read_csv(metrics_csv)
    it = [int(r["iteration"]) for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("loss", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"):
        ax.plot(it, [float(r[key]) for r in rows], label=key, lw=2 if key == "loss" else 1)
    ax.set_xlabel("iteration"); ax.set_ylabel("loss"); ax.legend(fontsize=7); ax.set_title("training loss")
    ax2.plot(it, [float(r["lr"]) for r in rows]); ax2.set_xlabel("iteration"); ax2.set_title("learning rate")
    return png_b64(fig)


def val_ap_plot(val_csv: Path) -> str:
    """Validation segm/bbox AP against iteration (train.eval_every)."""
    plt = _plt()
    rows = read_csv(val_csv)
    it = [int(r["iteration"]) for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("segm_AP", "bbox_AP"):
        ax.plot(it, [float(r[key]) for r in rows], marker="o", label=key.replace("_", " "))
    ax.set_xlabel("iteration"); ax.set_ylabel("AP (val)"); ax.set_ylim(0, 1); ax.legend(); ax.set_title("AP over training")
    return png_b64(fig)


def pr_plot(pr: dict[str, Any], title: str) -> str:
    """Precision-recall per class at IoU 0.50 (solid) and 0.75 (dashed)."""
    plt = _plt()
    from pipeline.contact_sheet import class_color

    fig, ax = plt.subplots(figsize=(5, 4))
    recall = pr["recall"]
    for k, name in enumerate(pr["iou50"], start=1):
        color = np.array(class_color(k)) / 255
        for key, style in (("iou50", "-"), ("iou75", "--")):
            curve = pr[key][name]
            if curve is not None:
                ax.plot(recall, curve, style, color=color, label=f"{name} IoU 0.{key[3:]}")
    ax.set_xlabel("recall"); ax.set_ylabel("precision"); ax.set_xlim(0, 1); ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left"); ax.set_title(title)
    return png_b64(fig)


def confusion_plot(conf: dict[str, Any]) -> str:
    """Confusion matrix heatmap with counts (rows true, columns predicted)."""
    plt = _plt()
    m = np.asarray(conf["matrix"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(m.shape[1]), conf["predicted"], rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), conf["true"])
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
    ax.set_xlabel("predicted"); ax.set_ylabel("true")
    ax.set_title(f"score ≥ {conf['score_threshold']}, {conf['iou_type']} IoU ≥ {conf['iou_threshold']}", fontsize=9)
    return png_b64(fig)


def efficiency_plot(points: list[dict[str, Any]], reference: dict[str, float]) -> str:
    """AP against number of training images (log x). `reference`: the general model's zero-shot mask AP
    per class it can detect, drawn as a line beside that class's own curve (like against like)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n = [p["train_images"] for p in points]
    for key, label in (("segm_AP", "segm AP"), ("bbox_AP", "bbox AP")):
        ax.plot(n, [p[key] for p in points], marker="o", label=label)
    for cls, ap in reference.items():
        line = ax.plot(n, [max(p["per_class_segm"].get(cls, 0.0), 0.0) for p in points], marker="s", ls="--",
                       label=f"{cls} segm AP")[0]
        ax.axhline(ap, color=line.get_color(), ls=":", label=f"general model, zero-shot: {cls} segm AP")
    ax.set_xscale("log"); ax.set_xticks(n, [str(v) for v in n]); ax.minorticks_off()
    ax.set_xlabel("training images"); ax.set_ylabel("AP"); ax.set_ylim(0, 1); ax.legend(fontsize=8)
    ax.set_title("data efficiency")
    return png_b64(fig)
