"""Installing software during the phases: sources, distro packages, Python packages.

The builder calls :class:`Installer` around each phase:

* before ``extra-data.d``: fetch every ``source-repository-*`` (cache) and
  place it into the image;
* before ``pre-install.d``/``install.d``/``post-install.d``: install the
  phase's ``package-installs`` with the base's package manager, chrooted;
* after every phase: install the Python packages hooks requested;
* after ``post-install.d``: remove ``uninstall`` and ``build-only`` packages.

What was added is recorded for the manifest (packages with versions, Python
distributions, sources with their resolved commit or checksum).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sysext_builder import runner
from sysext_builder.errors import InstallError
from sysext_builder.install import packages, pip, sources
from sysext_builder.install.backends import PackageBackend, for_family
from sysext_builder.install.cache import Cache
from sysext_builder.model.element import Element
from sysext_builder.staging import debian
from sysext_builder.staging.base import BaseTree
from sysext_builder.staging.overlay import INSIDE, Overlay

LOG = logging.getLogger(__name__)


class InTarget:
    """Runs commands chrooted into the build overlay, each in its own mount namespace."""

    def __init__(self, overlay: Overlay, binds: Sequence[tuple[Path, str]],
                 on_line: Any = None) -> None:
        self.overlay = overlay
        self.binds = list(binds)
        self.on_line = on_line

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root"}
        env.update(extra or {})
        env.update(self.overlay.environment(chroot=True, binds=self.binds))
        return env

    def stream(self, argv: Sequence[str], what: str,
               env: Mapping[str, str] | None = None) -> None:
        def log(line: str) -> None:
            LOG.info("[%s] %s", argv[0], line)

        code, tail = runner.stream(Overlay.wrap(argv), env=self._env(env), on_line=log)
        if code != 0:
            raise InstallError(f"{what} {runner.describe_status(code)}",
                               hint=("last output:\n  " + "\n  ".join(tail)) if tail else None)

    def capture(self, argv: Sequence[str]) -> str:
        return runner.run(Overlay.wrap(argv), env=self._env(None), what=argv[0]).stdout


class Installer:
    """Sources, packages and Python packages of one build."""

    def __init__(self, elements: Sequence[Element], *, cache: Cache, offline: bool,
                 arch: str, root: Path, base: BaseTree | None, overlay: Overlay | None,
                 environ: Mapping[str, str]) -> None:
        self.cache, self.offline, self.arch = cache, offline, arch
        self.root = root  # where placed files go: ws.root, or the overlay's upper layer
        self.base, self.overlay = base, overlay
        self.specs, self.maps = packages.collect(elements)
        self.repos = sources.collect(elements, environ)
        release = base.os_release if base else {}
        self.distro = release.get("ID", "")
        self.family = packages.family_of(self.distro, release.get("ID_LIKE", "").split())
        self.release = release.get("VERSION_CODENAME") or release.get("VERSION_ID", "")
        self.backend: PackageBackend | None = None
        self.target: InTarget | None = None
        self.before: dict[str, str] | None = None
        self.removals: list[str] = []
        self.records: dict[str, Any] = {"sources": [], "python": [], "packages": []}

    # -- sources --------------------------------------------------------------------------
    def place_sources(self) -> None:
        base_path = self.base.path if self.base else None
        for repo in self.repos:
            fetched = sources.fetch(repo, self.cache, offline=self.offline)
            self.records["sources"].append(sources.place(fetched, self.root, base_path))

    # -- distro packages ------------------------------------------------------------------
    def _select(self, phase: str, env: Mapping[str, str]) -> list[packages.PackageAction]:
        actions = packages.select(self.specs, phase=phase, environ=env, arch=self.arch,
                                  distro=self.distro, family=self.family,
                                  release=self.release, pkg_map=self.maps)
        packages.require_base(actions, self.base is not None)
        return actions

    def check_packages(self, env: Mapping[str, str]) -> None:
        """Fail before any work when packages are asked for without a base."""
        for phase in packages.PACKAGE_PHASES:
            self._select(phase, env)

    def _target(self, snapshot: bool = True) -> tuple[PackageBackend, InTarget]:
        """The backend and chroot, made on first use; ``snapshot`` records what is
        installed then (before the first package step changes it)."""
        if self.backend is None or self.target is None:
            assert self.base is not None and self.overlay is not None
            self.backend = for_family(self.family, self.distro)
            key = "-".join(filter(None, (self.distro, self.base.os_release.get(
                "VERSION_ID", ""), self.arch)))
            self.target = InTarget(self.overlay, self.backend.binds(self.cache, key))
            if snapshot:
                self.before = self.backend.installed(self.target)
        return self.backend, self.target

    def install_packages(self, phase: str, env: Mapping[str, str]) -> None:
        actions = self._select(phase, env)
        wanted = sorted({a.name for a in actions if not a.uninstall})
        self.removals += sorted({a.name for a in actions if a.uninstall or a.build_only})
        if not wanted:
            return
        backend, target = self._target()
        LOG.info("%s: installing packages %s", phase, " ".join(wanted))
        with self.cache.lock():
            backend.install(target, wanted, offline=self.offline)

    def remove_packages(self) -> None:
        names = sorted(set(self.removals))
        if not names:
            return
        backend, target = self._target()
        LOG.info("removing packages %s", " ".join(names))
        with self.cache.lock():  # apt locks the shared archive cache even to purge
            backend.remove(target, names)

    def write_pkg_maps(self, state_dir: Path) -> None:
        """``STATE/pkg-map/ELEMENT``: ``NAME<TAB>MAPPED`` for every name of each element's
        pkg-map on this target (MAPPED empty: skipped), for ``install-packages -m``."""
        top = state_dir / "pkg-map"
        for element, table in self.maps.items():
            names = sorted({*table.default, *(n for t in table.family.values() for n in t),
                            *(n for t in table.distro.values() for n in t),
                            *(n for r in table.release.values() for t in r.values()
                              for n in t)})
            lines = []
            for name in names:
                mapped = table.lookup(name, self.distro, self.family, self.release)
                if mapped is not packages.MISSING:
                    lines.append(f"{name}\t{mapped or ''}\n")
            top.mkdir(exist_ok=True)
            (top / element).write_text("".join(lines), encoding="utf-8")

    def record_packages(self, state_dir: Path) -> None:
        """Record the packages the build added: the package steps' and those hooks
        installed with ``install-packages`` (which leaves STATE/packages-by-hooks)."""
        by_hooks = (state_dir / "packages-by-hooks").exists()
        if self.backend is None and not by_hooks:
            return
        before = self.before
        if before is None:
            assert self.base is not None
            before = debian.installed_packages(self.base.path)
        backend, target = self._target(snapshot=False)
        after = backend.installed(target)
        self.records["packages"] = [
            {"name": name, "version": version} for name, version in sorted(after.items())
            if before.get(name) != version]

    # -- Python packages ------------------------------------------------------------------
    def install_python(self, state_dir: Path, env: Mapping[str, str],
                       binds: Mapping[str, Path]) -> None:
        specs = pip.take_requests(state_dir)
        if specs:
            base_path = self.base.path if self.base else None
            self.records["python"] += pip.install(
                specs, self.root, cache=self.cache, base=base_path, offline=self.offline,
                environ=env, binds=binds)


def chroot_binds(dirs: Mapping[str, Path]) -> list[tuple[Path, str]]:
    """(host dir, chroot path) for the builder directories hooks use inside the chroot."""
    return [(dirs[key], INSIDE[key]) for key in sorted(dirs) if key in INSIDE]
