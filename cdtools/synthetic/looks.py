"""The look of a date: what differs between two images of an unchanged world.

Light and colour balance, season (greenness), haze, sun position (shadows), optics
(blur), misregistration and sensor noise. None of it is change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DateLook:
    """How one date's image differs from the ground truth without any change."""

    date: int  # 0 = before, 1 = after; picks the date's seasonal and haze fields
    greenness: float  # 0 = late-summer dry, 1 = spring green
    gain: tuple[float, float, float, float]  # per band (red, green, blue, NIR)
    offset: tuple[float, float, float, float]
    haze: float  # strength of patchy haze
    sun_azimuth: float  # direction shadows fall, radians counter-clockwise from east
    shadow_length: float  # shadow length per unit of height
    blur: float  # optics, gaussian sigma in pixels
    shift: tuple[float, float]  # misregistration (rows, columns) in pixels
    noise: float  # sensor noise, standard deviation


def draw_looks(rng: np.random.Generator) -> tuple[DateLook, DateLook]:
    """The looks of a before and an after date: different seasons, light and sensors."""
    lush = rng.uniform(0.7, 1.0)
    seasons = (lush, lush - rng.uniform(0.35, 0.6))  # one date green, the other dry
    before_green, after_green = seasons if rng.random() < 0.5 else seasons[::-1]
    shift = rng.uniform(0.3, 0.7, size=2) * rng.choice([-1, 1], size=2)
    return (
        random_look(rng, date=0, greenness=float(before_green), shift=(0.0, 0.0), strength=0.5),
        random_look(rng, date=1, greenness=float(after_green), shift=tuple(shift), strength=1.0),
    )


def random_look(
    rng: np.random.Generator,
    *,
    date: int,
    greenness: float | None = None,
    shift: tuple[float, float] = (0.0, 0.0),
    strength: float = 1.0,
) -> DateLook:
    """A random date look; ``strength`` scales how far light and colour stray from neutral."""
    common_gain = rng.uniform(-0.18, 0.18) * strength
    gain = 1 + common_gain + rng.uniform(-0.05, 0.05, size=4) * strength
    offset = rng.uniform(-0.03, 0.03, size=4) * strength
    return DateLook(
        date=date,
        greenness=float(rng.uniform(0, 1) if greenness is None else greenness),
        gain=tuple(float(g) for g in gain),
        offset=tuple(float(o) for o in offset),
        haze=float(rng.uniform(0.0, 0.12) * strength),
        sun_azimuth=float(np.pi / 4 + rng.uniform(-0.3, 0.3)),
        shadow_length=float(rng.uniform(0.55, 1.0)),
        blur=float(rng.uniform(0.35, 0.5 + 0.3 * strength)),
        shift=(float(shift[0]), float(shift[1])),
        noise=float(rng.uniform(0.008, 0.016)),
    )
