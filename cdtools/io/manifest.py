"""External datasets and weight files: find them on disk, or download and verify them once.

Every dataset and weight file cdtools knows about is an entry of ``data_manifest.yml``
(url, checksum, size, licence, citation, layout; see the comments at its top). There is one
copy of that file: the one at the repository root, found relative to this module. Set
``CDTOOLS_MANIFEST`` to read another file (an installed package also looks for a copy
inside itself). Datasets live under the data root: ``CDTOOLS_DATA``, else
``~/.cache/cdtools``; weights also where torch looks for them
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``).

On a machine with internet :func:`fetch` downloads with pooch, checks the checksum and
unpacks archives. On a machine without, put the files where the error message says and
:func:`path` (or :func:`fetch`) finds, verifies and unpacks them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from cdtools.errors import ChecksumError, DataUnavailableError
from cdtools.io.download import download, is_valid, unpack, unpacked, verify

logger = logging.getLogger(__name__)

MANIFEST_ENV = "CDTOOLS_MANIFEST"
DATA_ENV = "CDTOOLS_DATA"

PathLike = str | os.PathLike[str]
Manifest = Mapping[str, Any] | PathLike | None

_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_REQUIRED = ("kind", "title", "licence", "citation", "folder", "files", "layout", "source")


def load_manifest(path: PathLike | None = None) -> dict[str, Any]:
    """Read and check the data manifest.

    Args:
        path: a manifest file; by default ``$CDTOOLS_MANIFEST``, else the repository's
            ``data_manifest.yml``.

    Returns:
        The parsed manifest; ``manifest["entries"]`` maps each name to its entry.

    Raises:
        DataUnavailableError: the file is missing or an entry lacks a required field.

    Example:
        >>> sorted(load_manifest()["entries"])[:2]
        ['efficientnet-b0-imagenet', 'eurosat-rgb']
    """
    source = Path(path).expanduser() if path is not None else _default_manifest_path()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataUnavailableError(
            f"no data manifest at {source}; set {MANIFEST_ENV} to the path of data_manifest.yml"
        ) from None
    _validate(data, source)
    return data


def data_root() -> Path:
    """The folder datasets live in: ``$CDTOOLS_DATA``, else ``~/.cache/cdtools``.

    Example:
        >>> data_root()  # doctest: +SKIP
        PosixPath('/home/me/.cache/cdtools')
    """
    return Path(os.environ.get(DATA_ENV) or "~/.cache/cdtools").expanduser()


def torch_checkpoints_dir() -> Path:
    """Where torch.hub keeps downloaded weights, without importing torch.

    ``$TORCH_HOME/hub/checkpoints``; ``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``,
    i.e. ``~/.cache/torch``. If torch is already imported, ``torch.hub.get_dir()`` decides.
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def path(name: str, *, root: PathLike | None = None, manifest: Manifest = None) -> Path:
    """The local copy of a manifest entry, verified; never downloads.

    A dataset counts as present when the paths in its ``layout.check`` exist under
    ``<root>/<folder>``; if only its archives were placed there, they are verified and
    unpacked first. A weight file is looked for in ``<root>/<folder>`` and in the torch
    hub checkpoints folder, and its checksum (or sha256 prefix) is verified.

    Args:
        name: the entry, e.g. ``"levir-cd"`` or ``"resnet18-imagenet"``.
        root: the data root; default :func:`data_root`.
        manifest: a manifest dict or file; default :func:`load_manifest`.

    Returns:
        The dataset folder, or the weight file.

    Raises:
        DataUnavailableError: not there; the message names the files, URLs and folder.
        ChecksumError: a placed file does not match the manifest.

    Example:
        >>> path("levir-cd")  # doctest: +SKIP
        PosixPath('/home/me/.cache/cdtools/levir-cd')
    """
    entry = _entry(name, manifest)
    found = _locate(name, entry, _root(root))
    if found is None:
        raise _missing(name, entry, _root(root))
    return found


def fetch(
    name: str,
    *,
    root: PathLike | None = None,
    url: str | None = None,
    progress: bool = True,
    manifest: Manifest = None,
) -> Path:
    """Return :func:`path` if the entry is on disk, else download, verify and unpack it.

    Files go to ``<root>/<folder>``; weights, when ``root`` is not given, go to the torch
    hub checkpoints folder so that torchvision finds them too. A download whose checksum
    does not match is deleted. Offline, it fails within about
    ``cdtools.io.download.DOWNLOAD_TIMEOUT_S``.

    Args:
        name: the entry, e.g. ``"eurosat-rgb"``.
        root: the data root; default :func:`data_root`.
        url: another address (a mirror); for an entry of several files, the base URL the
            file names are appended to.
        progress: show a progress bar while downloading (as every cdtools verb does
            by default; nothing shows when the files are already there).
        manifest: a manifest dict or file; default :func:`load_manifest`.

    Returns:
        The dataset folder, or the weight file.

    Raises:
        DataUnavailableError: the download failed; the message says where to put the file.
        ChecksumError: the downloaded file does not match the manifest.

    Example:
        >>> folder = fetch("eurosat-rgb")  # doctest: +SKIP
        >>> sorted(p.name for p in (folder / "2750").iterdir())[:2]  # doctest: +SKIP
        ['AnnualCrop', 'Forest']
    """
    entry = _entry(name, manifest)
    try:
        found = _locate(name, entry, _root(root))
    except ChecksumError as err:
        logger.warning("%s; downloading it again", err)
        found = None
    if found is not None:
        return found
    folder = _root(root) / entry["folder"]
    weights = entry["kind"] == "weights"
    dest = torch_checkpoints_dir() if weights and root is None else folder
    files = entry["files"]
    for spec in files:
        target = dest / spec["name"]
        if target.is_file() and is_valid(target, spec, name):
            continue
        source = spec["url"] if url is None else url
        if url is not None and len(files) > 1:
            source = url.rstrip("/") + "/" + quote(spec["name"])
        download(name, spec, source, dest, progress)
    if weights:
        return dest / files[0]["name"]
    unpack(name, entry, folder)
    return folder


