"""Context objects and hard negatives (boxes, cones, barrels, pallets, racking, forklifts, posts):
their params drawn from the seeded rng (pure data)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from blender.draw import pick as _pick, rgb as _rgb, uniform as _u
from blender.pallet_jack_spec import pallet_load

DISTRACTOR_KINDS = ("box", "cone", "barrel", "pallet", "rack", "forklift", "post", "clutter")
# Look-alikes (render.lookalike_prob): hard negatives that share a pallet jack's forks and tiller or a
# person's size, upright shape or hi-vis colours (vests on a hook rail, dress-form mannequins);
# unlabelled like every distractor (builders: blender/build.py, blender/fixtures_build.py).
LOOKALIKE_KINDS = ("stacker", "hand_truck", "roll_cage", "vest_hooks", "mannequin")
LOOKALIKE_PAINTS = [(0.95, 0.7, 0.02), (0.8, 0.1, 0.05), (0.95, 0.4, 0.02), (0.1, 0.3, 0.7), (0.15, 0.45, 0.2)]
HIVIS_COLORS = [(0.9, 1.0, 0.0), (1.0, 0.45, 0.0)]  # fluorescent yellow and orange, as people's vests (pedestrian_spec.HIVIS)
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
    if kind == "pallet":  # a stack of empty pallets, or one pallet with its cargo, on the floor
        stack = int(rng.integers(1, 5))
        return {"stack": stack, "load": pallet_load(rng, _pick(rng, ["EUR", "EUR", "GMA"]), "empty" if stack > 1 else None)}
    if kind == "rack":  # pallet racking: upright frames, beams with location labels, wire decks, pallets
        levels = int(rng.integers(2, 4))
        return {"levels": levels, "width_m": round(_u(rng, (2.0, 2.8)), 3),
                "color": _rgb(_pick(rng, [(0.05, 0.2, 0.6), (0.9, 0.4, 0.0)])),
                "beam_color": _rgb(_pick(rng, [(0.9, 0.45, 0.0), (0.95, 0.7, 0.02)])),
                "wire_deck": bool(rng.random() < 0.5),
                "slots": [pallet_load(rng, "EUR", _pick(rng, ["cartons", "wrapped"])) if rng.random() < 0.75 else None
                          for _ in range(2 * levels)]}
    if kind == "clutter":  # on the floor: tyre marks, stains, dropped straps or wrap
        marks = [{"xy": [round(_u(rng, (-0.3, 0.3)), 3), round(_u(rng, (-0.3, 0.3)), 3)],
                  "yaw": round(_u(rng, (0.0, math.pi)), 3), "length_m": round(_u(rng, (0.6, 1.2)), 3),
                  "kind": _pick(rng, ["tyre", "tyre", "stain", "strap", "wrap"]),
                  "size_m": round(_u(rng, (0.12, 0.45)), 3),
                  "color": _rgb(_pick(rng, [(0.05, 0.05, 0.05), (0.15, 0.12, 0.1), (0.9, 0.9, 0.9), (0.1, 0.2, 0.7)]))}
                 for _ in range(int(rng.integers(1, 5)))]
        return {"marks": marks}
    if kind == "post":
        return {"height_m": round(_u(rng, (2.5, 6.0)), 3), "color": _rgb(_pick(rng, [STEEL, (0.9, 0.75, 0.05)])),
                "guard": bool(rng.random() < 0.6)}
    if kind == "forklift":
        return {"color": _rgb(_pick(rng, [(0.95, 0.7, 0.02), (0.9, 0.35, 0.02), (0.1, 0.35, 0.15),
                                           (0.7, 0.05, 0.03), (0.1, 0.15, 0.5)])),
                "fork_height_m": round(_u(rng, (0.05, 1.2)), 3),
                "mast_height_m": round(_u(rng, (2.0, 2.6)), 3),
                "load": bool(rng.random() < 0.4)}
    if kind == "stacker":  # walkie or straddle stacker: a pallet jack's closest relative, with a mast
        return {"color": _rgb(_pick(rng, LOOKALIKE_PAINTS)),
                "straddle": bool(rng.random() < 0.4),
                "mast_height_m": round(_u(rng, (1.6, 2.3)), 3),
                "fork_height_m": round(_u(rng, (0.09, 1.3)), 3),
                "tiller_angle_rad": round(_u(rng, (0.0, 1.1)), 3),
                "load": bool(rng.random() < 0.35)}
    if kind == "hand_truck":  # two-wheel sack truck, upright or tilted back, sometimes with cartons
        return {"color": _rgb(_pick(rng, [(0.1, 0.25, 0.6), (0.7, 0.05, 0.03), (0.05, 0.05, 0.05), STEEL])),
                "height_m": round(_u(rng, (1.05, 1.3)), 3),
                "tilt_rad": round(_u(rng, (0.0, 0.45)), 3) if rng.random() < 0.4 else 0.0,
                "cartons": int(rng.integers(0, 3))}
    if kind == "roll_cage":  # wire roll container on castors, three mesh sides
        return {"color": _rgb(_pick(rng, [STEEL, (0.75, 0.75, 0.7), (0.1, 0.3, 0.6)])),
                "height_m": round(_u(rng, (1.5, 1.8)), 3),
                "cartons": int(rng.integers(0, 5))}
    if kind == "vest_hooks":  # a hook rail with hi-vis vests (and a helmet) hanging at chest height
        return {"color": _rgb(_pick(rng, [STEEL, (0.1, 0.3, 0.6), (0.9, 0.75, 0.05)])),
                "rail_height_m": round(_u(rng, (1.55, 1.8)), 3), "width_m": round(_u(rng, (0.8, 1.6)), 3),
                "vests": [{"kind": "helmet" if rng.random() < 0.15 else "vest",
                           "color": _rgb(_pick(rng, HIVIS_COLORS)), "stripes": bool(rng.random() < 0.8)}
                          for _ in range(int(rng.integers(1, 5)))]}
    if kind == "mannequin":  # a dress form on a stand, sometimes in a hi-vis vest and a helmet
        return {"color": _rgb(_pick(rng, [(0.85, 0.75, 0.6), (0.05, 0.05, 0.05), (0.9, 0.9, 0.88), (0.6, 0.6, 0.62)])),
                "scale": round(_u(rng, (0.95, 1.15)), 3),
                "vest": _rgb(_pick(rng, HIVIS_COLORS)) if rng.random() < 0.6 else None,
                "helmet": _rgb(_pick(rng, [(1, 1, 1), (0.95, 0.8, 0.0), (0.9, 0.3, 0.0)])) if rng.random() < 0.4 else None}
    raise ValueError(f"unknown distractor kind {kind!r}")
