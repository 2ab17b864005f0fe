"""Distro package backends (entry point group ``sysext_builder.package_backends``).

A backend installs packages with the *base's own* package manager, chrooted
into the build overlay, so dependencies the base already has are reused and
only what is new lands in the upper layer.  The package database stays out of
the image (only ``usr/`` and ``opt/`` of the upper layer are kept); what was
added is recorded in the manifest instead.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Protocol

from sysext_builder import plugins
from sysext_builder.errors import InstallError, PluginError
from sysext_builder.install.cache import Cache


class Target(Protocol):
    """Runs commands chrooted into the build overlay (see installs.InTarget)."""

    def stream(self, argv: Sequence[str], what: str,
               env: Mapping[str, str] | None = None) -> None: ...

    def capture(self, argv: Sequence[str]) -> str: ...


class PackageBackend(abc.ABC):
    """Contract of a package backend.

    ``name``: entry point name; ``families``: pkg-map families it serves.
    ``binds(cache, key)``: (host dir, path inside the chroot) pairs that keep
    downloads and package lists in the shared cache; ``key`` names the base
    (so two bases never share package lists).
    ``installed(target)``: package -> version of what is installed now.
    ``install(target, names, offline=)`` / ``remove(target, names)``: do it or
    raise :class:`InstallError` naming the packages.
    """

    name: ClassVar[str]
    families: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def binds(self, cache: Cache, key: str) -> list[tuple[Path, str]]: ...

    @abc.abstractmethod
    def installed(self, target: Target) -> dict[str, str]: ...

    @abc.abstractmethod
    def install(self, target: Target, names: Sequence[str], *, offline: bool) -> None: ...

    @abc.abstractmethod
    def remove(self, target: Target, names: Sequence[str]) -> None: ...


def for_family(family: str, os_id: str) -> PackageBackend:
    """The backend serving ``family`` (only ``apt`` ships today)."""
    for name in plugins.available(plugins.PACKAGE_BACKENDS_NAMESPACE):
        backend = plugins.load_driver(plugins.PACKAGE_BACKENDS_NAMESPACE, name)
        if not (isinstance(backend, type) and issubclass(backend, PackageBackend)):
            raise PluginError(f"package backend {name!r} is not a PackageBackend subclass")
        if family in backend.families:
            return backend()
    raise InstallError(f"no package backend for {os_id!r} (family {family or 'unknown'})",
                       hint="available: " + ", ".join(
                           plugins.available(plugins.PACKAGE_BACKENDS_NAMESPACE)))
