"""What hooks see and what the image claims: build environment and target identity.

Precedence of the target identity (extension-release):
command line options > ``--os-release FILE`` > the ``--base`` tree's
os-release > defaults the elements export from ``environment.d``.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shlex
import shutil
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from sysext_builder import fileutil, paths
from sysext_builder.config import BuildConfig, split_output
from sysext_builder.errors import TreeRuleError
from sysext_builder.model.element import Element
from sysext_builder.staging.workspace import Workspace
from sysext_builder.sysext import osrelease, release

LOG = logging.getLogger(__name__)

#: variables naming the CA bundle TLS clients trust (the host's, behind a TLS proxy)
CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                "GIT_SSL_CAINFO")
CA_BUNDLE = "ca-certificates.crt"
#: host variables hooks inherit (everything else is dropped; DIB_* are added)
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME",
           "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
           "XDG_CACHE_HOME", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST",
           *CA_VARIABLES)
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: systemd's architecture names -> DIB's (Debian's ``dpkg --print-architecture``)
_DIB_ARCH: dict[str, str] = {
    "x86-64": "amd64", "x86": "i386", "arm64": "arm64", "arm": "armhf",
    "ppc64-le": "ppc64el", "ppc64": "ppc64", "ppc": "powerpc", "s390x": "s390x",
    "s390": "s390", "riscv64": "riscv64", "loongarch64": "loong64",
    "mips64-le": "mips64el", "mips-le": "mipsel", "parisc": "hppa", "sh": "sh4",
}
#: host-side paths that mean nothing inside the chroot (see chroot_environment)
_HOST_ONLY = ("SYSEXT_BASE_ROOT", "DIB_PYTHON_EXEC", "DIB_IMAGE_CACHE", "ELEMENTS_PATH",
              *CA_VARIABLES)  # host paths; the builder binds a copy of the bundle in
_PYTHON_RE = re.compile(r"^python([23])(\.[0-9]+)?$")


@dataclass(frozen=True)
class Target:
    """Where the image goes and what it claims to extend."""

    directory: Path
    name: str
    release_fields: Mapping[str, str]
    arch: str = ""  # the build's architecture, systemd's spelling (x86-64, arm64, _any)


def dib_arch(arch: str) -> str:
    """DIB's spelling of systemd's architecture name ``arch`` (``x86-64`` -> ``amd64``).

    ``_any`` (an architecture-independent image) gives the build host's; names
    without a DIB spelling are returned unchanged."""
    if arch == "_any":
        arch = release.systemd_arch(platform.machine())
    return _DIB_ARCH.get(arch, arch)


def init_system(base_root: Path | None) -> str:
    """``DIB_INIT_SYSTEM`` of the base tree: systemd unless the base has only OpenRC.

    Without a base it is systemd: the target of a system extension runs it."""
    if base_root is None or _exists(base_root, "usr/lib/systemd/systemd", "lib/systemd/systemd"):
        return "systemd"
    if _exists(base_root, "sbin/openrc", "usr/sbin/openrc", "sbin/openrc-run"):
        return "openrc"
    # a minimal base without an init (debootstrap --variant=minbase) still
    # extends a systemd host; /etc/init.d says nothing (systemd hosts have one)
    return "systemd"


def python_major(base_root: Path | None) -> str:
    """``DIB_PYTHON_VERSION`` (DIB's meaning: the major version) of the base's Python.

    3 when the base has a ``python3``, 2 when it has only a ``python2``, else 3."""
    if base_root is None:
        return "3"
    try:
        names = os.listdir(base_root / "usr" / "bin")
    except OSError:
        return "3"
    majors = {m.group(1) for m in map(_PYTHON_RE.match, names) if m}
    return "2" if majors == {"2"} else "3"


def _exists(root: Path, *rels: str) -> bool:
    # lexists: never follows a base's absolute symlink out to the host
    return any(os.path.lexists(root / rel) for rel in rels)


def image_cache_dir(config: BuildConfig) -> Path:
    """``DIB_IMAGE_CACHE``: DIB's download cache, kept in the builder's cache directory."""
    return (config.cache_dir or paths.user_cache_dir()) / "dib-image-cache"


def dib_args(config: BuildConfig) -> str:
    """``DIB_ARGS``: the build's command line, as ``sysext-create`` arguments."""
    words: list[str] = []
    for path in config.element_paths:
        words += ["--element-path", path]
    if config.base is not None:
        words += ["--base", str(config.base)]
    if config.arch:
        words += ["--arch", config.arch]
    if config.output:
        words += ["-o", config.output]
    words += config.elements
    return shlex.join(words)


def dib_env(env: Mapping[str, str]) -> str:
    """``DIB_ENV``: an ``export NAME=VALUE`` line per ``DIB_*`` variable of ``env``.

    As in DIB it carries every ``DIB_*`` value the hooks get anyway (so also
    credentials in them); like the environment, it is never recorded.  The
    host-only ones are left out, so it reads the same inside the chroot."""
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())
                     if k.startswith("DIB_") and k != "DIB_ENV" and k not in _HOST_ONLY)


