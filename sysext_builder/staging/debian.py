"""Named Debian bases: ``--base debian:RELEASE[/VARIANT][+PKG,PKG...]``.

A named base is made with ``mmdebstrap --mode=root --variant=minbase`` once and
kept in ``CACHE/bases/``, keyed by a digest of the normalised spec, the
architecture and the mirror; later builds reuse it.  It is made under a
temporary name beside the final one and renamed only when mmdebstrap
succeeded, so a failed or interrupted run leaves no entry (only its log,
``CACHE/bases/ENTRY.log``).

Variants (:data:`VARIANTS`):

* none: systemd, systemd-sysv and udev on minbase: a systemd OS *without*
  python3 and openssl, like Flatcar's ``/usr``, so an image has to bring them;
  as on Flatcar, ``systemd-networkd`` and ``systemd-sysext`` are enabled;
* ``vm``: that plus a kernel, initramfs-tools, iproute2 and systemd-resolved,
  enough to boot the tree in a VM (``/boot/vmlinuz-*``, ``/boot/initrd.img-*``).

``+PKG,...`` adds packages; the normalised spec sorts and deduplicates them and
writes the release by name (``debian:12`` is ``debian:bookworm``).  The tree
keeps its apt sources and package lists, so hooks may ``apt-get install``
without ``apt-get update``; man pages, docs (but copyright files) and locales
are left out by a dpkg filter that stays in the tree.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sysext_builder import paths, runner, treeread
from sysext_builder.errors import EnvironmentUnusableError, InstallError, UsageError
from sysext_builder.fileutil import redact_urls, remove_tree, url_secrets

LOG = logging.getLogger(__name__)

PREFIX = "debian:"
GRAMMAR = "debian:RELEASE[/VARIANT][+PKG,PKG...], e.g. debian:bookworm/vm+openssl,python3"
#: release name -> Debian version (the version is accepted as an alias)
RELEASES: dict[str, str] = {"bookworm": "12", "trixie": "13"}
#: what every named base has on top of minbase
BASE_PACKAGES = ("systemd", "systemd-sysv", "udev")
#: variant -> packages on top of BASE_PACKAGES ({arch}: the Debian architecture)
VARIANTS: dict[str, tuple[str, ...]] = {
    "": (),
    "vm": ("linux-image-cloud-{arch}", "initramfs-tools", "iproute2", "systemd-resolved"),
}
#: architectures with a linux-image-cloud-ARCH package (the vm variant's kernel)
CLOUD_KERNEL_ARCHES = ("amd64", "arm64")
MIRROR_ENV = "SYSEXT_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: dpkg filters written to the tree (they apply to later installs in it too)
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)
#: enabled in every named base, as on Flatcar: networkd manages the network
#: (glean writes .network files for it), and systemd-sysext.service merges at
#: boot (Debian 12 ships it disabled)
ENABLED_UNITS = ("systemd-networkd.service", "systemd-sysext.service")
#: bump when the recipe changes in a way the cache key cannot see
RECIPE = 2
#: lines of mmdebstrap's output quoted in the error of a failed run
ERROR_LINES = 3
ERROR_WIDTH = 100

_SPEC_RE = re.compile(r"^debian:(?P<release>[^/+]+)(?:/(?P<variant>[^/+]+))?"
                      r"(?:\+(?P<packages>.+))?$")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "armv7l": "armhf",
             "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}


@dataclass(frozen=True)
class DebianBase:
    """A parsed named base; :attr:`spec` is its normalised text."""

    release: str
    variant: str = ""
    packages: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        text = PREFIX + self.release + (f"/{self.variant}" if self.variant else "")
        return text + ("+" + ",".join(self.packages) if self.packages else "")

    def packages_to_include(self, arch: str = "amd64") -> tuple[str, ...]:
        """``--include`` of mmdebstrap: base, variant, then the extra packages."""
        if self.variant == "vm" and arch not in CLOUD_KERNEL_ARCHES:
            raise UsageError(f"--base {self.spec}: no kernel package known for {arch}",
                             hint="the vm variant exists for " + ", ".join(CLOUD_KERNEL_ARCHES))
        wanted = [*BASE_PACKAGES, *(p.format(arch=arch) for p in VARIANTS[self.variant]),
                  *self.packages]
        return tuple(dict.fromkeys(wanted))

    def cache_key(self, arch: str, mirror: str) -> str:
        """Hex digest naming the cache entry (spec, architecture, mirror, recipe)."""
        what = {"spec": self.spec, "arch": arch, "mirror": mirror, "recipe": RECIPE}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def entry_name(self, arch: str, mirror: str) -> str:
        """Directory name of the cache entry: readable prefix, then the key."""
        variant = f"-{self.variant}" if self.variant else ""
        return f"debian-{self.release}{variant}-{arch}-{self.cache_key(arch, mirror)[:20]}"

    def make(self, dest: Path, *, arch: str | None = None, mirror: str | None = None,
             log_path: Path | None = None) -> None:
        """Run mmdebstrap into ``dest`` (absent or empty); :class:`InstallError` if it fails.

        Its output goes to the debug log and to ``log_path`` (default
        ``DEST.log``); the error quotes the last lines and names the log.
        """
        arch = arch or host_architecture()
        mirror = mirror or mirror_from()
        log_path = log_path or dest.with_name(dest.name + ".log")
        argv = ["unshare", "--mount", "--propagation", "private", "--fork", "--",
                *mmdebstrap_argv(self, dest, arch=arch, mirror=mirror)]
        for tool in ("unshare", "mmdebstrap"):
            runner.require_tool(tool)
        with log_path.open("w", encoding="utf-8") as log:
            log.write("# " + " ".join(argv) + "\n")
            code, tail = runner.stream(argv, on_line=lambda line: _log_line(log, line))
        if code != 0:
            raise InstallError(f"--base {self.spec}: mmdebstrap {runner.describe_status(code)}: "
                               f"{_summary(tail)}",
                               hint=f"full log: {log_path}")


def _log_line(log: IO[str], line: str) -> None:
    LOG.debug("mmdebstrap: %s", line)
    log.write(line + "\n")


def _summary(tail: list[str]) -> str:
    """The last lines of mmdebstrap's output on one line (its ``E:`` lines if any),
    each cut to :data:`ERROR_WIDTH` characters (some quote whole apt command lines)."""
    lines = [ln.strip() for ln in tail if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    quoted = [ln if len(ln) <= ERROR_WIDTH else ln[:ERROR_WIDTH - 3] + "..."
              for ln in (errors or lines)[-ERROR_LINES:]]
    return " | ".join(quoted) or "no output"


def parse(text: str) -> DebianBase | None:
    """The named base ``text`` spells, ``None`` when it is not a ``debian:`` spec.

    Raises :class:`UsageError` naming ``--base`` and the spec when it is malformed.
    """
    if not text.startswith(PREFIX):
        return None
    match = _SPEC_RE.match(text)
    if match is None:
        raise UsageError(f"--base {text}: not a named base", hint=f"write {GRAMMAR}")
    release = match["release"]
    release = {v: k for k, v in RELEASES.items()}.get(release, release)
    if release not in RELEASES:
        known = ", ".join(f"{name} ({version})" for name, version in RELEASES.items())
        raise UsageError(f"--base {text}: unknown Debian release {match['release']!r}",
                         hint=f"known releases: {known}")
    variant = match["variant"] or ""
    if variant not in VARIANTS:
        raise UsageError(f"--base {text}: unknown variant {variant!r}",
                         hint="known variants: " + ", ".join(sorted(v for v in VARIANTS if v))
                              + " (or none: debian:RELEASE)")
    packages = match["packages"].split(",") if match["packages"] else []
    for package in packages:
        if not _PACKAGE_RE.match(package):
            raise UsageError(f"--base {text}: {package!r} is not a Debian package name",
                             hint="names match [a-z0-9][a-z0-9+.-]+, separated by commas: "
                                  + GRAMMAR)
    return DebianBase(release=release, variant=variant, packages=tuple(sorted(set(packages))))


def mmdebstrap_argv(base: DebianBase, dest: Path, *, arch: str, mirror: str) -> list[str]:
    """The mmdebstrap command that makes ``base`` in ``dest`` (pure)."""
    return ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
            f"--architectures={arch}",
            "--include=" + ",".join(base.packages_to_include(arch)),
            *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
            # hooks may apt-get install without apt-get update
            "--skip=cleanup/apt/lists",
            '--customize-hook=chroot "$1" systemctl enable --quiet ' + " ".join(ENABLED_UNITS),
            base.release, str(dest), mirror]


def mirror_from(environ: Mapping[str, str] | None = None) -> str:
    """The Debian mirror: ``$SYSEXT_DEBIAN_MIRROR``, else deb.debian.org.

    A mirror URL carrying a credential is refused: mmdebstrap writes the mirror
    into the base's apt sources, which the cache keeps (and logs would show it).
    """
    environ = os.environ if environ is None else environ
    mirror = environ.get(MIRROR_ENV, "").strip() or DEFAULT_MIRROR
    if url_secrets(mirror):
        raise UsageError(f"{MIRROR_ENV}={redact_urls(mirror)}: the mirror URL carries a "
                         "credential, which the base's apt sources in the cache would keep",
                         hint="use a mirror or a local proxy (e.g. apt-cacher-ng) that "
                              "needs no credential in its URL")
    return mirror


def host_architecture() -> str:
    """This host's Debian architecture (``dpkg --print-architecture``)."""
    if paths.which("dpkg") is not None:
        return runner.run(["dpkg", "--print-architecture"]).stdout.strip()
    machine = platform.machine()
    if machine not in _MACHINES:
        raise EnvironmentUnusableError(f"no Debian architecture known for machine {machine!r}",
                                       hint="install dpkg, or build on amd64 or arm64")
    return _MACHINES[machine]


