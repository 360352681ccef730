"""Resolve pretrained weights through torchvision's weights API and the torch hub cache."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pipeline.io import file_sha256 as sha256, write_json

ARCH_WEIGHTS = {
    "maskrcnn_resnet50_fpn": "MaskRCNN_ResNet50_FPN_Weights",
    "maskrcnn_resnet50_fpn_v2": "MaskRCNN_ResNet50_FPN_V2_Weights",
}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


def resolve(arch: str, weights: str) -> dict[str, Any]:
    """Return {kind, path, sha256, url} for `weights` = coco | none | <path to state dict>."""
    if weights == "none":
        return {"kind": "none", "arch": arch}
    if weights != "coco":
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"model.weights: {weights}: file not found")
        return {"kind": "path", "arch": arch, "path": str(path.resolve()), "sha256": sha256(path)}
    import torch
    from torchvision.models import detection

    enum = getattr(detection, ARCH_WEIGHTS[arch]).COCO_V1
    url = enum.url
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    target = hub_dir / os.path.basename(url)
    if not target.is_file():
        try:
            # check_hash verifies the sha256 prefix torchvision embeds in the file name.
            torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, weights_only=True)
        except Exception as exc:
            raise WeightsUnavailable(
                f"model.weights=coco: cannot download {url} ({type(exc).__name__}: {exc}).\n"
                f"Pre-stage it on a machine with internet:  python -m pipeline weights --arch {arch} --weights coco "
                f"--out /dev/null  (fills $TORCH_HOME), or copy the file to {target} "
                f"(TORCH_HOME={os.environ.get('TORCH_HOME', '~/.cache/torch')}); or use model.weights: none | <path>."
            ) from exc
    return {"kind": "coco", "arch": arch, "enum": f"{ARCH_WEIGHTS[arch]}.COCO_V1", "url": url,
            "path": str(target), "sha256": sha256(target)}


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import section_defaults

    model = section_defaults("model")  # configs/schema.yaml's `model` section
    ap = argparse.ArgumentParser(prog="python -m pipeline weights", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--arch", default=model["arch"], choices=sorted(ARCH_WEIGHTS), help="model.arch")
    ap.add_argument("--weights", default=model["weights"], help="model.weights: coco, none or a state dict file")
    ap.add_argument("--out", type=Path, required=True, help="JSON describing the resolved weights")
    args = ap.parse_args(argv)
    try:
        info = resolve(args.arch, args.weights)
    except (WeightsUnavailable, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if str(args.out) != "/dev/null":
        write_json(args.out, info)
    return 0