def host_environment(config: BuildConfig, ws: Workspace, names: Sequence[str], arch: str,
                     target_root: Path, *,
                     base_release: Mapping[str, str] | None = None,
                     base_root: Path | None = None,
                     search_path: Sequence[Path | str] = ()) -> dict[str, str]:
    """The environment of host-side phases (and of environment.d sourcing).

    ``SYSEXT_BASE`` is ``1`` when building on a ``--base`` (then ``DISTRO_NAME``
    and ``DIB_RELEASE`` describe it, as in diskimage-builder), else ``0``.
    ``SYSEXT_BASE_ROOT`` is the (read-only) base tree, for host-side hooks that
    must tell the base's files from the ones the build added (a system extension
    cannot delete a file of the base); chrooted hooks do not get it.
    ``ARCH`` is DIB's spelling of ``arch`` (``amd64``), ``SYSEXT_ARCH`` systemd's
    (``x86-64``).  The user's ``DIB_*`` variables win over the ``DIB_*``
    defaults derived here (init system, Python, install type, image cache),
    never over the paths and names the builder owns.
    """
    env = {k: v for k, v in config.environ.items() if k in _PASSED}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(config.user_variables())
    lib = paths.shell_lib_dir()
    python = python_major(base_root)
    for key, value in (("DIB_INIT_SYSTEM", init_system(base_root)),
                       ("DIB_PYTHON_VERSION", python),
                       ("DIB_PYTHON", f"python{python}"),
                       ("DIB_DEFAULT_INSTALLTYPE", "source"),
                       ("DIB_IMAGE_CACHE", str(image_cache_dir(config))),
                       # DIB's manifests element is built in (NAME.manifest.json beside the
                       # image); what DIB's hooks write for it lands in /tmp, never kept
                       ("DIB_MANIFEST_IMAGE_DIR", "/tmp/dib-manifests"),
                       ("DIB_MANIFEST_SAVE_DIR", str(ws.tmp / "dib-manifests"))):
        env.setdefault(key, value)
    # DIB's host-side hooks call sudo; lib/bin/sudo runs the command as we run
    env["PATH"] = f"{lib}/bin:{env['PATH']}"
    env.update({
        "TARGET_ROOT": str(target_root),
        "TMP_MOUNT_PATH": str(target_root),
        "TMP_BUILD_DIR": str(ws.tmp),
        "TMP_HOOKS_PATH": str(ws.hooks),
        "SYSEXT_ARTIFACTS_DIR": str(ws.artifacts),
        "SYSEXT_STATE_DIR": str(ws.state),
        "SYSEXT_UNITS_FILE": str(ws.state / "units"),
        "SYSEXT_LIB": str(lib),
        "SYSEXT_FUNCTIONS": str(lib / "common-functions.sh"),
        "ARCH": dib_arch(arch),
        "SYSEXT_ARCH": arch,
        "IMAGE_ELEMENT": " ".join(names),
        "ELEMENTS_PATH": ":".join(str(p) for p in search_path),
        "SOURCE_DATE_EPOCH": str(config.epoch),
        "DIB_DEBUG_TRACE": "1" if config.trace else "0",
        "DIB_PYTHON_EXEC": sys.executable,
        "DIB_ARGS": dib_args(config),
        "SYSEXT_BASE": "1" if base_release is not None else "0",
    })
    if config.offline:
        env["DIB_OFFLINE"] = "1"  # as DIB's --offline: elements skip their downloads
    if base_release is not None:
        env["DISTRO_NAME"] = base_release.get("ID", "")
        env["DIB_RELEASE"] = (base_release.get("VERSION_CODENAME")
                              or base_release.get("VERSION_ID", ""))
    if base_root is not None:
        env["SYSEXT_BASE_ROOT"] = str(base_root)
    env["DIB_ENV"] = dib_env(env)
    return env


