"""A pallet jack's params drawn from the seeded rng (pure data), and where its tiller grip is."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from blender.draw import pick, rgb

JACK_PAINT = {"red": (0.7, 0.05, 0.03), "yellow": (0.95, 0.7, 0.02),
              "blue": (0.05, 0.15, 0.6), "orange": (0.95, 0.35, 0.02)}
# Tiller: pivots above the steer wheels and leans towards +y (the operator's side) by tiller_angle_rad;
# the grip bar sits GRIP_M along it, GRIP_WIDTH_M wide.
TILLER_PIVOT_M = (0.0, 0.18, 0.62)
TILLER_LENGTH_M = 1.05
GRIP_M = TILLER_LENGTH_M + 0.04
GRIP_WIDTH_M = 0.32
OPERATED_TILLER_RAD = (0.95, 1.3)  # pulled down towards the operator: grip 0.92-1.23 m above the floor


def pallet_jack_params(rng: np.random.Generator) -> dict[str, Any]:
    """Dimensions, paint, tiller angle and optional load of a hand pallet truck."""
    paint = pick(rng, sorted(JACK_PAINT))
    return {
        "fork_length_m": round(float(rng.uniform(1.0, 1.25)), 3),
        "fork_spread_m": round(float(rng.uniform(0.52, 0.68)), 3),
        "paint": paint,
        "color": rgb(JACK_PAINT[paint]),
        "wear": round(float(rng.uniform(0.0, 0.6)), 3),
        "tiller_angle_rad": round(float(rng.uniform(-0.2, 1.1)), 3),
        "load": bool(rng.random() < 0.35),
        "load_color": rgb(pick(rng, [(0.55, 0.4, 0.25), (0.7, 0.6, 0.45), (0.3, 0.3, 0.32)])),
    }


def grip_point(params: dict[str, Any]) -> tuple[float, float, float]:
    """Centre of the tiller's grip bar in the jack's own frame (forks towards -y, tiller end +y)."""
    t = params["tiller_angle_rad"]
    x, y, z = TILLER_PIVOT_M
    return x, y + GRIP_M * math.sin(t), z + GRIP_M * math.cos(t)
