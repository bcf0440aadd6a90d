"""predict_scene: the change map of a whole scene, lazily, chunk by chunk with dask.

It is cdtools' one inference engine: :meth:`cdtools.ChangeDetector.predict` is a thin
call of it on a pair in memory.

How chunks are stitched (written by hand: no library does this job). The scene has one
global grid of overlapping tiles (:func:`cdtools.scene.tiling.tile_starts`). Each tile
belongs to the chunk it starts in. A chunk reads its own pixels plus one tile's width
below and to the right (its halo, :mod:`cdtools.scene.halo`), predicts the tiles it
owns in batches, and returns their weighted sum and weights, which spill up to one tile
into the next chunks. Each output chunk then adds the spill of its upper and left
neighbours (overlap-add, :mod:`cdtools.scene.stitch`). So every tile is predicted exactly
once, and the result is the whole-scene blend whatever the chunking: chunk borders leave
no trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cdtools.errors import GridError, ParameterError
from cdtools.learn.package import ModelSpec
from cdtools.learn.precision import PRECISIONS, Precision, on_gpu
from cdtools.scene.changemap import LONG_NAMES, NODATA, encode_probability
from cdtools.scene.halo import with_halo
from cdtools.scene.model import SceneModel
from cdtools.scene.runtime import Runtime, check_runtime
from cdtools.scene.stitch import overlap_add
from cdtools.scene.tiling import blend_window, choose_tiling, tile_starts

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_CHUNK = 1024
BATCH_PIXELS = {False: 2**19, True: 2**23}  # pixels per forward pass: CPU, GPU
Encoding = Literal["uint8", "float32"]
"""How predict_scene returns probability: uint8 x 255 (255: no data), or float32 (NaN)."""


def predict_scene(
    model: Any,
    pair: Any,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    precision: Precision = "auto",
    chunk: int | None = None,
    tta: bool = False,
    encoding: Encoding = "uint8",
    runtime: Runtime = "torch",
) -> xr.DataArray:
    """Lazy change probability of a whole aligned pair, on the pair's grid.

    Args:
        model: a :class:`~cdtools.ChangeDetector` or the path of a model package.
        pair: a ``(time, band, y, x)`` DataArray from :func:`cdtools.load_pair`.
        tile: tile size in pixels, a multiple of 32 (default: for a fully convolutional
            model, the size between 448 and 640 whose tile grid over this scene predicts
            the fewest pixels; the model's chip size otherwise; smaller when the scene is).
        overlap: pixels shared by neighbouring tiles (default ``max(chip / 4, tile / 8)``).
        batch_size: tiles per forward pass (default: 0.5 megapixels on CPU, 8 on GPU,
            e.g. 2 and 32 tiles of 512).
        device: "cpu", "cuda", ... (default: each worker's GPU when it has one).
        precision: "fp32", "bf16" or "fp16"; "auto" is fp16 on GPUs, bf16 on CPUs that
            support it, fp32 otherwise.
        chunk: dask chunk size in pixels (default 1024; at least the tile size).
        tta: test-time augmentation: each tile's probability is the mean over its 8 flips
            and quarter turns (:func:`cdtools.learn.tta.dihedral_mean`), 8 times the compute;
            for models whose ``output`` is "logit" or "distance" (all of cdtools.models).
        encoding: "uint8" (default), what a GeoTIFF stores; or "float32", the blended
            probability itself, not quantised, for results kept in memory.
        runtime: what runs the forward pass: "torch" (default), or on the CPU the model's
            ONNX export in "onnxruntime" (fp32) or "openvino" (fp32 or bf16), each an extra
            to install (``pip install 'cdtools[openvino]'``); neither takes ``tta``.
            Measured in :mod:`cdtools.scene.runtime`.

    Returns:
        A lazy ``(y, x)`` DataArray. uint8: ``min(round(255 p), 254)`` for probability p
        (:func:`encode_probability`), 255 (its ``rio.nodata``) where either date has no
        data. float32: p, NaN where either date has no data; encoding it gives exactly the
        uint8 result. Compute it, or stream it to disk with :func:`cdtools.write_raster`.
        Runs on dask's threaded scheduler, or on a ``dask.distributed`` cluster when a
        Client is active.

    Example:
        >>> pair = load_pair("before.tif", "after.tif")  # doctest: +SKIP
        >>> change = predict_scene(detector, pair)  # doctest: +SKIP
        >>> write_raster(change, "change.tif")  # doctest: +SKIP
        >>> smoother = predict_scene(detector, pair, tta=True)  # doctest: +SKIP
    """
    import dask.array as da

    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}.")
    if encoding not in ("uint8", "float32"):
        raise ParameterError(f"encoding must be uint8 or float32, got {encoding!r}.")
    check_runtime(runtime, device=device, precision=precision, tta=tta)
    handle = SceneModel.of(model)
    spec = handle.spec
    if tta:
        _check_tta(spec)
    pair = _model_bands(pair, spec)
    height, width = pair.sizes["y"], pair.sizes["x"]
    tile, overlap = choose_tiling(
        spec.arch, spec.extent, height, width, tile=tile, overlap=overlap, largest=chunk or 640
    )
    chunk = chunk or max(DEFAULT_CHUNK, tile)
    if chunk < tile:
        raise ParameterError(f"chunk ({chunk}) must be at least the tile size ({tile}).")
    rows, cols = _chunks(height, chunk, tile), _chunks(width, chunk, tile)
    data = pair.data if isinstance(pair.data, da.Array) else da.asarray(pair.data)
    data = data.astype(np.float32).rechunk((2, data.shape[1], rows, cols))
    halo = with_halo(data, tile)
    options = {
        # Both dates' statistics: the model's, or each date's own (read once, sampled).
        "stats": tuple(spec.stats.for_image(data[d]) for d in (0, 1)),
        "tile": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "device": device,
        "precision": precision,
        "tta": tta,
        "runtime": runtime,
    }
    sums = da.map_blocks(
        _owned_tiles,
        halo,
        handle.shipped(),
        starts=(tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)),
        origins=(_origins(rows), _origins(cols)),
        size=(height, width),
        options=options,
        drop_axis=0,
        chunks=((2,), halo.chunks[2], halo.chunks[3]),
        dtype=np.float32,
        token="cdtools-predict-tiles",
    )
    encode = None if encoding == "float32" else encode_probability
    change = overlap_add(sums, rows, cols, tile, encode, dtype=np.dtype(encoding))
    return _as_dataarray(change, pair, spec, tile, overlap)


def _check_tta(spec: ModelSpec) -> None:
    """Refuse tta=True now, not on a worker, when the model's class cannot take it."""
    from cdtools.learn.tta import check_tta_model
    from cdtools.models import ARCHITECTURES

    if spec.arch in ARCHITECTURES:  # an unknown one fails where it is built
        check_tta_model(ARCHITECTURES[spec.arch])


def _model_bands(pair: Any, spec: ModelSpec) -> Any:
    if tuple(pair.dims) != ("time", "band", "y", "x") or pair.sizes["time"] != 2:
        raise ParameterError(
            f"pair must be a (time=2, band, y, x) DataArray from load_pair, got dims "
            f"{dict(pair.sizes)}."
        )
    bands = pair.sizes["band"]
    if bands != spec.in_channels and spec.bands is not None and max(spec.bands) < bands:
        pair = pair.isel(band=list(spec.bands))
    if pair.sizes["band"] != spec.in_channels:
        raise GridError(
            f"the pair has {bands} bands but the model takes {spec.in_channels}; pass imagery "
            "with the model's bands, or load the pair with them (load_pair(..., bands=[...]), "
            "or --bands on the command line)."
        )
    return pair


def _chunks(length: int, chunk: int, tile: int) -> tuple[int, ...]:
    """Chunk sizes along one axis; a last chunk shorter than a tile joins its neighbour."""
    sizes = [chunk] * (length // chunk)
    rest = length - sum(sizes)
    if rest and (rest >= tile or not sizes):
        sizes.append(rest)
    elif rest:
        sizes[-1] += rest
    return tuple(sizes)


def _origins(sizes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(v) for v in np.cumsum((0, *sizes[:-1])))


def _owned_tiles(
    block: np.ndarray,
    handle: SceneModel,
    *,
    starts: tuple[list[int], list[int]],
    origins: tuple[tuple[int, ...], tuple[int, ...]],
    size: tuple[int, int],
    options: dict[str, Any],
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Weighted sum (NaN where no data) and weights of the tiles that start in this chunk."""
    i, j = block_info[0]["chunk-location"][2:]  # type: ignore[index]
    y0, x0 = origins[0][i], origins[1][j]
    ends = (
        origins[0][i + 1] if i + 1 < len(origins[0]) else size[0],
        origins[1][j + 1] if j + 1 < len(origins[1]) else size[1],
    )
    tile, overlap = options["tile"], options["overlap"]
    own = [
        (r - y0, c - x0)
        for r in starts[0]
        if y0 <= r < ends[0]
        for c in starts[1]
        if x0 <= c < ends[1]
    ]
    valid = np.isfinite(block).all(axis=(0, 1))
    out = np.zeros((2, *block.shape[2:]), dtype=np.float32)
    out[0, ~valid] = np.nan  # no data: NaN, which every sum it enters keeps
    if not own:
        return out
    before, after = (
        np.where(valid, stats.normalise(date), np.float32(0))
        for stats, date in zip(options["stats"], block, strict=True)
    )
    windows: dict[tuple[bool, ...], np.ndarray] = {}
    step = options["batch_size"] or max(1, BATCH_PIXELS[on_gpu(options["device"])] // tile**2)
    for k in range(0, len(own), step):
        batch = own[k : k + step]
        crops = [(slice(None), slice(r, r + tile), slice(c, c + tile)) for r, c in batch]
        probs = handle.predict(
            np.stack([before[s] for s in crops]),
            np.stack([after[s] for s in crops]),
            device=options["device"],
            precision=options["precision"],
            tta=options["tta"],
            runtime=options["runtime"],
        )
        for (r, c), prob in zip(batch, probs, strict=True):
            gr, gc = r + y0, c + x0
            inner = (gr > 0, gr + tile < size[0], gc > 0, gc + tile < size[1])
            if inner not in windows:
                windows[inner] = blend_window(tile, overlap, inner=inner)
            out[0, r : r + tile, c : c + tile] += prob * windows[inner]
            out[1, r : r + tile, c : c + tile] += windows[inner]
    return out


def _as_dataarray(change: Any, pair: Any, spec: ModelSpec, tile: int, overlap: int) -> Any:
    import xarray as xr

    result = xr.DataArray(
        change,
        dims=("y", "x"),
        coords={"y": pair.coords["y"], "x": pair.coords["x"]},
        name="change_probability",
        attrs={
            "long_name": LONG_NAMES[change.dtype.name],
            "model": f"{spec.arch} ({spec.backbone})",
            "tile": tile,
            "overlap": overlap,
        },
    )
    if pair.rio.crs is not None:
        result = result.rio.write_crs(pair.rio.crs)
    nodata = NODATA if change.dtype == np.uint8 else np.nan
    return result.rio.write_transform(pair.rio.transform()).rio.write_nodata(nodata)
