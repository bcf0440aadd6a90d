"""write_raster: stream a (lazy) georeferenced DataArray to a Cloud Optimized GeoTIFF.

Chunks are computed by dask and written window by window into a tiled GeoTIFF, so the
array is never held whole; GDAL's COG driver then adds overviews and lays the file out as
a COG. Both steps write temporary files beside the output, which appears under its name
only when everything has succeeded.

Memory stays flat in scene size: on dask's local schedulers the chunks are computed a
batch at a time with GDAL's block cache capped (:mod:`cdtools.io.blocks`). A
``dask.distributed`` cluster schedules the whole store itself.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

from cdtools.errors import CdtoolsError, OutputExistsError, ParameterError
from cdtools.io.blocks import GDAL_CACHE_MB
from cdtools.io.raster import PathLike, atomic_path

log = logging.getLogger(__name__)

BLOCK = 512
OverviewResampling = Literal[
    "nearest", "average", "bilinear", "cubic", "cubicspline", "lanczos", "mode", "rms"
]
"""How GDAL's COG driver may make overviews (its OVERVIEW_RESAMPLING, in lower case)."""


class WorkerDiedError(CdtoolsError):
    """A dask worker died while computing the output; nothing was written."""


def write_raster(
    da: Any,
    path: PathLike,
    *,
    cog: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    compress: str = "deflate",
    overview_resampling: OverviewResampling = "average",
) -> Path:
    """Compute ``da`` chunk by chunk and write it to ``path`` as a tiled, compressed GeoTIFF.

    Args:
        da: a ``(y, x)`` or ``(band, y, x)`` DataArray with rioxarray georeferencing,
            lazy (dask) or in memory, such as :func:`cdtools.predict_scene`'s result.
        path: the GeoTIFF to write.
        cog: lay it out as a Cloud Optimized GeoTIFF with overviews (default), or write
            a plain tiled GeoTIFF.
        overwrite: replace an existing file (only once the new one is complete).
        progress: show a progress bar while chunks are computed.
        compress: GDAL compression ("deflate", "lzw", "zstd", ...).
        overview_resampling: how COG overviews are made: "average", "nearest",
            "bilinear", "cubic", "cubicspline", "lanczos", "mode" or "rms".

    Returns:
        The path written. Runs on dask's threaded scheduler, or on the active
        ``dask.distributed`` Client, whose workers must see ``path``'s folder.

    Example:
        >>> write_raster(predict_scene(detector, pair), "change.tif")  # doctest: +SKIP
        PosixPath('change.tif')
    """
    import rasterio
    import rasterio.shutil
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    from rasterio.errors import NotGeoreferencedWarning

    path = Path(path)
    if path.is_dir():
        raise ParameterError(f"{path} is a folder; give the GeoTIFF's file name.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if not {"y", "x"} <= set(da.dims):
        raise ParameterError(f"write_raster needs y and x dimensions, got {da.dims}.")
    with atomic_path(path) as tmp, warnings.catch_warnings():
        if da.rio.crs is None:  # a map in pixel coordinates: rasterio would say so per file
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
        stream = tmp.with_name(tmp.name + ".stream.tif") if cog else tmp
        try:
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
                _stream(da, stream, compress, progress)
                if cog:
                    rasterio.shutil.copy(
                        stream, tmp, driver="COG", compress=compress.upper(),
                        blocksize=BLOCK, overview_resampling=overview_resampling.upper(),
                        bigtiff="IF_SAFER",
                    )  # fmt: skip
        finally:
            if cog:
                stream.unlink(missing_ok=True)
    log.debug("wrote %s", path)
    return path


def _stream(da: Any, path: Path, compress: str, progress: bool) -> None:
    """Write every chunk of ``da`` into a tiled GeoTIFF at ``path``."""
    client = active_client()
    lock: Any = threading.Lock()
    if client is not None:
        from distributed import Lock

        lock = Lock(f"cdtools-write-{path.name}")
    description = da.attrs.get("long_name")
    # rioxarray creates the file (georeferencing, nodata, tags) and returns the store of
    # the chunks, or writes an in-memory array at once and returns None. recalc_transform
    # =False: the pixel size as stored (0.6), not as coordinates that went through floating
    # point give it back (0.6000000000004595)
    delayed = da.rio.to_raster(
        path, driver="GTiff", tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
        compress=compress, lock=lock, compute=False, windowed=True, recalc_transform=False,
    )  # fmt: skip
    if delayed is not None and client is not None:
        _compute_on_cluster(delayed, client, progress)
    elif delayed is not None:
        _store_a_few_chunks_at_a_time(da, path, lock, progress)
    if description:
        import rasterio

        with rasterio.open(path, "r+") as dst:
            dst.set_band_description(1, str(description))


def _store_a_few_chunks_at_a_time(da: Any, path: Path, lock: Any, progress: bool) -> None:
    """Compute ``da``'s chunks a batch at a time (:mod:`cdtools.io.blocks`) and write
    each into the GeoTIFF rioxarray created at ``path``."""
    import rasterio
    from tqdm.auto import tqdm
    from xarray.conventions import encode_cf_variable

    from cdtools.io.blocks import store_in_batches

    with rasterio.open(path) as dst:
        dtype = dst.dtypes[0]
    data = encode_cf_variable(da.variable).data.astype(dtype)  # as rioxarray stores it
    bar = tqdm(
        total=data.npartitions, desc="chunks", unit="chunk", leave=False, disable=not progress
    )
    with bar:
        store_in_batches(data, _Windows(path, lock), done=bar.update)


class _Windows:
    """Writes ``windows[band, y, x] = values`` (or ``[y, x]``) into a GeoTIFF, one writer
    at a time."""

    def __init__(self, path: Path, lock: Any) -> None:
        self.path, self.lock = path, lock

    def __setitem__(self, place: tuple[slice, ...], values: Any) -> None:
        import rasterio
        from rasterio.windows import Window

        rows, cols = place[-2:]
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        bands = 1 if len(place) == 2 else list(range(place[0].start + 1, place[0].stop + 1))
        with self.lock, rasterio.open(self.path, "r+") as dst:
            dst.write(values, bands, window=window)


def active_client() -> Any:
    """The active ``dask.distributed`` Client, or None (no cluster, or none installed)."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def _compute_on_cluster(delayed: Any, client: Any, progress: bool) -> None:
    from distributed import KilledWorker
    from distributed import progress as show_progress

    future = client.compute(delayed)
    try:
        if progress:
            show_progress(future)
        future.result()
    except KilledWorker as err:
        raise WorkerDiedError(
            f"a dask worker died while computing {err.task!r} and dask's retries ran out "
            "(the worker logs say why; a memory limit is the usual cause). No output was "
            "written; give the workers more memory or use smaller chunks, then run again."
        ) from None
    finally:
        future.release()