def _locate(name: str, entry: Mapping[str, Any], root: Path) -> Path | None:
    """What :func:`path` does, for an entry already looked up; None if its files are absent."""
    folder = root / entry["folder"]
    if entry["kind"] == "weights":
        spec = entry["files"][0]
        places = [folder / spec["name"], torch_checkpoints_dir() / spec["name"]]
        found = [p for p in places if p.is_file()]
        for i, candidate in enumerate(found):
            try:
                verify(candidate, spec, name)
                return candidate
            except ChecksumError:
                if i == len(found) - 1:
                    raise
        return None
    if unpacked(entry, folder):
        return folder
    if any(not (folder / s["name"]).is_file() for s in entry["files"]):
        return None
    for spec in entry["files"]:
        verify(folder / spec["name"], spec, name)
    unpack(name, entry, folder)
    return folder


def _default_manifest_path() -> Path:
    env = os.environ.get(MANIFEST_ENV)
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()  # cdtools/io/manifest.py
    repo_copy = here.parents[2] / "data_manifest.yml"
    return repo_copy if repo_copy.is_file() else here.parent / "data_manifest.yml"


def _validate(data: Any, source: Path) -> None:
    def bad(problem: str) -> DataUnavailableError:
        return DataUnavailableError(f"data manifest {source}: {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise bad("it has no 'entries' mapping")
    for name, entry in data["entries"].items():
        if not isinstance(entry, dict):
            raise bad(f"entry {name!r} is not a mapping")
        lacking = [key for key in _REQUIRED if key not in entry]
        if lacking:
            raise bad(f"entry {name!r} lacks {', '.join(lacking)}")
        folder = Path(str(entry["folder"]))
        if folder.is_absolute() or ".." in folder.parts:
            raise bad(f"entry {name!r}: folder must be relative, got {entry['folder']!r}")
        if not isinstance(entry["layout"], dict) or "description" not in entry["layout"]:
            raise bad(f"entry {name!r}: layout needs a description")
        if entry["kind"] not in ("dataset", "weights"):
            raise bad(f"entry {name!r}: kind must be dataset or weights")
        if not isinstance(entry["files"], list) or not entry["files"]:
            raise bad(f"entry {name!r}: files must be a non-empty list")
        if entry["kind"] == "weights" and (len(entry["files"]) != 1 or "torch_cache" not in entry):
            raise bad(f"entry {name!r}: weights need exactly one file and a torch_cache")
        if entry["kind"] == "dataset" and not entry["layout"].get("check"):
            raise bad(f"entry {name!r}: a dataset needs layout.check")
        for spec in entry["files"]:
            if not isinstance(spec, dict) or not {"name", "url", "checksum", "size"} <= set(spec):
                raise bad(f"entry {name!r}: each file needs name, url, checksum and size")
            if "/" in spec["name"] or "\\" in spec["name"]:
                raise bad(f"entry {name!r}: file name {spec['name']!r} must not hold a folder")
            checksum, prefix = spec["checksum"], spec.get("sha256_prefix")
            alg, _, digest = str(checksum).partition(":")
            if checksum is not None and len(digest) != _HEX_LENGTHS.get(alg, -1):
                raise bad(f"entry {name!r}: checksum {checksum!r} is not '<alg>:<hex>'")
            if checksum is not None and not re.fullmatch("[0-9a-f]+", digest):
                raise bad(f"entry {name!r}: checksum {checksum!r} is not lower-case hex")
            if prefix is not None and not re.fullmatch("[0-9a-f]{6,64}", str(prefix)):
                raise bad(f"entry {name!r}: sha256_prefix {prefix!r} is not hex")
            if spec.get("extract") not in (None, "zip", "tar"):
                raise bad(f"entry {name!r}: extract must be zip, tar or null")


def _entry(name: str, manifest: Manifest) -> dict[str, Any]:
    if manifest is None or not isinstance(manifest, Mapping):
        manifest = load_manifest(manifest)
    entries = manifest["entries"]
    if name not in entries:
        known = ", ".join(sorted(entries))
        raise DataUnavailableError(f"no dataset or weights called {name!r}; known: {known}")
    return entries[name]


def _root(root: PathLike | None) -> Path:
    return data_root() if root is None else Path(root).expanduser()


def _missing(name: str, entry: Mapping[str, Any], root: Path) -> DataUnavailableError:
    where = str(root / entry["folder"])
    if entry["kind"] == "weights":
        where += f" or {torch_checkpoints_dir()}"
    files = "; ".join(f"{s['name']} (from {s['url']})" for s in entry["files"])
    unpacked = ""
    if entry["kind"] == "dataset":
        unpacked = f" (or the unpacked {', '.join(entry['layout']['check'])})"
    return DataUnavailableError(
        f"{entry['title']} ({name!r}) is not on this machine: put {files} in {where}"
        f"{unpacked}, then call again; on a machine with internet cdtools.fetch({name!r}) "
        "downloads it"
    )
