"""Files of the data manifest on disk: verified against their checksums, downloaded with
pooch (nothing stays unless it verifies), archives unpacked. :mod:`cdtools.io.manifest`
says which files, from where and to where.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pooch

from cdtools.errors import ChecksumError, DataUnavailableError

logger = logging.getLogger(__name__)

#: Seconds a download may wait for the server to connect or send; offline fails fast.
DOWNLOAD_TIMEOUT_S = 10.0

_verified: set[tuple[str, int, int, str]] = set()  # (file, size, mtime, checksum) seen good


def verify(file: Path, spec: Mapping[str, Any], name: str) -> None:
    """Raise ChecksumError unless ``file`` matches the size and checksum of ``spec``.

    A full checksum wins; without one, the sha256 prefix is checked as torch.hub does.
    """
    checksum, prefix = spec["checksum"], spec.get("sha256_prefix")
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns, str(checksum or prefix))
    if key in _verified:
        return
    fix = f"delete it and put a fresh copy from {spec['url']} there, or run cdtools.fetch({name!r})"
    if spec["size"] is not None and stat.st_size != spec["size"]:
        raise ChecksumError(
            f"{file} has {stat.st_size} bytes but {name!r} expects {spec['size']}; {fix}"
        )
    if not checksum and not prefix:
        sha = pooch.file_hash(str(file), alg="sha256")
        logger.warning("%s: the manifest has no checksum to verify it with; sha256 %s", file, sha)
        return
    alg, _, want = checksum.partition(":") if checksum else ("sha256", ":", prefix)
    got = pooch.file_hash(str(file), alg=alg)
    if not (got == want if checksum else got.startswith(want)):
        what = "" if checksum else " prefix"
        raise ChecksumError(
            f"{file} does not match {name!r} ({alg}{what} expected {want}, got {got}); "
            f"it is damaged or another version: {fix}"
        )
    _verified.add(key)


def is_valid(file: Path, spec: Mapping[str, Any], name: str) -> bool:
    """Whether ``file`` verifies; a file that does not is logged, to be downloaded again."""
    try:
        verify(file, spec, name)
    except ChecksumError as err:
        logger.warning("%s; downloading it again", err)
        return False
    return True


def download(name: str, spec: Mapping[str, Any], url: str, dest: Path, progress: bool) -> None:
    """Download one file into ``dest`` with pooch; nothing stays unless it verifies."""
    import requests  # pooch imports it lazily too

    final = dest / spec["name"]
    checksum = spec["checksum"]
    # Without a full checksum pooch cannot check, so download under a temporary name
    # and move into place only after our own check (sha256 prefix, size).
    part = final if checksum else dest / f".{spec['name']}.part"
    part.unlink(missing_ok=True)
    downloader = None
    if url.startswith(("http://", "https://")):
        downloader = pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S)
    logger.info("downloading %s from %s to %s", name, url, dest)
    try:
        pooch.retrieve(url, known_hash=checksum, fname=part.name, path=dest, downloader=downloader)
    except ValueError as err:
        if "does not match the known hash" not in str(err):
            raise DataUnavailableError(f"could not download {name} from {url} ({err})") from None
        # pooch already deleted the download
        raise ChecksumError(
            f"{spec['name']} downloaded from {url} does not match {name!r} ({err}); "
            "nothing was kept: check the URL, or the manifest entry if the file changed upstream"
        ) from None
    except requests.exceptions.RequestException as err:
        raise DataUnavailableError(
            f"could not download {name} from {url} ({_reason(err)}); download it on a machine "
            f"with internet and put {spec['name']} in {dest}, then call again"
        ) from None
    if part != final:
        try:
            verify(part, spec, name)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, final)


def _reason(err: Exception) -> str:
    import requests

    text = str(err)
    if isinstance(err, requests.exceptions.Timeout):
        return f"no answer within {DOWNLOAD_TIMEOUT_S:g} s"
    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    if "Name or service not known" in text or "NameResolution" in text or "getaddrinfo" in text:
        return "host name could not be resolved"
    if "refused" in text.lower():
        return "connection refused"
    return f"{type(err).__name__}: {text[:200]}"


def unpacked(entry: Mapping[str, Any], folder: Path) -> bool:
    """Whether the paths the entry's layout checks are all in ``folder``."""
    return all((folder / rel).exists() for rel in entry["layout"]["check"])


def unpack(name: str, entry: Mapping[str, Any], folder: Path) -> None:
    """Unpack every archive of ``entry`` into ``folder``; all or nothing per call."""
    archives = [spec for spec in entry["files"] if spec.get("extract")]
    if not archives:
        return
    check = ", ".join(entry["layout"]["check"])
    scratch = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder))
    try:
        for spec in archives:
            kind = pooch.Unzip if spec["extract"] == "zip" else pooch.Untar
            logger.info("unpacking %s into %s", spec["name"], folder)
            try:
                kind(extract_dir=str(scratch))(str(folder / spec["name"]), "download", None)
            except (OSError, RuntimeError, zipfile.BadZipFile, tarfile.TarError) as err:
                raise DataUnavailableError(
                    f"could not unpack {spec['name']} of {name!r} ({err}); unpack it by hand "
                    f"into {folder} so that {check} exist there, then call again"
                ) from None
        for item in sorted(scratch.rglob("*")):  # move file by file: archives may share folders
            target = folder / item.relative_to(scratch)
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not unpacked(entry, folder):
        raise DataUnavailableError(
            f"unpacked {name!r} into {folder} but {check} are not all there; the archives "
            "have another layout than the manifest says: unpack them by hand, then call again"
        )
