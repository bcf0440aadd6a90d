"""detect_change: an unsupervised change map of any aligned pair, lazily, chunk by chunk.

The method is fitted on a regular-grid sample of the pair's valid pixels
(:mod:`cdtools.unsupervised.sample`), a threshold is chosen on the statistic of that
sample without any truth (:mod:`cdtools.unsupervised.threshold`), and the statistic is
applied to every chunk with dask (:mod:`cdtools.unsupervised.score_map`). The result is
encoded as :func:`cdtools.predict_scene` encodes change probability: uint8
``min(round(255 s), 254)``, 255 where either date has no data, for a change score
``s = T / (T + T0)`` in [0, 1) of the statistic T, with T0 the automatic threshold: 0.5
is the threshold, whatever the statistic's own range, and the uint8 map keeps its
resolution there (a chi-square CDF would put it at 0.9999).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cdtools.errors import CdtoolsWarning, GridError, ParameterError
from cdtools.scene.changemap import NODATA
from cdtools.unsupervised.cva import Cva
from cdtools.unsupervised.irmad import Irmad
from cdtools.unsupervised.pca_kmeans import BLOCK, PcaKmeans
from cdtools.unsupervised.sample import DEFAULT_SAMPLE, grid_sample
from cdtools.unsupervised.score_map import score_map
from cdtools.unsupervised.threshold import RULES

if TYPE_CHECKING:
    import xarray as xr

Method = Literal["irmad", "cva", "pca_kmeans"]
Threshold = Literal["auto", "otsu", "kittler_illingworth", "chi2"]
METHODS = ("irmad", "cva", "pca_kmeans")
CHI2_ALPHA = 0.01  # threshold="chi2": change where no change has probability below 1 %
AUTO = {"irmad": "otsu", "cva": "otsu", "pca_kmeans": "kmeans"}  # chosen on sample worlds 0-2
DEFAULT_CHUNK = 1024


def detect_change(
    pair: Any,
    *,
    method: Method = "irmad",
    threshold: Threshold | float = "auto",
    sample: int = DEFAULT_SAMPLE,
    block: int = BLOCK,
    seed: int = 0,
) -> xr.DataArray:
    """Lazy unsupervised change score of an aligned pair, on the pair's grid.

    Args:
        pair: a ``(time, band, y, x)`` DataArray from :func:`cdtools.load_pair` (NaN: no
            data); integer values are read as float, so uint16 and int16 cannot overflow.
        method: "irmad" (iteratively reweighted MAD, Nielsen 2007: blind to any linear
            radiometric difference between the dates), "cva" (change vector analysis of
            per-date standardised bands) or "pca_kmeans" (Celik 2009).
        threshold: how change is told from no change, without truth: "auto" (Otsu on the
            statistic for cva, on its square root for irmad, the k-means boundary for
            pca_kmeans), "otsu", "kittler_illingworth" (on the same scale), "chi2"
            (irmad only: no-change probability below 1 %), or a score in [0, 1) on the
            automatic map's scale (0.5: "auto"; higher: less change), chosen by eye.
        sample: at most this many pixels, on a regular grid, fit every statistic.
        block: pca_kmeans' block side h (odd).
        seed: k-means' seed (pca_kmeans).

    Returns:
        A lazy uint8 ``(y, x)`` DataArray with the pair's CRS and transform:
        ``min(round(255 s), 254)`` for the change score ``s = T / (T + T0)`` of the
        method's statistic T, 255 (its ``rio.nodata``) where either date has no data.
        T is the standardised change magnitude (cva), the chi-square statistic Z (irmad)
        or the ratio of a pixel's distances to the no-change and change k-means centres
        (pca_kmeans); T0 (``attrs["score_reference"]``) is the threshold the named rule
        picks ("auto"'s for a number), so such a map's threshold is 0.5.
        ``attrs["threshold"]`` is the threshold as a score (change: value / 255 above
        it; what :func:`cdtools.predictions_to_regions` uses),
        ``attrs["threshold_statistic"]`` the same in T. Compute it, or stream it to disk
        with :func:`cdtools.write_raster`.

    Raises:
        ParameterError: an unknown method or threshold, or a pair that is not
            ``(time=2, band, y, x)``.
        GridError: a band has no data at all in one date (different band counts).

    Warns:
        CdtoolsWarning: no pixel has data on both dates (the map is all 255), or the dates
            do not differ (the map is all 0 where there is data).

    Example:
        >>> pair = load_pair("before.tif", "after.tif")  # doctest: +SKIP
        >>> change = detect_change(pair, method="irmad")  # doctest: +SKIP
        >>> change.attrs["threshold"], change.attrs["threshold_method"]  # doctest: +SKIP
        (0.5, 'otsu')
        >>> write_raster(change, "change.tif")  # doctest: +SKIP
    """
    data = _check(pair, method, threshold, block)
    window = block if method == "pca_kmeans" else 1
    taken = grid_sample(data, size=sample, window=window)
    bands = data.shape[1]
    if len(taken) < 2 * bands + 2:
        return _empty(data, pair, method, valid=len(taken) > 0)
    if np.array_equal(taken[:, 0], taken[:, 1]):
        return _empty(data, pair, method, valid=True)
    if method == "irmad":
        model: Any = Irmad.fit(taken)
        if model.degenerate:
            return _empty(data, pair, method, valid=True)
    elif method == "cva":
        model = Cva.fit(taken)
    else:
        model = PcaKmeans.fit(taken, seed=seed)
    values = _sample_statistic(model, taken)
    if not np.any(values > 1e-6 * max(1.0, float(np.abs(values).max(initial=0)))):
        return _empty(data, pair, method, valid=True)
    rule, reference = _threshold(model, values, threshold, bands)
    if isinstance(threshold, str):
        score, cut = 0.5, reference
    else:
        score, cut = float(threshold), reference * float(threshold) / (1 - float(threshold))
    change = score_map(data, model, reference)
    attrs = {
        "long_name": f"change score x 255 ({method}; 255: no data)",
        "method": method,
        "statistic": model.description,
        "score": f"T / (T + {reference:.6g}) for the statistic T",
        "score_reference": round(reference, 6),
        "threshold": round(float(score), 6),
        "threshold_statistic": round(float(cut), 6),
        "threshold_method": "given" if not isinstance(threshold, str) else rule,
        "sample_pixels": int(taken.shape[0] * window * window),
        **model.attrs(),
    }
    return _as_dataarray(change, pair, attrs)


def _check(pair: Any, method: str, threshold: Any, block: int) -> Any:
    import dask.array as da

    if method not in METHODS:
        raise ParameterError(f"method must be irmad, cva or pca_kmeans, got {method!r}.")
    named = ("auto", "otsu", "kittler_illingworth", "chi2")
    if isinstance(threshold, str):
        if threshold not in named or (threshold == "chi2" and method != "irmad"):
            raise ParameterError(
                f"threshold must be auto, otsu, kittler_illingworth, chi2 (irmad only) or a "
                f"score in [0, 1), got {threshold!r} for {method}."
            )
    elif not 0 <= float(threshold) < 1:
        raise ParameterError(
            f"a threshold given as a number is a score in [0, 1), got {threshold}."
        )
    if method == "pca_kmeans" and (block < 3 or block % 2 == 0):
        raise ParameterError(f"block must be odd and at least 3, got {block}.")
    dims = tuple(getattr(pair, "dims", ()))
    if dims != ("time", "band", "y", "x") or pair.sizes["time"] != 2:
        sizes = dict(pair.sizes) if hasattr(pair, "sizes") else getattr(pair, "shape", None)
        raise ParameterError(
            f"pair must be a (time=2, band, y, x) DataArray from load_pair, got {sizes}; "
            "give both dates with the same bands (load_pair(before, after, bands=[...]))."
        )
    data = pair.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(2, -1, DEFAULT_CHUNK, DEFAULT_CHUNK))
    if not np.issubdtype(data.dtype, np.floating):  # uint16, int16, ...: no overflow in float
        data = data.astype(np.float64 if data.dtype.itemsize > 2 else np.float32)
    if min(data.shape[2:]) < 1:
        raise GridError(f"the pair has no pixels ({data.shape[2]} x {data.shape[3]}).")
    return data.rechunk({0: -1, 1: -1})


def _sample_statistic(model: Any, taken: np.ndarray) -> np.ndarray:
    """The statistic of every sampled pixel (pca_kmeans: of each block's centre)."""
    if model.halo == 0:
        pixels = np.moveaxis(taken[:, :, :, 0, 0], 0, 2)[..., None]  # (2, band, n, 1)
        return model.statistic(pixels)[:, 0].astype(np.float64)
    return model.sample_statistic(taken)


def _threshold(model: Any, values: np.ndarray, threshold: Any, bands: int) -> tuple[str, float]:
    """(rule, threshold in the statistic's units) of a named rule; "auto"'s for a number."""
    rule = AUTO[model.name] if not isinstance(threshold, str) or threshold == "auto" else threshold
    if rule == "kmeans":
        return rule, 1.0
    if rule == "chi2":
        from scipy.stats import chi2

        return rule, float(chi2.isf(CHI2_ALPHA, bands))
    power = model.threshold_power  # the rule cuts T ** power (irmad: sqrt(Z))
    cut = RULES[rule](values**power) ** (1 / power)
    if cut <= 0:  # a degenerate histogram: fall back on the typical pixel
        cut = float(np.median(values[values > 0]))
    return rule, cut


def _empty(data: Any, pair: Any, method: str, *, valid: bool) -> Any:
    """All 0 where both dates have data (255 elsewhere), with a warning saying why."""
    if valid:
        why = (
            "the two dates do not differ (identical, or a linear map of each other for "
            "irmad), or too few pixels have data on both: the change map is all 0; check "
            "that before and after are different images"
        )
    else:
        why = (
            "no pixel has data on both dates: the change map is all no data (255); check "
            "that the dates overlap and that their nodata values are right"
        )
    warnings.warn(why + ".", CdtoolsWarning, stacklevel=3)
    change = data.map_blocks(
        lambda b: np.where(np.isfinite(b).all(axis=(0, 1)), np.uint8(0), np.uint8(NODATA)),
        drop_axis=(0, 1), dtype=np.uint8, token=f"cdtools-detect-empty-{method}",
    )  # fmt: skip
    attrs = {
        "long_name": f"change score x 255 ({method}; 255: no data)",
        "method": method,
        "threshold": 0.5,
        "threshold_method": "none (no change found)",
    }
    return _as_dataarray(change, pair, attrs)


def _as_dataarray(change: Any, pair: Any, attrs: dict[str, Any]) -> Any:
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    coords = {dim: pair.coords[dim] for dim in ("y", "x") if dim in pair.coords}
    result = xr.DataArray(change, dims=("y", "x"), coords=coords, name="change_score", attrs=attrs)
    if pair.rio.crs is not None:
        result = result.rio.write_crs(pair.rio.crs)
    return result.rio.write_transform(pair.rio.transform()).rio.write_nodata(NODATA)
