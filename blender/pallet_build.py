"""Pallets and their cargo (bpy): a EUR block pallet or a GMA stringer pallet with wood grain and
wear, carrying layers of taped cartons, stretch-wrapped or not. Built into a caller's MeshBuilder:
on a jack's forks (its load), on the floor (context) or on a rack's beams."""
from __future__ import annotations

import numpy as np

from blender.materials import cardboard, film, material, wood
from blender.mesh import MeshBuilder
from blender.pallet_jack_spec import PALLET_ENTRY_TOP_M, PALLETS


def add_pallet(mb: MeshBuilder, name: str, load: dict, centre: tuple[float, float], z0: float) -> float:
    """A pallet of `load["pallet"]` with its length along y, centred at `centre`, bottom at z0;
    returns the height of its deck. EUR: bottom boards along y, nine blocks, stringer boards, five
    deck boards (entries along y between the blocks); GMA: three stringers along y, deck boards across."""
    w, length = PALLETS[load["pallet"]]
    cx, cy = centre
    board = wood(f"{name}_wood", load["wood"], load["wood_wear"])
    if load["pallet"] == "EUR":
        for x in (-w / 2 + 0.05, 0.0, w / 2 - 0.05):
            bw = 0.145 if x == 0 else 0.1
            mb.box((cx + x, cy, z0 + 0.011), (bw, length, 0.022), board)
            for y in (-length / 2 + 0.0725, 0.0, length / 2 - 0.0725):  # blocks up to PALLET_ENTRY_TOP_M
                mb.box((cx + x, cy + y, z0 + 0.061), (bw, 0.145, 0.078), board)
        for y in (-length / 2 + 0.0725, 0.0, length / 2 - 0.0725):
            mb.box((cx, cy + y, z0 + 0.111), (w, 0.145, 0.022), board)
        for x in np.linspace(-w / 2 + 0.0725, w / 2 - 0.0725, 5):
            mb.box((cx + x, cy, z0 + 0.133), (0.145 if abs(x) > 0.2 or x == 0 else 0.1, length, 0.022), board)
        return z0 + 0.144
    stringer = PALLET_ENTRY_TOP_M["GMA"]
    for x in (-w / 2 + 0.019, 0.0, w / 2 - 0.019):
        mb.box((cx + x, cy, z0 + stringer / 2), (0.038, length, stringer), board)
    for y in np.linspace(-length / 2 + 0.045, length / 2 - 0.045, 7):
        mb.box((cx, cy + y, z0 + 0.113), (w, 0.089, 0.016), board)
    return z0 + 0.121


def add_cargo(mb: MeshBuilder, name: str, load: dict, centre: tuple[float, float], deck: float,
              max_height_m: float = 1.3) -> float:
    """`load["layers"]` layers of taped cartons on a pallet's deck (sizes jittered from load["seed"]),
    as many as fit under `max_height_m`, wrapped in film when load["cargo"] == "wrapped"; returns the
    top of the cargo."""
    if load["cargo"] == "empty":
        return deck
    rng = np.random.default_rng(load["seed"])
    w, length = PALLETS[load["pallet"]]
    cx, cy = centre
    box_mat, tape = cardboard(f"{name}_cartons", load["carton"]), material(f"{name}_tape", (0.6, 0.45, 0.25), 0.3)
    nx, ny = (2, 3) if w < 0.9 else (3, 3)
    cw, cl, ch = w / nx, length / ny, float(rng.uniform(0.25, 0.4))
    layers = max(1, min(load["layers"], int(max_height_m // ch)))
    for layer in range(layers):
        for i in range(nx):
            for j in range(ny):
                sx, sy = cw * rng.uniform(0.9, 0.98), cl * rng.uniform(0.9, 0.98)
                c = (cx - w / 2 + (i + 0.5) * cw, cy - length / 2 + (j + 0.5) * cl, deck + (layer + 0.5) * ch)
                mb.box(c, (sx, sy, ch * 0.98), box_mat, rot=(0, 0, float(rng.uniform(-0.03, 0.03))))
                mb.box((c[0], c[1], c[2] + ch * 0.49), (0.05, sy + 0.002, 0.003), tape)  # tape seam
                if rng.random() < 0.5:  # printed shipping label on the carton's side
                    mb.box((c[0] + sx / 2 + 0.001, c[1], c[2]), (0.002, 0.1, 0.07),
                           material(f"{name}_label", (0.9, 0.9, 0.88), 0.5))
    top = deck + layers * ch
    if load["cargo"] == "wrapped":
        mb.box((cx, cy, (deck + top) / 2), (w + 0.02, length + 0.02, top - deck + 0.01), film(f"{name}_film"))
    return top
