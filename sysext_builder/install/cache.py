"""The download cache shared by builds: sources, wheels, distro packages.

Layout::

    CACHE/.lock          flock(2) target; held while a build reads or writes the cache
    CACHE/CACHEDIR.TAG   marks the directory as a cache for backup tools
    CACHE/sources/       git mirrors, tarballs and files of source-repository-* (sources.py)
    CACHE/pip/           wheelhouse and pip's own cache (pip.py)
    CACHE/apt/           downloaded .deb files of the apt backend

Two builds may share one cache: :meth:`Cache.lock` takes an exclusive
``flock`` on ``CACHE/.lock`` (logging when it has to wait for the other
build).  The lock belongs to the open file, so it is released when the
process dies, however it dies; nothing stale is left behind.  Within one
:class:`Cache` object the lock is re-entrant, so a function that takes the
lock may call another that takes it too.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from sysext_builder import paths
from sysext_builder.errors import InstallError
from sysext_builder.fileutil import redact_urls, sha256_file, url_secrets

LOG = logging.getLogger(__name__)

_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file is a cache directory tag created by sysext-builder.\n"
        "# For information about cache directory tags see https://bford.info/cachedir/\n")
_POLL = 0.1
_CHUNK = 1 << 20
_TIMEOUT = 60


def redact(text: str) -> str:
    """``text`` with the secret of every URL in it replaced by ``***``.

    ``https://user:secret@host/`` -> ``https://user:***@host/``; a user alone
    on http(s) (a token) -> ``https://***@host/``; ``ssh://git@host/`` and
    paths are kept.  Query parameters whose name marks a secret
    (``?token=``, ``&access_token=``, ``&sig=``, ``password=``, ``key=`` ...)
    keep their name and lose their value: ``?token=***``.  The one redaction
    of the builder: errors, logs, cache metadata and manifests all use it."""
    return redact_urls(text)


def secrets_of(location: str) -> list[str]:
    """The secret parts of ``location`` as written and decoded (for :func:`scrub`)."""
    secrets = set(url_secrets(location))
    return sorted((secrets | {unquote(s) for s in secrets}) - {""}, key=len, reverse=True)


def scrub(text: str, location: str) -> str:
    """:func:`redact` plus every literal occurrence of ``location``'s secret
    (tools echo it outside a URL, percent-decoded, or in a URL they rewrote)."""
    text = redact(text)
    for secret in secrets_of(location):
        text = text.replace(secret, "***")
    return text


def without_userinfo(location: str) -> tuple[str, str | None]:
    """(URL without ``user:password@``, ``Basic`` Authorization value or None)."""
    parts = urlsplit(location)
    if parts.username is None and parts.password is None:
        return location, None
    host = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def cache_key(location: str) -> str:
    """Directory name of a location's cache entry (a hash: locations hold any characters)."""
    return hashlib.sha256(location.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class CachedFile:
    """A downloaded (or copied) file in the cache and its sha256."""

    path: Path
    sha256: str


class Cache:
    """One cache directory (default :func:`paths.user_cache_dir`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else paths.user_cache_dir()
        self._guard = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"

    def _ensure(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tag = self.path / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text(_TAG, encoding="ascii")
        except OSError as exc:
            raise InstallError(f"cannot create the cache directory {self.path}: {exc.strerror}",
                               hint="pass --cache-dir DIR on a writable file system") from exc

    def subdir(self, *parts: str) -> Path:
        """``CACHE/part/...``, created if missing."""
        self._ensure()
        path = self.path.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def sources(self) -> Path:
        return self.subdir("sources")

    @property
    def pip(self) -> Path:
        return self.subdir("pip")

    def fetch_url(self, location: str, *parts: str, offline: bool = False,
                  what: str = "download") -> CachedFile:
        """Cache ``location`` (a local path, ``file://``, ``http(s)://``) as a file.

        The entry is ``CACHE/parts/<key>/content`` with ``meta.json``.  Online,
        local files are copied again and URLs revalidated (``If-None-Match`` /
        ``If-Modified-Since``); offline only the entry is used, and a missing
        entry raises :class:`InstallError` naming ``what`` and the location.
        Call with the lock held.
        """
        entry = self.subdir(*parts) / cache_key(location)
        content, meta_path = entry / "content", entry / "meta.json"
        meta: dict[str, str] = {}
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if offline:
            if not content.is_file():
                raise InstallError(f"{what}: {redact(location)} is not in the cache {self.path} "
                                   "and --offline is set",
                                   hint="run the build once without --offline to fill "
                                        "the cache")
        else:
            entry.mkdir(exist_ok=True)
            meta = _download(location, content, meta if content.is_file() else {}, what)
            meta["sha256"] = sha256_file(content)
            tmp = meta_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
            tmp.rename(meta_path)
        return CachedFile(path=content, sha256=meta.get("sha256") or sha256_file(content))

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[Cache]:
        """Hold the exclusive cache lock for the ``with`` block.

        Waits for another build holding it (logged once at INFO); with
        ``timeout`` (seconds) gives up with :class:`InstallError`.
        """
        with self._guard:
            if self._depth == 0:
                self._fd = self._acquire(timeout)
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fd, self._fd = self._fd, None
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def _acquire(self, timeout: float | None) -> int:
        self._ensure()
        lock_path = self.path / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InstallError(f"cannot open the cache lock {lock_path}: {exc.strerror}") \
                from exc
        try:
            if not _try_lock(fd):
                LOG.info("cache %s is in use by another build; waiting for its lock", self.path)
                started = time.monotonic()
                if timeout is None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                else:
                    while not _try_lock(fd):
                        if time.monotonic() - started >= timeout:
                            raise InstallError(
                                f"cache {self.path} stayed locked for {timeout:g}s",
                                hint="another sysext-builder run holds it; wait for it or "
                                     "use a different --cache-dir")
                        time.sleep(_POLL)
                LOG.info("got the cache lock after %.1fs", time.monotonic() - started)
        except BaseException:
            os.close(fd)
            raise
        return fd


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _download(location: str, content: Path, meta: dict[str, str], what: str
              ) -> dict[str, str]:
    """Refresh ``content`` from ``location``; returns the new metadata (redacted)."""
    scheme = urlsplit(location).scheme
    tmp = content.with_name(content.name + ".part")
    shown = redact(location)
    new = {"location": shown}
    if scheme in ("", "file"):
        source = url2pathname(urlsplit(location).path) if scheme else location
        try:
            shutil.copyfile(source, tmp)
            shutil.copymode(source, tmp)
        except OSError as exc:
            raise InstallError(f"{what}: cannot read {shown}: {exc.strerror}") from exc
    elif scheme in ("http", "https"):
        url, auth = without_userinfo(location)
        request = urllib.request.Request(url)
        if auth is not None:  # not sent on to the host of a redirect
            request.add_unredirected_header("Authorization", auth)
        if meta.get("etag"):
            request.add_header("If-None-Match", meta["etag"])
        if meta.get("last_modified"):
            request.add_header("If-Modified-Since", meta["last_modified"])
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response, \
                    open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, _CHUNK)
                for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
                    if response.headers.get(header):
                        new[key] = response.headers[header]
        except urllib.error.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            if exc.code == 304:
                LOG.debug("%s: %s not modified; using the cached copy", what, shown)
                return {**meta, "location": shown}
            raise InstallError(f"{what}: cannot download {shown}: HTTP {exc.code}") \
                from exc
        except (urllib.error.URLError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise InstallError(f"{what}: cannot download {shown}: {scrub(str(exc), location)}",
                               hint="check the network, or use --offline with a warm "
                                    "cache") from exc
    else:
        raise InstallError(f"{what}: unsupported location {shown!r}",
                           hint="use a local path, file://, http:// or https://")
    tmp.rename(content)
    return new
