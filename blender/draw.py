"""Small helpers for drawing scene values from a seeded numpy Generator (pure; no bpy)."""
from __future__ import annotations

import numpy as np


def uniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi))


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def rgb(c) -> tuple[float, float, float]:
    return tuple(round(float(v), 4) for v in c)
