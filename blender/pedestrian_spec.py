"""A pedestrian's params drawn from the seeded rng (pure data, saved in every frame's metadata):
anny body phenotype, pose through the rig, skin tone, workwear, headwear."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from blender.draw import pick, rgb, uniform
from blender.pallet_jack_spec import CARTONS, GRIP_WIDTH_M, OPERATED_TILLER_RAD, grip_point

POSES = ("standing", "standing", "walking", "walking", "bending", "crouching", "carrying", "reaching")
# Skin tones from very light to very dark (Fitzpatrick I-VI, linear RGB); a person's tone is a
# continuous draw along this ramp, not one of a handful of flat colours.
SKIN_RAMP = [(0.85, 0.62, 0.50), (0.76, 0.52, 0.38), (0.60, 0.38, 0.25), (0.42, 0.25, 0.15),
             (0.26, 0.15, 0.09), (0.13, 0.075, 0.05)]
HAIR = [(0.015, 0.01, 0.008), (0.05, 0.03, 0.015), (0.16, 0.08, 0.03), (0.45, 0.3, 0.12), (0.35, 0.35, 0.35)]
SHOES = [(0.02, 0.02, 0.02), (0.15, 0.08, 0.03), (0.3, 0.3, 0.3)]
HIVIS = [(0.9, 1.0, 0.0), (1.0, 0.45, 0.0)]
HAIR_STYLES = ("short", "short", "short", "bun", "ponytail", "long")  # short: the scalp's own colour
HELMETS = [(1, 1, 1), (0.95, 0.8, 0.0), (0.9, 0.3, 0.0), (0.1, 0.2, 0.7)]
SOFT_HEADWEAR = ("cap", "beanie")  # worn by people without a helmet (render.soft_headwear_prob)


def skin_tone(t: float) -> tuple[float, float, float]:
    """Colour at `t` in [0, 1] along SKIN_RAMP (linear interpolation between neighbours)."""
    x = t * (len(SKIN_RAMP) - 1)
    k = min(int(x), len(SKIN_RAMP) - 2)
    a, b = np.array(SKIN_RAMP[k]), np.array(SKIN_RAMP[k + 1])
    return rgb(a + (x - k) * (b - a))


def pedestrian_params(rng: np.random.Generator, render_cfg: dict[str, Any]) -> dict[str, Any]:
    """Body (anny phenotype in [0, 1]; adults by `render.person_age`), pose, skin, clothing, headwear."""
    pose = pick(rng, POSES)
    params: dict[str, Any] = {
        "height_m": round(uniform(rng, (1.55, 1.95)), 3),
        "phenotype": {"gender": round(uniform(rng, (0, 1)), 3), "age": round(uniform(rng, render_cfg["person_age"]), 3),
                      "muscle": round(uniform(rng, (0.2, 0.8)), 3), "weight": round(uniform(rng, (0.15, 0.85)), 3),
                      "height": round(uniform(rng, (0.2, 0.9)), 3), "proportions": round(uniform(rng, (0.3, 0.7)), 3)},
        "pose": pose,
        "phase_rad": round(uniform(rng, (0, 2 * math.pi)), 3),
        "swing_deg": round(uniform(rng, (15, 30)) if pose == "walking" else
                           uniform(rng, (0, 12)) if pose == "carrying" else 0.0, 2),
        "bend_deg": round(uniform(rng, (40, 80)), 2) if pose == "bending" else 0.0,
        "arms": pick(rng, ["sides", "sides", "phone", "hip"]) if pose == "standing" else "sides",
        "weight_shift_deg": round(uniform(rng, (-6, 6)), 2),
        "arm_down_deg": round(uniform(rng, (38, 46)), 2),
        "skin": skin_tone(float(rng.uniform())),
        "hair": rgb(pick(rng, HAIR)),
        "shirt": rgb(pick(rng, render_cfg["workwear_colors"])),
        "long_sleeves": bool(rng.random() < 0.5),
        "trousers": rgb(pick(rng, render_cfg["workwear_colors"])),
        "shorts": bool(rng.random() < 0.1),
        "shoes": rgb(pick(rng, SHOES)),
        "gloves": rgb(pick(rng, [(0.05, 0.05, 0.05), (0.8, 0.6, 0.1), (0.2, 0.3, 0.6)])) if rng.random() < 0.25 else None,
        "hivis": rgb(pick(rng, HIVIS)) if rng.random() < render_cfg["hivis_prob"] else None,
        "helmet": rgb(pick(rng, HELMETS)) if rng.random() < render_cfg["helmet_prob"] else None,
        "hair_style": pick(rng, HAIR_STYLES),
    }
    # Drawn for everyone (the stream stays the same when a share changes), used where it applies.
    soft = {"kind": pick(rng, SOFT_HEADWEAR), "color": rgb(pick(rng, render_cfg["workwear_colors"]))}
    params["headwear"] = soft if rng.random() < render_cfg["soft_headwear_prob"] and not params["helmet"] else None
    suit = rgb(pick(rng, render_cfg["coverall_colors"]))
    if rng.random() < render_cfg["coverall_prob"]:  # one-piece boiler suit: top and trousers in one cloth
        params.update(outfit="coverall", shirt=suit, trousers=suit, long_sleeves=True, shorts=False)
    else:
        params["outfit"] = "separates"
    params["boots"] = bool(rng.random() < render_cfg["boots_prob"])
    if pose == "carrying":  # a carton held between the hands: a separate, unlabelled object
        width, h = uniform(rng, (0.28, 0.45)), params["height_m"]
        params["carried_box"] = {"depth_m": round(uniform(rng, (0.22, 0.4)), 3),
                                 "height_m": round(uniform(rng, (0.18, 0.4)), 3),
                                 "color": rgb(pick(rng, CARTONS))}
        ahead, z = uniform(rng, (0.26, 0.34)) * h / 1.75, uniform(rng, (0.53, 0.62)) * h
        params["grip_m"] = [[round(-width / 2 - 0.02, 4), round(ahead, 4), round(z, 4)],
                            [round(width / 2 + 0.02, 4), round(ahead, 4), round(z, 4)]]
    return params


def operator_params(rng: np.random.Generator, render_cfg: dict[str, Any], jack: dict[str, Any],
                    jack_name: str) -> tuple[dict[str, Any], float]:
    """A person at the tiller of the jack `jack` (its tiller angle is redrawn: pulled down to the
    operator), facing it, both palms on the grip, leaning into a push or a pull. Returns the
    person's params and their distance from the jack's origin along the jack's +y."""
    params = pedestrian_params(rng, render_cfg)
    params.pop("carried_box", None)
    params.pop("grip_m", None)
    jack["tiller_angle_rad"] = round(uniform(rng, OPERATED_TILLER_RAD), 3)
    _, grip_y, grip_z = grip_point(jack)
    h = params["height_m"]
    # Rough anthropometry (shoulder at 0.81 h, shoulder-to-palm 0.31 h): the palms reach the grip with
    # the arm 80-95 % extended; the body model's own kinematics close the rest (pedestrian_body.reach).
    ahead = math.sqrt(max((0.31 * h) ** 2 - (0.81 * h - grip_z) ** 2, 0.04)) * uniform(rng, (0.8, 0.95))
    action = pick(rng, ["push", "pull"])
    half = GRIP_WIDTH_M / 2 - 0.05
    params.update(pose="operating", operates=jack_name, action=action, arms="grip",
                  lean_deg=round(uniform(rng, (4, 12) if action == "push" else (-8, -3)), 2),
                  swing_deg=round(uniform(rng, (0, 15)), 2),
                  grip_m=[[-half, round(ahead, 4), round(grip_z, 4)], [half, round(ahead, 4), round(grip_z, 4)]])
    return params, grip_y + ahead
