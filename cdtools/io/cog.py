"""write_raster: stream a (lazy) georeferenced DataArray to a Cloud Optimized GeoTIFF.

Chunks are computed by dask and written window by window into a tiled GeoTIFF
(rioxarray's writer, under a lock), so the array is never held whole; GDAL's COG driver
then adds overviews and lays the file out as a COG. Both steps write temporary files
beside the output, which appears under its name only when everything has succeeded.

GDAL's block cache is capped while this runs (:data:`cdtools.io.blocks.GDAL_CACHE_MB`):
by default it may take 5 % of the RAM, and it kept every block of an 8192-pixel pair it
read. The chunks go to dask in one store, not in batches: predict_scene's chunks need
their neighbours' model outputs, which a batch would compute again (2.5x the model time).
"""

from __future__ import annotations

import logging
import threading
import warnings
from contextlib import nullcontext
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
    if delayed is not None:
        _compute(delayed, client, progress)
    if description:
        import rasterio

        with rasterio.open(path, "r+") as dst:
            dst.set_band_description(1, str(description))


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


def _compute(delayed: Any, client: Any, progress: bool) -> None:
    if client is None:
        from tqdm.dask import TqdmCallback  # a bar over the tasks of dask's local schedulers

        with TqdmCallback(desc="chunks", unit="task", leave=False) if progress else nullcontext():
            delayed.compute()
        return
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
