"""Imagery from a layout: textures of every surface, shadows, and the look of a date.

Rendering works on windows with a halo of :data:`HALO` pixels, so that shadows, roof
facets and the sub-pixel shift of the after date are the same whichever blocks a scene
is cut into. The ground texture (:class:`Texture`) is shared by both dates; a
:class:`DateLook` adds what differs between dates without being change: light and
colour balance, season, haze, sun position, blur, misregistration and sensor noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cdtools.synthetic import palette
from cdtools.synthetic.landcover import WATER, Material, is_any
from cdtools.synthetic.layout import Layout, Parcels
from cdtools.synthetic.looks import DateLook
from cdtools.synthetic.noise import LatticeNoise, NoiseBank

HALO = 32
"""Pixels rendered around a window and thrown away (longer than the longest shadow)."""


@dataclass(frozen=True)
class Texture:
    """Noise fields of one window (with halo), shared by both dates."""

    row: int  # scene row and column of the first pixel (halo included)
    col: int
    regional: np.ndarray
    field: np.ndarray
    patch: np.ndarray
    crown: np.ndarray
    grain: np.ndarray  # per-pixel noise, slightly smoothed
    seasonal: tuple[np.ndarray, np.ndarray]
    haze: tuple[np.ndarray, np.ndarray]

    @property
    def trees(self) -> np.ndarray:
        """Where trees stand and how tall: high values are crowns."""
        return 0.55 * self.patch + 0.8 * self.crown + 0.2 * self.grain


def make_texture(
    noise: NoiseBank, row: int, col: int, height: int, width: int, rng: np.random.Generator
) -> Texture:
    """Sample every field on a window; ``rng`` draws only the per-pixel grain."""

    def sample(field: LatticeNoise) -> np.ndarray:
        return field.sample(row, col, height, width)

    grain = ndimage.gaussian_filter(rng.standard_normal((height, width), dtype=np.float32), 0.6)
    return Texture(
        row=row,
        col=col,
        regional=sample(noise.regional),
        field=sample(noise.field),
        patch=sample(noise.patch),
        crown=sample(noise.crown),
        grain=grain / np.float32(grain.std() + 1e-6),
        seasonal=(sample(noise.seasonal[0]), sample(noise.seasonal[1])),
        haze=(sample(noise.haze[0]), sample(noise.haze[1])),
    )


def crop_layout(layout: Layout, row: int, col: int, height: int, width: int) -> Layout:
    """A window of a layout that may reach past the scene edge (edge values repeat)."""
    size = layout.size
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + height, size), min(col + width, size)
    pad = ((r0 - row, row + height - r1), (c0 - col, col + width - c1))

    def cut(array: np.ndarray) -> np.ndarray:
        part = array[r0:r1, c0:c1]
        return np.pad(part, pad, mode="edge") if any(sum(p) for p in pad) else part

    return Layout(
        material=cut(layout.material),
        parcel=cut(layout.parcel),
        roof=cut(layout.roof),
        height=cut(layout.height),
        marking=cut(layout.marking),
        parcels=layout.parcels,
        buildings=(),
        grid_angle=layout.grid_angle,
    )


def paint(window: Layout, texture: Texture, look: DateLook, *, bands: int) -> np.ndarray:
    """Render a window (halo included) on one date: float32 ``(height, width, bands)``."""
    material = window.material
    greenness = np.clip(
        look.greenness + 0.3 * texture.seasonal[look.date] + 0.1 * texture.regional, 0, 1
    )[..., None]
    image = palette.GROUND_DRY[material] + greenness * (
        palette.GROUND_LUSH[material] - palette.GROUND_DRY[material]
    )
    _paint_fields(image, window, texture, look.date, greenness)
    amplitude = palette.TEXTURE_AMPLITUDE[material]
    relief = (
        amplitude[..., 0] * texture.regional
        + amplitude[..., 1] * texture.field
        + amplitude[..., 2] * texture.patch
        + amplitude[..., 3] * texture.crown
        + palette.GRAIN_AMPLITUDE[material] * texture.grain
    )
    image *= (1 + relief)[..., None]
    elevation = _paint_trees(image, window, texture, greenness, look)
    _paint_water(image, material, greenness)
    image[window.marking.astype(bool) & (material == Material.HIGHWAY)] = palette.MARKING
    _paint_roofs(image, window, texture, look)
    elevation += window.height * np.float32(look.shadow_length)
    _cast_shadows(image, elevation, look.sun_azimuth)
    return _apply_look(image[..., :bands], texture, look)


def _paint_fields(
    image: np.ndarray, window: Layout, texture: Texture, date: int, greenness: np.ndarray
) -> None:
    """Crop rows of annual crops, in the colours of each field's state on the date."""
    rows, cols = np.nonzero(window.material == Material.ANNUAL_CROP)
    if rows.size == 0:
        return
    parcels: Parcels = window.parcels
    pid = window.parcel[rows, cols]
    state = parcels.state[date][pid]
    stripes = _stripes(parcels, pid, rows + texture.row, cols + texture.col)
    lush = greenness[rows, cols]
    ridge = palette.CROP_RIDGE[state, 1] + lush * (
        palette.CROP_RIDGE[state, 0] - palette.CROP_RIDGE[state, 1]
    )
    furrow = palette.CROP_FURROW[state, 1] + lush * (
        palette.CROP_FURROW[state, 0] - palette.CROP_FURROW[state, 1]
    )
    image[rows, cols] = furrow + stripes[:, None] * (ridge - furrow)


