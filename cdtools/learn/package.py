"""Model packages: model.safetensors plus model.json, as a folder or a .zip, never a pickle.

Loading reads JSON and tensors only, so opening a package cannot run code from it. A
package holding a pickle (or anything torch.load would unpickle) is refused, and so is a
zip member whose name would land outside the package.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import torch

from cdtools import __version__
from cdtools.chips.coarsen import FACTORS
from cdtools.chips.stats import NormStats
from cdtools.errors import CdtoolsError, OutputExistsError
from cdtools.io.raster import PathLike, atomic_path

FORMAT = "cdtools-change-model"
FORMAT_VERSION = 1
# A change model with downsample > 1 is written as version 2: readers of version 1 would
# ignore the field and predict at the wrong resolution, so they refuse it instead.
COARSE_FORMAT_VERSION = 2
CLASSIFIER_FORMAT = "cdtools-landcover-model"
WEIGHTS, SPEC = "model.safetensors", "model.json"
PICKLE_SUFFIXES = {".pkl", ".pickle", ".pth", ".pt", ".ckpt", ".bin", ".joblib", ".npy"}
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class PackageError(CdtoolsError):
    """A model package is missing, malformed or unsafe."""


class PackageSpec(Protocol):
    """What a package's model.json is read into and written from (ModelSpec, ClassifierSpec)."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model and use it, stored as model.json."""

    arch: str
    backbone: str | None  # None: the architecture has its own encoder (the FC family)
    in_channels: int
    chip_size: int
    stats: NormStats
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    bands: tuple[int, ...] | None = None
    threshold: float = 0.5
    class_names: tuple[str, ...] = ("NoChange", "Change")
    class_colours: tuple[str, ...] = ("#000000", "#ff2a1a")
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # pixels averaged along each side before the model (prepare_data's downsample)
    downsample: int = 1

    @property
    def extent(self) -> int:
        """The training chips' size in pixels of the images the model is given."""
        return self.chip_size * self.downsample

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self)
        spec["stats"] = asdict(self.stats)
        return {
            "format": FORMAT,
            "format_version": COARSE_FORMAT_VERSION if self.downsample > 1 else FORMAT_VERSION,
            "cdtools_version": __version__,
            **spec,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        if data.get("format") != FORMAT:
            hint = (
                "; load land-cover classifiers with LandCoverClassifier.from_model"
                if data.get("format") == CLASSIFIER_FORMAT
                else ""
            )
            raise PackageError(
                f"model.json is not a cdtools change model (format={data.get('format')!r}){hint}."
            )
        if data.get("format_version", 0) > COARSE_FORMAT_VERSION:
            raise PackageError(
                f"this model package has format {data['format_version']}, newer than this cdtools "
                f"reads ({COARSE_FORMAT_VERSION}); upgrade cdtools."
            )
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("downsample", 1) not in FACTORS:
            raise PackageError(
                f"model.json has downsample={values['downsample']!r}; cdtools models are "
                f"trained with one of {FACTORS}. The package is damaged: save it again."
            )
        values["stats"] = NormStats(
            **{k: tuple(v) if k != "source" else v for k, v in data["stats"].items()}
        )
        for key in ("bands", "class_names", "class_colours"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class ClassifierSpec:
    """Everything needed to rebuild a land-cover classifier and use it, stored as model.json."""

    backbone: str
    classes: tuple[str, ...]
    colours: tuple[str, ...]
    bands: tuple[str, ...]
    input_size: int
    stats: NormStats
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        """Bands the classifier takes."""
        return len(self.bands)

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self)
        spec["stats"] = asdict(self.stats)
        return {
            "format": CLASSIFIER_FORMAT,
            "format_version": FORMAT_VERSION,
            "cdtools_version": __version__,
            **spec,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassifierSpec:
        if data.get("format") != CLASSIFIER_FORMAT:
            hint = (
                "; load change models with ChangeDetector.from_model"
                if data.get("format") == FORMAT
                else ""
            )
            raise PackageError(
                f"model.json is not a cdtools land-cover classifier "
                f"(format={data.get('format')!r}){hint}."
            )
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise PackageError(
                f"this classifier has format {data['format_version']}, newer than this cdtools "
                f"reads ({FORMAT_VERSION}); upgrade cdtools."
            )
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        stats = data["stats"]
        values["stats"] = NormStats(tuple(stats["mean"]), tuple(stats["std"]), stats["source"])
        for key in ("classes", "colours", "bands"):
            values[key] = tuple(values[key])
        return cls(**values)


def package_folder(name_or_path: PathLike, data_path: PathLike | None) -> Path:
    """Where ``save`` writes: a bare name goes to ``<data folder>/models/<name>``, as
    arcgis.learn does; anything else is used as given."""
    path = Path(name_or_path)
    if len(path.parts) == 1 and data_path is not None:
        return Path(data_path) / "models" / path
    return path


def write_package(
    folder: PathLike,
    spec: PackageSpec,
    state: dict[str, torch.Tensor],
    *,
    zip_too: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/model.json`` (and ``folder.zip``)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if (folder / SPEC).exists() and not overwrite:
        raise OutputExistsError(
            f"{folder} already holds a model; pass overwrite=True to replace it."
        )
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    with atomic_path(folder / SPEC) as tmp:
        tmp.write_text(json.dumps(spec.to_json(), indent=2))
    if zip_too:
        with atomic_path(folder.with_suffix(".zip")) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for name in (SPEC, WEIGHTS):
                archive.write(folder / name, f"{folder.name}/{name}")
    return folder


def read_package(
    path: PathLike, *, spec_class: Any = ModelSpec
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Read a package folder, .zip or model.json path, refusing anything unsafe.

    ``spec_class`` reads model.json (its ``from_json``): :class:`ModelSpec` for change
    models, :class:`ClassifierSpec` for land-cover classifiers.
    """
    from safetensors.torch import load

    spec, weights = read_package_bytes(path, spec_class=spec_class)
    try:
        return spec, load(weights)
    except Exception as err:  # safetensors raises its own error types for broken files
        raise _not_safetensors(path, err) from None


def read_package_bytes(path: PathLike, *, spec_class: Any = ModelSpec) -> tuple[Any, bytes]:
    """As :func:`read_package`, with the weights left as the safetensors file's bytes (their
    layout checked, the tensors not decoded): what scene inference ships to its workers."""
    path = Path(path)
    if not path.exists():
        raise PackageError(f"{path} does not exist; pass a model folder, its .zip or model.json.")
    files = _zip_members(path) if path.suffix == ".zip" else _folder_members(path)
    for name, blob in files.items():
        # safetensors files start with their header length, which may look like pickle magic.
        looks_pickled = (
            name != WEIGHTS
            and not name.endswith("/" + WEIGHTS)
            and (blob[:2] in PICKLE_MAGIC or (blob[:2] == b"PK" and b"data.pkl" in blob[:4096]))
        )
        if PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES or looks_pickled:
            raise PackageError(
                f"{path.name} contains {name}, a pickle; cdtools never unpickles model files "
                "(they can run code). Re-save the model with cdtools (ChangeDetector.save or "
                "LandCoverClassifier.save)."
            )
    names = {PurePosixPath(n).name: n for n in files}
    if SPEC not in names or WEIGHTS not in names:
        raise PackageError(f"{path} is not a cdtools model package: it needs {SPEC} and {WEIGHTS}.")
    try:
        spec = spec_class.from_json(json.loads(files[names[SPEC]]))
    except (ValueError, KeyError, TypeError) as err:
        raise PackageError(f"{path}'s {SPEC} is malformed ({err}).") from None
    weights = files[names[WEIGHTS]]
    try:
        _check_safetensors_layout(weights)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise _not_safetensors(path, err) from None
    return spec, weights


def _check_safetensors_layout(blob: bytes) -> None:
    """Raise ValueError unless ``blob`` is laid out as a safetensors file: an 8-byte header
    length, a JSON header, and tensor data that ends exactly where the file does."""
    size = int.from_bytes(blob[:8], "little")
    if len(blob) < 8 or size > len(blob) - 8:
        raise ValueError("the header runs past the end of the file")
    header = json.loads(blob[8 : 8 + size])
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    if max(ends, default=0) != len(blob) - 8 - size:
        raise ValueError("the tensor data does not fill the file")


def _not_safetensors(path: PathLike, err: Exception) -> PackageError:
    return PackageError(
        f"{path}'s {WEIGHTS} is not a safetensors file ({type(err).__name__}); "
        "re-save the model with cdtools."
    )


def _folder_members(path: Path) -> dict[str, bytes]:
    folder = path.parent if path.is_file() else path
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _zip_members(path: Path) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise PackageError(f"{path} is not a zip file.") from None
    with archive:
        members = {}
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise PackageError(
                    f"{path.name} has a member {info.filename!r} that would land outside the "
                    "package folder; refusing to open it."
                )
            if not info.is_dir():
                members[info.filename] = archive.read(info)
        return members
