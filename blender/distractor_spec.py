"""Context objects and hard negatives (boxes, cones, barrels, pallets, racking, forklifts, posts):
their params drawn from the seeded rng (pure data)."""
from __future__ import annotations

from typing import Any

import numpy as np

from blender.draw import pick as _pick, rgb as _rgb, uniform as _u

DISTRACTOR_KINDS = ("box", "cone", "barrel", "pallet", "rack", "forklift", "post")
STEEL = (0.45, 0.45, 0.47)  # steel parts of posts, forklifts, jacks and roof beams


def distractor_params(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """Size and colour of a context object (box, cone, barrel, pallet, rack)."""
    if kind == "box":
        return {"size_m": [round(_u(rng, (0.3, 0.8)), 3), round(_u(rng, (0.3, 0.8)), 3),
                           round(_u(rng, (0.25, 0.7)), 3)],
                "color": _rgb(_pick(rng, [(0.55, 0.4, 0.25), (0.7, 0.6, 0.45), (0.4, 0.3, 0.2)]))}
    if kind == "cone":
        return {"height_m": round(_u(rng, (0.45, 0.75)), 3), "color": (1.0, 0.3, 0.0)}
    if kind == "barrel":
        return {"height_m": 0.9, "color": _rgb(_pick(rng, [(0.1, 0.2, 0.6), (0.05, 0.4, 0.1), (0.6, 0.1, 0.1)]))}
    if kind == "pallet":
        return {"stack": int(rng.integers(1, 4)), "color": (0.55, 0.42, 0.28)}
    if kind == "rack":
        return {"levels": int(rng.integers(2, 4)), "width_m": round(_u(rng, (2.0, 2.8)), 3),
                "color": _rgb(_pick(rng, [(0.05, 0.2, 0.6), (0.9, 0.4, 0.0)]))}
    if kind == "post":
        return {"height_m": round(_u(rng, (2.5, 6.0)), 3), "color": _rgb(_pick(rng, [STEEL, (0.9, 0.75, 0.05)])),
                "guard": bool(rng.random() < 0.6)}
    if kind == "forklift":
        return {"color": _rgb(_pick(rng, [(0.95, 0.7, 0.02), (0.9, 0.35, 0.02), (0.1, 0.35, 0.15),
                                           (0.7, 0.05, 0.03), (0.1, 0.15, 0.5)])),
                "fork_height_m": round(_u(rng, (0.05, 1.2)), 3),
                "mast_height_m": round(_u(rng, (2.0, 2.6)), 3),
                "load": bool(rng.random() < 0.4)}
    raise ValueError(f"unknown distractor kind {kind!r}")