def cached_tree(base: DebianBase, cache_dir: Path, *, arch: str | None = None,
                mirror: str | None = None) -> Path:
    """The tree of ``base`` in ``cache_dir``, made first if missing.  Hold the cache lock."""
    arch = arch or host_architecture()
    mirror = mirror or mirror_from()
    final = cache_dir / base.entry_name(arch, mirror)
    if final.is_dir():
        LOG.info("base %s: reused %s", base.spec, final)
        return final
    if os.geteuid() != 0:
        raise EnvironmentUnusableError(f"--base {base.spec}: named bases need root",
                                       hint="they are made with mmdebstrap --mode=root; "
                                            "run as root (e.g. sudo)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    runner.remove_stale_temps(cache_dir)  # what a killed run left (a live one's are kept)
    tmp = cache_dir / f".{final.name}.tmp-{runner.temp_tag()}"
    LOG.info("base %s: making it with mmdebstrap from %s (%s), once", base.spec, mirror, arch)
    started = time.monotonic()
    try:
        base.make(tmp, arch=arch, mirror=mirror, log_path=cache_dir / f"{final.name}.log")
        os.rename(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise
    LOG.info("base %s: made %s in %.0fs", base.spec, final, time.monotonic() - started)
    return final


#: the largest dpkg status file read (a full desktop's is about 5 MB)
MAX_STATUS_BYTES = 64 << 20


def installed_packages(tree: Path) -> dict[str, str]:
    """Installed package -> version, read from the tree's ``var/lib/dpkg/status``
    (resolved inside the tree, a regular file of at most :data:`MAX_STATUS_BYTES`;
    anything else counts as no packages, with a warning when it is there)."""
    try:
        data = treeread.read_in_root(tree, "var/lib/dpkg/status", MAX_STATUS_BYTES)
    except treeread.ReadRefused as exc:
        if not exc.missing:
            LOG.warning("%s: not read, taken as no packages", exc)
        return {}
    text = data.decode("utf-8", errors="replace")
    found: dict[str, str] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
        name, version = fields.get("Package"), fields.get("Version")
        if name and version and fields.get("Status", "").endswith(" installed"):
            found.setdefault(name, version)
    return found


def systemd_version(tree: Path) -> int | None:
    """systemd's major version in ``tree`` (``252.39-1~deb12u1`` -> 252), ``None`` if unknown.

    Reads the dpkg status, else the name of ``libsystemd-shared-NNN.so``; runs nothing.
    """
    version = installed_packages(tree).get("systemd")
    if version is not None:
        match = re.match(r"^(?:\d+:)?(\d+)", version)
        return int(match.group(1)) if match else None
    for lib in ("usr/lib/systemd", "usr/lib64/systemd"):
        for path in sorted((tree / lib).glob("libsystemd-shared-*.so")):
            match = re.match(r"^libsystemd-shared-(\d+)", path.name)
            if match:
                return int(match.group(1))
    return None