def _stripes(parcels: Parcels, pid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """0..1 crop-row pattern along each parcel's row direction."""
    angle = parcels.angle[pid]
    across = (cols + 0.5) * -np.sin(angle) + (rows + 0.5) * np.cos(angle)
    wave = np.sin(2 * np.pi * across / parcels.period[pid] + parcels.phase[pid])
    return (0.5 + 0.5 * np.tanh(2.0 * wave)).astype(np.float32)


def _paint_trees(
    image: np.ndarray, window: Layout, texture: Texture, greenness: np.ndarray, look: DateLook
) -> np.ndarray:
    """Tree crowns (woods, garden trees, orchards), lit from the sun; returns their height."""
    material = window.material
    trees = texture.trees
    threshold = palette.TREE_THRESHOLD[material]
    crown_shape = np.clip((trees - threshold) / 0.7, 0, 1)
    height = np.sqrt(crown_shape) * palette.TREE_HEIGHT[material] * (1 + 0.25 * texture.patch)
    orchard = _orchard_rows(window, texture)
    height = np.maximum(height, orchard * 9.0)
    light = _sunlit(height, look.sun_azimuth)
    at = np.nonzero(height > 0)
    green = greenness[at]
    colour = palette.CROWN_DRY + green * (palette.CROWN_LUSH - palette.CROWN_DRY)
    # Deciduous stands (where the patch field is high) are bare in the dry season.
    deciduous = np.clip((texture.patch[at] + 0.5 * texture.regional[at] - 0.4) * 2, 0, 1)
    leaf_off = (deciduous * np.clip((0.5 - green[:, 0]) / 0.3, 0, 1))[:, None]
    colour = colour * (1 - leaf_off) + palette.BARE_BRANCHES * leaf_off
    colour = np.where(orchard[at][:, None] > 0, palette.ORCHARD_CROWN, colour)
    tone = (
        1
        + 0.22 * light[at]
        + 0.12 * texture.patch[at]
        + 0.08 * texture.crown[at]
        + 0.06 * texture.grain[at]
    )
    image[at] = colour * tone[:, None]
    return (height * np.float32(look.shadow_length)).astype(np.float32)


def _orchard_rows(window: Layout, texture: Texture) -> np.ndarray:
    """0..1 crowns of orchard trees on a grid, or vine rows, in permanent-crop fields."""
    result = np.zeros(window.material.shape, dtype=np.float32)
    rows, cols = np.nonzero(window.material == Material.PERMANENT_CROP)
    if rows.size == 0:
        return result
    parcels = window.parcels
    pid = window.parcel[rows, cols]
    across = _stripes(parcels, pid, rows + texture.row, cols + texture.col)
    turned = dataclasses.replace(parcels, angle=parcels.angle + np.float32(np.pi / 2))
    along = _stripes(turned, pid, rows + texture.row, cols + texture.col)
    orchard = parcels.orchard[pid]
    crowns = np.where(orchard, across * along, across**3)
    result[rows, cols] = np.clip((crowns - 0.35) * 2.5, 0, 1)
    return result


def _sunlit(height: np.ndarray, sun_azimuth: float) -> np.ndarray:
    """Slope of a height field towards the sun, squashed to -1..1 (lit side positive)."""
    d_row, d_col = np.gradient(height)
    toward_sun = -(d_col * np.cos(sun_azimuth) - d_row * np.sin(sun_azimuth))
    return np.tanh(0.5 * toward_sun)


def _paint_water(image: np.ndarray, material: np.ndarray, greenness: np.ndarray) -> None:
    """Algae in still water in the dry season; muddy margins along every shore."""
    still = np.nonzero(material == Material.SEA_LAKE)
    bloom = 0.6 * (1 - greenness[still])
    image[still] = image[still] * (1 - bloom) + palette.ALGAE * bloom
    water = is_any(material, WATER)
    if not water.any() or water.all():
        return
    depth, at = ndimage.distance_transform_edt(water).astype(np.float32), np.nonzero(water)
    shallow = 0.7 * np.exp(-depth[at] / 2.5)[:, None]
    deep = 0.3 * (1 - np.exp(-depth[at] / 12))[:, None]
    image[at] = (image[at] * (1 - shallow) + palette.SHORE * shallow) * (1 - deep)


def _paint_roofs(image: np.ndarray, window: Layout, texture: Texture, look: DateLook) -> None:
    """Roofs in their colours; pitched roofs show lit and shaded faces, flat ones plant."""
    roof = window.roof
    covered = roof > 0
    if not covered.any():
        return
    pitched = palette.PITCHED[roof]
    # Chessboard distance to the eaves of a rectangle is a hip roof: four sloping faces.
    ridge = ndimage.distance_transform_cdt(pitched, metric="chessboard").astype(np.float32)
    faces = _sunlit(4 * ridge, look.sun_azimuth)
    at = np.nonzero(covered)
    tone = 1 + 0.2 * faces[at] * pitched[at] + 0.03 * texture.field[at] + 0.03 * texture.grain[at]
    # Flat roofs of halls carry plant (air conditioning, vents): small darker blocks.
    plant = palette.FLAT[roof[at]] & (texture.crown[at] > 1.9)
    tone = np.where(plant, 0.72 * tone, tone)
    image[at] = palette.ROOF_COLOURS[roof[at]] * tone[:, None]


def _cast_shadows(image: np.ndarray, elevation: np.ndarray, sun_azimuth: float) -> None:
    """Darken what lies in the shadow of taller things (a march along the sun's ray)."""
    reach = int(np.ceil(elevation.max())) if elevation.size else 0
    if reach == 0:
        return
    d_row, d_col = -np.sin(sun_azimuth), np.cos(sun_azimuth)
    shadow = np.zeros(elevation.shape, dtype=bool)
    height, width = elevation.shape
    for step in range(1, reach + 1):
        dy, dx = round(step * d_row), round(step * d_col)
        if abs(dy) >= height or abs(dx) >= width:
            break
        source = elevation[max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)]
        target = (slice(max(dy, 0), height - max(-dy, 0)), slice(max(dx, 0), width - max(-dx, 0)))
        shadow[target] |= source - step > elevation[target] + 0.5
    softness = ndimage.gaussian_filter(shadow.astype(np.float32), 0.7)[..., None]
    image *= 1 - softness * (1 - palette.SHADOW_TINT[: image.shape[-1]])


def _apply_look(image: np.ndarray, texture: Texture, look: DateLook) -> np.ndarray:
    """Light, colour balance, haze, optics and misregistration of the date."""
    bands = image.shape[-1]
    haze = np.clip(0.5 + 0.6 * texture.haze[look.date], 0, 1)[..., None] * look.haze
    image = image * (1 - haze) + 0.8 * haze
    gain, offset = np.asarray(look.gain, np.float32), np.asarray(look.offset, np.float32)
    image = image * gain[:bands] + offset[:bands]
    image = ndimage.gaussian_filter(image, (look.blur, look.blur, 0))
    if look.shift != (0.0, 0.0):
        for band in range(bands):
            image[..., band] = ndimage.shift(image[..., band], look.shift, order=1, mode="nearest")
    return image.astype(np.float32)


def finish(image: np.ndarray, look: DateLook, rng: np.random.Generator) -> np.ndarray:
    """Add sensor noise and quantise to uint8 ``(bands, height, width)``."""
    noisy = image + rng.normal(0, look.noise, size=image.shape).astype(np.float32)
    return np.clip(noisy * 255 + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1)
