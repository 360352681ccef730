"""A pallet jack's params drawn from the seeded rng (pure data), and where its tiller grip is.

Frame of a jack: the forks point towards -y from the chassis at y = 0, the tiller end is +y (the
operator's side), x across; the fork tops are `fork_height_m` above the floor."""
from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np

from blender.draw import pick, rgb, uniform

JACK_PAINT = {"red": (0.7, 0.05, 0.03), "yellow": (0.95, 0.7, 0.02), "blue": (0.05, 0.15, 0.6),
              "orange": (0.95, 0.35, 0.02), "green": (0.05, 0.35, 0.12), "grey": (0.3, 0.31, 0.33)}
# Tiller pivot (jack frame) and length to the grip bar per variant; it leans towards +y by
# tiller_angle_rad. The electric truck's pivot sits on its drive unit, its grip is the control head.
TILLER = {"manual": ((0.0, 0.18, 0.62), 1.09), "electric": ((0.0, 0.3, 0.78), 0.92)}
GRIP_WIDTH_M = 0.32
OPERATED_TILLER_RAD = (0.95, 1.3)  # pulled down towards the operator: grip 0.92-1.23 m above the floor
PALLETS = {"EUR": (0.8, 1.2), "GMA": (1.016, 1.219)}  # width (x) x length (y, along the forks), metres
# Height of the fork entries (underside of the deck above them): EUR bottom board 0.022 + block 0.078,
# GMA stringer 0.105. pallet_build makes the pallet with it, the jack's load sits on its forks by it.
PALLET_ENTRY_TOP_M = {"EUR": 0.1, "GMA": 0.105}
CARTONS = [(0.55, 0.4, 0.25), (0.55, 0.4, 0.25), (0.7, 0.6, 0.45), (0.45, 0.32, 0.2), (0.85, 0.85, 0.82)]  # kraft brown mostly


def _paint(rng: np.random.Generator, name: str) -> tuple[float, float, float]:
    """The named paint with per-instance hue, saturation and value jitter."""
    h, s, v = colorsys.rgb_to_hsv(*JACK_PAINT[name])
    h = (h + uniform(rng, (-0.02, 0.02))) % 1.0
    return rgb(colorsys.hsv_to_rgb(h, min(1.0, s * uniform(rng, (0.85, 1.1))), min(1.0, v * uniform(rng, (0.8, 1.1)))))


def pallet_jack_params(rng: np.random.Generator, render_cfg: dict[str, Any]) -> dict[str, Any]:
    """Variant (manual hand pallet truck or electric walkie), finish, paint from `render.jack_paints`,
    dimensions from `render.jack_fork_length_m` / `jack_fork_width_m`, wear, grime, decal, tiller angle
    and, for `render.jack_load_prob` of them, a pallet with its cargo on the forks."""
    variant = "electric" if rng.random() < render_cfg["electric_jack_prob"] else "manual"
    finish = pick(rng, ["paint"] * 17 + ["galvanised", "galvanised", "stainless"]) if variant == "manual" else "paint"
    paint = pick(rng, sorted(render_cfg["jack_paints"]))
    params = {
        "variant": variant,
        "finish": finish,
        "paint": paint,
        "color": _paint(rng, paint),
        "fork_length_m": round(uniform(rng, render_cfg["jack_fork_length_m"]), 3),
        "fork_spread_m": round(uniform(rng, render_cfg["jack_fork_width_m"]), 3),
        "fork_height_m": round(uniform(rng, (0.085, 0.2)), 3),
        "tandem_rollers": bool(rng.random() < 0.5),
        "tyres": pick(rng, ["rubber", "polyurethane"]),
        "wear": round(uniform(rng, (0.0, 0.8)), 3),
        "grime": round(uniform(rng, (0.0, 0.7)), 3),
        "decal": pick(rng, ["none", "stripe", "plate"]),
        "platform": bool(variant == "electric" and rng.random() < 0.5),
        "tiller_angle_rad": round(uniform(rng, (-0.2, 1.1)), 3),
        "load": None,
    }
    if rng.random() < render_cfg["jack_load_prob"]:
        # EUR block pallets take forks up to 0.6 m wide in their entries; wider forks go under a GMA.
        params["load"] = pallet_load(rng, pick(rng, sorted(PALLETS)) if params["fork_spread_m"] <= 0.6 else "GMA")
    return params


def pallet_load(rng: np.random.Generator, pallet: str, cargo: str | None = None) -> dict[str, Any]:
    """A pallet (EUR or GMA) and its cargo: 1-3 layers of cartons, stretch-wrapped, or empty."""
    return {"pallet": pallet, "cargo": cargo or pick(rng, ["cartons", "cartons", "wrapped", "empty"]),
            "layers": int(rng.integers(1, 4)), "carton": rgb(pick(rng, CARTONS)),
            "wood": rgb(np.array((0.55, 0.42, 0.28)) * uniform(rng, (0.75, 1.1))),
            "wood_wear": round(uniform(rng, (0.0, 1.0)), 3), "seed": int(rng.integers(2**31 - 1))}


def grip_point(params: dict[str, Any]) -> tuple[float, float, float]:
    """Centre of the tiller's grip bar in the jack's own frame."""
    (x, y, z), length = TILLER[params.get("variant", "manual")]
    t = params["tiller_angle_rad"]
    return x, y + length * math.sin(t), z + length * math.cos(t)
