"""The apt backend for the Debian family."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from sysext_builder.errors import InstallError
from sysext_builder.install.backends import PackageBackend, Target
from sysext_builder.install.cache import Cache

LOG = logging.getLogger(__name__)

_APT = ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef",
        "-o", "Dpkg::Options::=--force-confold", "-o", "APT::Sandbox::User=root"]
_ENV = {"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true",
        "LC_ALL": "C.UTF-8"}


class AptBackend(PackageBackend):
    name: ClassVar[str] = "apt"
    families: ClassVar[tuple[str, ...]] = ("debian",)

    def __init__(self) -> None:
        self._updated = False
        self._lists: Path | None = None

    def binds(self, cache: Cache, key: str) -> list[tuple[Path, str]]:
        archives = cache.subdir("apt", "archives")
        (archives / "partial").mkdir(exist_ok=True)
        self._lists = cache.subdir("apt", "lists", key)
        (self._lists / "partial").mkdir(exist_ok=True)
        return [(archives, "/var/cache/apt/archives"), (self._lists, "/var/lib/apt/lists")]

    def installed(self, target: Target) -> dict[str, str]:
        out = target.capture(["dpkg-query", "-W", "-f",
                              "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
        result = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2].startswith("ii"):
                result[parts[0]] = parts[1]
        return result

    def _have_lists(self) -> bool:
        return self._lists is not None and any(self._lists.glob("*_Packages*"))

    def install(self, target: Target, names: Sequence[str], *, offline: bool) -> None:
        if offline:
            if not self._have_lists():
                raise InstallError(
                    f"--offline: no cached package lists to install {', '.join(names)}",
                    hint="run the build once without --offline to fill the cache")
            target.stream([*_APT, "--no-download", "install", "--no-install-recommends",
                           *names], f"apt-get install {' '.join(names)} (offline)", _ENV)
            return
        if not self._updated:
            target.stream([*_APT, "update"], "apt-get update", _ENV)
            self._updated = True
        target.stream([*_APT, "install", "--no-install-recommends", *names],
                      f"apt-get install {' '.join(names)}", _ENV)

    def remove(self, target: Target, names: Sequence[str]) -> None:
        target.stream([*_APT, "purge", "--autoremove", *names],
                      f"apt-get purge {' '.join(names)}", _ENV)
