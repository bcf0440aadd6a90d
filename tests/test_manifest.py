"""The data manifest: the real file's contents, and fetch/path against a local HTTP server.

No test touches the network: downloads come from a server on 127.0.0.1 that the test
starts itself, and the data root and torch cache point into tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdtools.errors import ChecksumError, DataUnavailableError
from cdtools.io import manifest

REPO_MANIFEST = Path(__file__).resolve().parents[1] / "data_manifest.yml"
WEIGHTS = b"not really a state dict, but bytes with a known hash\n" * 50
ZIP_MEMBERS = {"A/train_1.png": b"before", "B/train_1.png": b"after", "label/train_1.png": b"m"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


ARCHIVE = make_zip(ZIP_MEMBERS)


class Server:
    """A local HTTP server for a dict of path -> bytes that counts the requests it gets."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server({"/w/tiny-1a2b3c4d.pth": WEIGHTS, "/d/tiny.zip": ARCHIVE})
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the data root and torch cache inside tmp_path; never go through a proxy."""
    monkeypatch.setenv("CDTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CDTOOLS_MANIFEST", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def weights_entry(url: str, **spec: Any) -> dict[str, Any]:
    file = {"name": "tiny-1a2b3c4d.pth", "url": url, "checksum": f"sha256:{sha256(WEIGHTS)}"}
    file |= {"size": len(WEIGHTS), **spec}
    return {
        "kind": "weights",
        "title": "Tiny weights",
        "licence": "CC0",
        "citation": "nobody",
        "folder": "weights",
        "files": [file],
        "torch_cache": {"file": file["name"], "dir": "$TORCH_HOME/hub/checkpoints"},
        "layout": {"description": "one file", "contains": [file["name"]]},
        "source": "made by the test",
    }


def dataset_entry(url: str, **spec: Any) -> dict[str, Any]:
    file = {"name": "tiny.zip", "url": url, "checksum": f"md5:{hashlib.md5(ARCHIVE).hexdigest()}"}
    file |= {"size": len(ARCHIVE), "extract": "zip", **spec}
    return {
        "kind": "dataset",
        "title": "Tiny dataset",
        "licence": "CC0",
        "citation": "nobody",
        "folder": "tiny",
        "files": [file],
        "layout": {"description": "A, B, label", "check": ["A", "B", "label"]},
        "source": "made by the test",
    }


def write_manifest(folder: Path, **entries: dict[str, Any]) -> Path:
    path = folder / "manifest.yml"
    path.write_text(yaml.safe_dump({"schema": 1, "entries": entries}), encoding="utf-8")
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the real manifest ---------------------------------------------------------------


def test_real_manifest_has_every_entry_with_plausible_fields() -> None:
    data = manifest.load_manifest()
    entries = data["entries"]
    assert set(entries) == {
        "levir-cd",
        "oscd",
        "eurosat-rgb",
        "sztaki-airchange",
        "resnet18-imagenet",
        "resnet34-imagenet",
        "resnet50-imagenet",
        "efficientnet-b0-imagenet",
    }
    unverifiable = set()
    for name, entry in entries.items():
        for key in ("title", "licence", "citation", "source", "homepage"):
            assert isinstance(entry[key], str) and len(entry[key]) > 10, (name, key)
        assert entry["layout"]["description"] and entry["layout"]["contains"], name
        for spec in entry["files"]:
            assert re.fullmatch(r"https?://\S+", spec["url"]), (name, spec["url"])
            checksum = spec["checksum"]
            assert checksum is None or re.fullmatch(
                r"md5:[0-9a-f]{32}|sha256:[0-9a-f]{64}", checksum
            ), (name, checksum)
            assert spec["size"] is None or (isinstance(spec["size"], int) and spec["size"] > 0)
            if checksum is None and "sha256_prefix" not in spec:
                unverifiable.add(name)
        if entry["kind"] == "weights":
            (spec,) = entry["files"]
            # torch.hub's convention: <name>-<sha256 prefix>.pth, and the full sum agrees
            assert spec["url"].rsplit("/", 1)[1] == spec["name"] == entry["torch_cache"]["file"]
            token = re.search(r"-([a-f0-9]+)\.", spec["name"])
            assert token and token.group(1) == spec["sha256_prefix"], name
            assert spec["checksum"].startswith("sha256:" + spec["sha256_prefix"]), name
            assert entry["torch_cache"]["dir"] == "$TORCH_HOME/hub/checkpoints"
        else:
            assert entry["layout"]["check"], name
    # Only SZTAKI has no published checksum; anything else losing one is a regression.
    assert unverifiable == {"sztaki-airchange"}


def test_default_manifest_is_the_repository_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert manifest._default_manifest_path() == REPO_MANIFEST
    other = write_manifest(tmp_path, tiny=weights_entry("http://127.0.0.1:9/x"))
    monkeypatch.setenv("CDTOOLS_MANIFEST", str(other))
    assert set(manifest.load_manifest()["entries"]) == {"tiny"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"checksum": "sha256:abc"}, "is not '<alg>:<hex>'"),
        ({"checksum": "crc32:" + "0" * 8}, "is not '<alg>:<hex>'"),
        ({"sha256_prefix": "xyz!"}, "sha256_prefix"),
        ({"name": "../evil.pth"}, "must not hold a folder"),
    ],
)
def test_malformed_manifest_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    path = write_manifest(tmp_path, tiny=weights_entry("http://127.0.0.1:9/x", **change))
    with pytest.raises(DataUnavailableError, match=re.escape(message)):
        manifest.load_manifest(path)


def test_manifest_entry_without_required_field_is_refused(tmp_path: Path) -> None:
    entry = dataset_entry("http://127.0.0.1:9/x")
    del entry["licence"]
    with pytest.raises(DataUnavailableError, match="lacks licence"):
        manifest.load_manifest(write_manifest(tmp_path, tiny=entry))
    entry = dataset_entry("http://127.0.0.1:9/x") | {"folder": "../outside"}
    with pytest.raises(DataUnavailableError, match="folder must be relative"):
        manifest.load_manifest(write_manifest(tmp_path, tiny=entry))


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(DataUnavailableError, match="known: efficientnet-b0-imagenet, eurosat-rgb"):
        manifest.path("levir")


def test_roots_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert manifest.data_root() == tmp_path / "data"
    assert manifest.torch_checkpoints_dir() == tmp_path / "torch" / "hub" / "checkpoints"
    monkeypatch.delenv("CDTOOLS_DATA")
    assert manifest.data_root() == Path("~/.cache/cdtools").expanduser()


# --- fetch ---------------------------------------------------------------------------


def test_fetch_weights_downloads_once_into_the_torch_cache(server: Server, tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=weights_entry(server.url("/w/tiny-1a2b3c4d.pth")))
    got = manifest.fetch("tiny", manifest=m)
    assert got == tmp_path / "torch" / "hub" / "checkpoints" / "tiny-1a2b3c4d.pth"
    assert got.read_bytes() == WEIGHTS
    assert manifest.fetch("tiny", manifest=m) == got
    assert manifest.path("tiny", manifest=m) == got
    assert server.hits["/w/tiny-1a2b3c4d.pth"] == 1


def test_fetch_with_root_and_mirror_url(server: Server, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/gone.pth"
    m = write_manifest(tmp_path, tiny=weights_entry(dead))
    got = manifest.fetch(
        "tiny", manifest=m, root=tmp_path / "r", url=server.url("/w/tiny-1a2b3c4d.pth")
    )
    assert got == tmp_path / "r" / "weights" / "tiny-1a2b3c4d.pth"
    assert got.read_bytes() == WEIGHTS


def test_fetch_dataset_unpacks_the_archive_and_does_not_download_again(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CDTOOLS_MANIFEST",
        str(write_manifest(tmp_path, tiny=dataset_entry(server.url("/d/tiny.zip")))),
    )
    folder = manifest.fetch("tiny")
    assert folder == tmp_path / "data" / "tiny"
    for member, data in ZIP_MEMBERS.items():
        assert (folder / member).read_bytes() == data
    assert (folder / "tiny.zip").is_file()  # the archive is kept
    assert not list(folder.glob(".unpacking-*"))
    assert manifest.fetch("tiny") == folder
    assert manifest.path("tiny") == folder
    assert server.hits["/d/tiny.zip"] == 1


def test_wrong_checksum_raises_and_keeps_nothing(server: Server, tmp_path: Path) -> None:
    entry = weights_entry(server.url("/w/tiny-1a2b3c4d.pth"), checksum="sha256:" + "0" * 64)
    m = write_manifest(tmp_path, tiny=entry)
    with pytest.raises(ChecksumError, match="does not match"):
        manifest.fetch("tiny", manifest=m)
    assert server.hits["/w/tiny-1a2b3c4d.pth"] == 1
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_wrong_sha256_prefix_on_download_raises_and_keeps_nothing(
    server: Server, tmp_path: Path
) -> None:
    entry = weights_entry(
        server.url("/w/tiny-1a2b3c4d.pth"), checksum=None, sha256_prefix="00000000"
    )
    m = write_manifest(tmp_path, tiny=entry)
    with pytest.raises(ChecksumError, match="prefix"):
        manifest.fetch("tiny", manifest=m, root=tmp_path / "r")
    assert list((tmp_path / "r" / "weights").iterdir()) == []  # no file, no .part


def test_right_sha256_prefix_on_download_is_accepted(server: Server, tmp_path: Path) -> None:
    entry = weights_entry(
        server.url("/w/tiny-1a2b3c4d.pth"), checksum=None, sha256_prefix=sha256(WEIGHTS)[:8]
    )
    got = manifest.fetch("tiny", manifest=write_manifest(tmp_path, tiny=entry))
    assert got.read_bytes() == WEIGHTS
    assert [p.name for p in got.parent.iterdir()] == [got.name]


def test_offline_fails_fast_and_says_where_to_put_the_file(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/tiny.zip"
    m = write_manifest(tmp_path, tiny=dataset_entry(url))
    start = time.monotonic()
    with pytest.raises(DataUnavailableError) as caught:
        manifest.fetch("tiny", manifest=m)
    assert time.monotonic() - start < 15
    message = str(caught.value)
    assert not isinstance(caught.value, ChecksumError)
    assert f"could not download tiny from {url} (connection refused)" in message
    assert f"put tiny.zip in {tmp_path / 'data' / 'tiny'}, then call again" in message


def test_a_silent_server_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdtools.io import download

    monkeypatch.setattr(download, "DOWNLOAD_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/tiny-1a2b3c4d.pth"
        m = write_manifest(tmp_path, tiny=weights_entry(url))
        start = time.monotonic()
        with pytest.raises(DataUnavailableError, match=r"no answer within 0\.5 s"):
            manifest.fetch("tiny", manifest=m)
        assert time.monotonic() - start < 15


def test_http_error_is_reported(server: Server, tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=weights_entry(server.url("/w/missing.pth")))
    with pytest.raises(DataUnavailableError, match="HTTP 404"):
        manifest.fetch("tiny", manifest=m)


# --- path on files placed by hand ----------------------------------------------------


def test_path_finds_placed_weights_in_the_data_root_or_torch_cache(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=weights_entry("http://127.0.0.1:9/x"))
    in_cache = tmp_path / "torch" / "hub" / "checkpoints" / "tiny-1a2b3c4d.pth"
    in_cache.parent.mkdir(parents=True)
    in_cache.write_bytes(WEIGHTS)
    assert manifest.path("tiny", manifest=m) == in_cache
    placed = tmp_path / "data" / "weights" / "tiny-1a2b3c4d.pth"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(WEIGHTS)
    assert manifest.path("tiny", manifest=m) == placed


def test_path_on_a_missing_entry_says_what_to_put_where(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=dataset_entry("https://example.org/tiny.zip"))
    with pytest.raises(DataUnavailableError) as caught:
        manifest.path("tiny", manifest=m)
    message = str(caught.value)
    assert "tiny.zip (from https://example.org/tiny.zip)" in message
    assert str(tmp_path / "data" / "tiny") in message
    assert "cdtools.fetch('tiny')" in message


def test_path_on_a_damaged_placed_file_raises_checksum_error(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=weights_entry("http://127.0.0.1:9/x"))
    placed = tmp_path / "data" / "weights" / "tiny-1a2b3c4d.pth"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(WEIGHTS[:-1] + b"?")
    with pytest.raises(ChecksumError, match="damaged or another version"):
        manifest.path("tiny", manifest=m)
    assert placed.exists()  # a user's file is never deleted by path()


def test_path_checks_a_sha256_prefix_when_no_full_checksum_is_known(tmp_path: Path) -> None:
    placed = tmp_path / "data" / "weights" / "tiny-1a2b3c4d.pth"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(WEIGHTS)
    good = weights_entry("http://127.0.0.1:9/x", checksum=None, sha256_prefix=sha256(WEIGHTS)[:10])
    assert manifest.path("tiny", manifest=write_manifest(tmp_path, tiny=good)) == placed
    bad = weights_entry("http://127.0.0.1:9/x", checksum=None, sha256_prefix="f37072fd")
    with pytest.raises(ChecksumError, match="sha256 prefix expected f37072fd"):
        manifest.path("tiny", manifest=write_manifest(tmp_path, tiny=bad))


def test_path_unpacks_a_placed_archive_without_network(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=dataset_entry(f"http://127.0.0.1:{closed_port()}/tiny.zip"))
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.zip").write_bytes(ARCHIVE)
    assert manifest.path("tiny", manifest=m) == folder
    assert (folder / "label" / "train_1.png").read_bytes() == b"m"


def test_a_placed_archive_that_will_not_unpack_gives_a_clear_error(tmp_path: Path) -> None:
    junk = b"this is not a zip file"
    entry = dataset_entry("http://127.0.0.1:9/x", checksum=f"sha256:{sha256(junk)}", size=len(junk))
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.zip").write_bytes(junk)
    with pytest.raises(DataUnavailableError, match=r"could not unpack tiny\.zip"):
        manifest.path("tiny", manifest=write_manifest(tmp_path, tiny=entry))
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.zip"]


def test_fetch_replaces_a_damaged_placed_archive(server: Server, tmp_path: Path) -> None:
    m = write_manifest(tmp_path, tiny=dataset_entry(server.url("/d/tiny.zip")))
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.zip").write_bytes(ARCHIVE[:-3] + b"bad")
    assert manifest.fetch("tiny", manifest=m) == folder
    assert (folder / "tiny.zip").read_bytes() == ARCHIVE
    assert (folder / "A" / "train_1.png").read_bytes() == b"before"


def test_archives_of_one_dataset_share_folders_and_a_mirror_base_url(
    server: Server, tmp_path: Path
) -> None:
    """Like LEVIR-CD: train.zip and val.zip both fill A/, B/ and label/."""
    val = make_zip({"A/val_1.png": b"v1", "B/val_1.png": b"v2", "label/val_1.png": b"v3"})
    server.files["/mirror/val%20set.zip"] = val
    server.files["/mirror/tiny.zip"] = ARCHIVE
    entry = dataset_entry("https://example.invalid/tiny.zip")
    second = dict(entry["files"][0], name="val set.zip", checksum=f"sha256:{sha256(val)}")
    entry["files"].append(second | {"size": len(val)})
    m = write_manifest(tmp_path, tiny=entry)
    folder = manifest.fetch("tiny", manifest=m, url=server.url("/mirror/"))
    assert sorted(p.name for p in (folder / "A").iterdir()) == ["train_1.png", "val_1.png"]
    assert server.hits["/mirror/val%20set.zip"] == 1