def chroot_environment(host_env: Mapping[str, str], inside: Mapping[str, str]) -> dict[str, str]:
    """The same environment with paths as hooks see them inside the chroot.

    ``TARGET_ROOT`` and ``TMP_MOUNT_PATH`` are ``/``; host-only paths (the base
    tree, the host's Python, the image cache, the element search path) are
    dropped rather than handed in pointing at nothing or at the wrong file."""
    env = dict(host_env)
    env.update({
        "PATH": f"{inside['lib']}/bin:{_DEFAULT_PATH}",
        "TARGET_ROOT": "/",
        "TMP_MOUNT_PATH": "/",
        "TMP_BUILD_DIR": inside["tmp"],
        "TMP_HOOKS_PATH": inside["hooks"],
        "DIB_MANIFEST_SAVE_DIR": inside["tmp"] + "/dib-manifests",
        "SYSEXT_ARTIFACTS_DIR": inside["artifacts"],
        "SYSEXT_STATE_DIR": inside["state"],
        "SYSEXT_UNITS_FILE": inside["state"] + "/units",
        "SYSEXT_LIB": inside["lib"],
        "SYSEXT_FUNCTIONS": inside["lib"] + "/common-functions.sh",
    })
    for key in _HOST_ONLY:
        env.pop(key, None)
    return env


def element_yaml(elements: Sequence[Element], inside: str | None = None) -> str:
    """DIB's ``IMAGE_ELEMENT_YAML``: element name -> directory (``INSIDE/NAME`` in a chroot)."""
    return yaml.safe_dump({e.name: f"{inside}/{e.name}" if inside else str(e.path)
                           for e in elements})


def copy_ca_bundle(env: Mapping[str, str], dest: Path) -> Path | None:
    """The host's CA bundle (the first of :data:`CA_VARIABLES` in ``env`` naming a
    regular file) copied into the new directory ``dest``, for chrooted hooks to
    trust what the host trusts; ``None`` when the host names none."""
    for key in CA_VARIABLES:
        source = env.get(key)
        if source and os.path.isfile(source):
            dest.mkdir()
            shutil.copyfile(source, dest / CA_BUNDLE)
            LOG.info("chrooted hooks trust the host's CA bundle %s (from $%s)", source, key)
            return dest
    return None


def ca_variables(inside_dir: str) -> dict[str, str]:
    """:data:`CA_VARIABLES` pointing at the bundle copied by :func:`copy_ca_bundle`."""
    return {key: f"{inside_dir}/{CA_BUNDLE}" for key in CA_VARIABLES}


def target_variables(target: Target) -> dict[str, str]:
    """What the image claims to extend, for hooks (e.g. a version for side files):
    ``SYSEXT_TARGET_ID``, ``SYSEXT_TARGET_VERSION_ID``, ``SYSEXT_TARGET_SYSEXT_LEVEL``
    and ``SYSEXT_TARGET_ARCHITECTURE``, each only when the extension-release has it."""
    return {f"SYSEXT_TARGET_{key}": target.release_fields[key]
            for key in ("ID", "VERSION_ID", "SYSEXT_LEVEL", "ARCHITECTURE")
            if target.release_fields.get(key)}


def name_variables(target: Target) -> dict[str, str]:
    """The image name as hooks see it: ``SYSEXT_NAME`` and DIB's ``IMAGE_NAME``."""
    return {"SYSEXT_NAME": target.name, "IMAGE_NAME": target.name}


