"""Decode Blender's multilayer EXR passes into an exact instance-id map (no bpy).

Cycles writes the Object Index pass from one sample per pixel, so its edges can
disagree with the anti-aliased RGB. Cryptomatte stores, per pixel, the objects
that cover it ranked by coverage (filtered with the same pixel filter as RGB),
so labelling each pixel with its rank-0 object gives the instance that covers
most of the pixel.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class LabelError(ValueError):
    """A render output cannot be turned into labels."""


def _read_parts(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    import OpenEXR

    try:
        f = OpenEXR.File(str(path), separate_channels=True)
    except Exception as exc:  # OpenEXR raises bare RuntimeError on truncated files
        raise LabelError(f"{path}: cannot read EXR ({exc})") from exc
    header = dict(f.header())
    channels: dict[str, np.ndarray] = {}
    for part in f.parts:
        header.update(part.header)
        for name, ch in part.channels.items():
            channels[name] = np.asarray(ch.pixels)
    return header, channels


def hex_to_float_id(hex_hash: str) -> np.float32:
    """Cryptomatte id: the uint32 hash's bits reinterpreted as float32."""
    return np.array([int(hex_hash, 16)], dtype=np.uint32).view(np.float32)[0]


def crypto_manifest(header: dict, layer: str = "CryptoObject") -> tuple[str, dict[str, str]]:
    """Return (channel prefix, name -> hex hash) of the cryptomatte layer named `layer`."""
    for key, value in header.items():
        if key.startswith("cryptomatte/") and key.endswith("/name"):
            name = value.decode() if isinstance(value, bytes) else str(value)
            if name.endswith(layer):
                manifest = header[key[: -len("name")] + "manifest"]
                manifest = manifest.decode() if isinstance(manifest, bytes) else manifest
                return name, json.loads(manifest)
    raise LabelError(f"no cryptomatte layer {layer!r} in EXR header")


def instance_map_from_exr(path: Path, name_to_id: dict[str, int]) -> tuple[np.ndarray, dict[int, float]]:
    """Per-pixel instance ids (uint16, 0 = background) and per-instance coverage sums.

    `name_to_id` maps Blender object names to instance ids; objects not listed
    (floor, walls, distractors) count as background.
    """
    header, channels = _read_parts(path)
    prefix, manifest = crypto_manifest(header)
    missing = sorted(set(name_to_id) - set(manifest))
    # An instance absent from the manifest was culled (fully outside the view): it has no pixels.
    rank0 = channels.get(f"{prefix}00.r")
    if rank0 is None:
        raise LabelError(f"{path}: cryptomatte channel {prefix}00.r missing")
    ids = np.zeros(rank0.shape, dtype=np.uint16)
    coverage: dict[int, float] = {}
    ranks = sorted(k for k in channels if k.startswith(prefix) and k[len(prefix):len(prefix) + 2].isdigit())
    for name, inst in name_to_id.items():
        if name in missing:
            coverage[inst] = 0.0
            continue
        fid = hex_to_float_id(manifest[name])
        ids[rank0 == fid] = inst
        total = 0.0
        # Channels come in (id, coverage) pairs: r,g and b,a of each CryptoObjectNN part.
        for k in ranks:
            if k.endswith(".r") or k.endswith(".b"):
                cov_key = k[:-1] + ("g" if k.endswith(".r") else "a")
                total += float(channels[cov_key][channels[k] == fid].sum())
        coverage[inst] = total
    return ids, coverage


def object_index_map(path: Path) -> np.ndarray:
    """The single-sample Object Index pass as integers (for comparison with the cryptomatte map)."""
    _, channels = _read_parts(path)
    for key, value in channels.items():
        if key.endswith("Object Index.X") or key.endswith("IndexOB.X"):
            return np.rint(value).astype(np.uint16)
    raise LabelError(f"{path}: no Object Index pass")
