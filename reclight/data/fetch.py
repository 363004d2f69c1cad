"""Find or download the built-in MovieLens data sets.

A data set ``<name>`` is looked up in ``$RECLIGHT_DATA/<name>``, then in the cache
``$XDG_CACHE_HOME/reclight/<name>`` (default ``~/.cache/reclight/<name>``), and downloaded from
GroupLens into the cache when missing. The GroupLens licence forbids redistribution, so
reclight never ships the files: it fetches them, or reads the copy the user put in place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from reclight.errors import DataError

DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class Download:
    """Where a built-in data set comes from and which file in it holds the ratings."""

    url: str
    ratings_file: str
    examples: str  # files named in messages, so users know what to put in place
    sha256: str | None = None  # of the extracted ratings file, checked after every download


DOWNLOADS = {
    "ml-100k": Download("https://files.grouplens.org/datasets/movielens/ml-100k.zip", "u.data",
                        "u.data, u1.base, ...",
                        "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
    "ml-1m": Download("https://files.grouplens.org/datasets/movielens/ml-1m.zip", "ratings.dat",
                      "ratings.dat, movies.dat, ..."),
}


def cache_dir() -> Path:
    """Where downloads go: ``$XDG_CACHE_HOME/reclight`` or ``~/.cache/reclight``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root).expanduser() / "reclight"


def _home(data_home: str | Path | None) -> str | None:
    return str(data_home) if data_home is not None else os.environ.get("RECLIGHT_DATA")


def find_builtin(name: str, data_home: str | Path | None = None) -> Path | None:
    """The folder already holding data set ``name`` (``data_home`` overrides
    ``$RECLIGHT_DATA``, then the cache), or None."""
    home = _home(data_home)
    folders = ([Path(home).expanduser() / name] if home else []) + [cache_dir() / name]
    return next((f for f in folders if (f / DOWNLOADS[name].ratings_file).is_file()), None)


def origin(name: str, data_home: str | Path | None = None) -> str:
    """One line saying where data set ``name`` is read from, or would be fetched to."""
    found = find_builtin(name, data_home)
    if found is not None:
        return f"found in {found}"
    home = _home(data_home)
    looked = f"$RECLIGHT_DATA/{name} (unset), " if not home else f"{Path(home) / name}, "
    return (f"not found in {looked}{cache_dir() / name}; downloaded on first use from "
            f"{DOWNLOADS[name].url}")


def fetch_builtin(name: str, data_home: str | Path | None = None) -> Path:
    """The folder holding data set ``name``, downloading it into the cache if needed."""
    found = find_builtin(name, data_home)
    if found is not None:
        return found
    cache = cache_dir() / name
    _download(name, cache)
    return cache


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(name: str, cache: Path) -> None:
    """Download and unpack ``name`` into ``cache``; the folder appears only once verified."""
    spec = DOWNLOADS[name]
    # One scratch folder per process: DDP ranks that all miss the cache must not collide.
    tmp = cache.parent / f".{name}.download-{os.getpid()}"
    try:
        with urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            # Folders only once the server answers: offline, nothing is left behind.
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            archive = tmp / f"{name}.zip"
            with archive.open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp / "unpacked")  # zipfile drops absolute and '..' path parts
        found = sorted((tmp / "unpacked").rglob(spec.ratings_file))
        if not found:
            raise DataError(f"the {name} archive from {spec.url} has no {spec.ratings_file}")
        if spec.sha256 is not None and _sha256(found[0]) != spec.sha256:
            raise DataError(f"the downloaded {name} {spec.ratings_file} fails its sha256 check")
        if not (cache / spec.ratings_file).is_file():  # else another process got there first
            shutil.rmtree(cache, ignore_errors=True)
            shutil.move(str(found[0].parent), str(cache))
    except (OSError, ValueError, http.client.HTTPException, zipfile.BadZipFile, DataError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot download {name} ({reason}); put the MovieLens files "
                        f"({spec.examples}) in $RECLIGHT_DATA/{name} or {cache} and run "
                        "again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