def target(config: BuildConfig, defaults: Mapping[str, str], arch: str,
           base_release: Mapping[str, str] | None = None) -> Target:
    """Output location and extension-release fields (see the module docstring)."""
    directory, name = split_output(config.output, defaults.get("SYSEXT_DEFAULT_NAME"))
    release.validate_image_name(name)
    given = osrelease.read_file(config.os_release) if config.os_release else {}
    if not given and base_release:
        given = dict(base_release)
    version_id = config.os_version_id or given.get("VERSION_ID")
    level = config.sysext_level or given.get("SYSEXT_LEVEL")
    if not given and not config.os_id:
        version_id = version_id or defaults.get("SYSEXT_DEFAULT_OS_VERSION_ID") or None
    if version_id is None and level is None:
        level = defaults.get("SYSEXT_DEFAULT_SYSEXT_LEVEL") or None
    extra = tuple((k[len("SYSEXT_RELEASE_"):], v) for k, v in sorted(defaults.items())
                  if k.startswith("SYSEXT_RELEASE_") and v)
    identity = release.identity_from(
        None,
        id=config.os_id or given.get("ID") or defaults.get("SYSEXT_DEFAULT_OS_ID"),
        version_id=version_id, sysext_level=level, architecture=arch,
        scope=config.scope or defaults.get("SYSEXT_DEFAULT_SCOPE") or None,
        extra=extra)
    fields = osrelease.parse(release.render_extension_release(identity), "extension-release")
    if defaults.get("SYSEXT_RELOAD_MANAGER") == "1":
        fields["EXTENSION_RELOAD_MANAGER"] = "1"
    return Target(directory=directory, name=name, release_fields=fields, arch=arch)


def copy_static(elements: Sequence[Element], root: Path) -> None:
    """Copy each element's ``static/`` into ``root``, in element order.

    Nothing already in ``root`` is written through: a symlink (planted by an
    earlier element's ``static/``, an ``extra-data.d`` hook or a chrooted
    hook in the overlay's upper layer) or a file where ``static/`` needs a
    directory, or a symlink or directory where it ships a file, is a
    :class:`TreeRuleError` naming the element and both paths.  A later
    element's regular file replaces an earlier one's (as in diskimage-builder).
    """
    for element in elements:
        static = element.static_dir
        if static is not None:
            LOG.info("copying %s/static into the image", element.name)
            _copy_tree(element.name, static, root)


def _copy_tree(element: str, static: Path, root: Path) -> None:
    modes: list[tuple[str, int]] = [("", stat.S_IMODE(static.stat().st_mode))]
    stack = [""]
    child = ""
    try:
        with _DirFd(root) as root_fd:
            while stack:
                rel = stack.pop()
                with os.scandir(static / rel) as it:
                    entries = sorted(it, key=lambda e: e.name)
                with _DirFd(root_fd, rel) as dest:
                    for entry in entries:
                        child = f"{rel}/{entry.name}" if rel else entry.name
                        st = entry.stat(follow_symlinks=False)
                        _copy_entry(element, entry, st, dest, child)
                        if stat.S_ISDIR(st.st_mode):
                            modes.append((child, stat.S_IMODE(st.st_mode)))
                            stack.append(child)
            for rel, mode in reversed(modes):  # like copytree: modes once the content is in
                with _DirFd(root_fd, rel) as fd:
                    os.fchmod(fd, mode)
    except fileutil.NotContained as exc:
        raise TreeRuleError(
            f"element {element}: static/{child} cannot be copied: {exc} in the staging tree",
            hint="the builder never writes through a symlink in the tree: ship the file at "
                 "the link's target, or remove the link first") from None


def _kind(mode: int) -> str:
    return "fifo" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"


def _copy_entry(element: str, entry: os.DirEntry[str], st: os.stat_result, dest: int,
                child: str) -> None:
    """One entry of ``static/`` into the directory ``dest`` (``child``: root-relative)."""
    if stat.S_ISDIR(st.st_mode):
        try:
            fileutil.makedirs_in(dest, entry.name)
        except fileutil.NotContained as exc:
            raise fileutil.NotContained(child, exc.reason) from None
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(entry.path)
        try:
            os.symlink(target, entry.name, dir_fd=dest)
        except FileExistsError:
            there = os.lstat(entry.name, dir_fd=dest)
            if not stat.S_ISLNK(there.st_mode) or os.readlink(entry.name, dir_fd=dest) != target:
                raise fileutil.NotContained(child, "exists already") from None
    elif stat.S_ISREG(st.st_mode):
        src = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(src, "rb") as fin:
            out = fileutil.open_file_in(dest, entry.name, 0o600, where=child)
            with os.fdopen(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
                os.fchmod(fout.fileno(), stat.S_IMODE(st.st_mode))
    else:
        raise TreeRuleError(f"element {element}: static/{child} is a {_kind(st.st_mode)}: "
                            "only files, directories and symlinks can be copied into the image",
                            hint=f"remove it from {entry.path}")


class _DirFd:
    """``with _DirFd(root, rel) as fd``: a contained directory fd, closed on exit."""

    def __init__(self, root: Path | int, rel: str = "") -> None:
        self.fd = fileutil.open_dir_in(root, rel)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
