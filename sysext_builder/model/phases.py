"""Phases, hook collection, ordering and collisions.

The ordering and collision rules are pure functions over :class:`HookFile`
records; :func:`scan` is the thin part that reads element directories.

Rules (DIB's, with its silent cases made loud):

* Hooks of all elements share one namespace per phase.  A hook name used by
  two elements in one phase is an error naming both.
* Executable regular files named ``[0-9A-Za-z_-]+`` run, ordered by the
  numeric value of their leading digits (``9-x`` before ``10-y``), then by
  name; names without a numeric prefix run after the numbered ones.  (DIB's
  ``dib-run-parts`` pipes the names through ``LANG=C sort -n``, which ranks an
  unnumbered name as 0, i.e. before ``1-x``.)
* Anything else in a phase directory (a dotted name, a non-executable file)
  is reported as a warning, never skipped silently.
* In ``install.d``, sub-directories named ``<prefix>-<type>-install`` are
  install types: only the one selected by ``DIB_INSTALLTYPE_<prefix>`` (or
  ``DIB_DEFAULT_INSTALLTYPE``, default ``source``) contributes its hooks.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sysext_builder.errors import ElementFormatError, TreeRuleError
from sysext_builder.model import builtin
from sysext_builder.model.element import PHASES, Element

#: The phases of a build, in order (root.d, first of PHASES, only runs on a base).
BUILD_PHASES: tuple[str, ...] = PHASES[1:]

# dib-run-parts' pattern (run-parts(8)'s): a dot disables a hook (foo.sh, foo.orig)
_HOOK_NAME_RE = re.compile(r"^[0-9A-Za-z_-]+$")
_PREFIX_RE = re.compile(r"^([0-9]+)")
_INSTALLTYPE_RE = re.compile(r"^(?P<prefix>.+)-(?P<type>[^-]+)-install$")


@dataclass(frozen=True)
class HookFile:
    """A directory entry found in a phase directory."""

    element: str
    phase: str
    name: str
    path: Path
    executable: bool
    regular: bool = True
    element_dir: Path | None = None


@dataclass(frozen=True)
class Hook:
    element: str
    phase: str
    name: str
    path: Path
    element_dir: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.element}/{self.phase}/{self.name}"


def sort_key(name: str) -> tuple[int, int, str]:
    """Numeric prefix first (9 before 10), unnumbered names last, then by name."""
    match = _PREFIX_RE.match(name)
    if match:
        return (0, int(match.group(1)), name)
    return (1, 0, name)


def var_suffix(name: str) -> str:
    """DIB's rule for names in variables: every non-alphanumeric becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def installtype_var(prefix: str) -> str:
    return "DIB_INSTALLTYPE_" + var_suffix(prefix)


def selected_installtype(prefix: str, environ: Mapping[str, str]) -> str:
    return (environ.get(installtype_var(prefix))
            or environ.get("DIB_DEFAULT_INSTALLTYPE") or "source")


def order_hooks(files: Iterable[HookFile]) -> tuple[list[Hook], list[str]]:
    """Runnable hooks of one phase in run order, and warnings for the rest.

    Raises ElementFormatError when two elements ship a hook of the same name.
    """
    owners: dict[str, HookFile] = {}
    warnings: list[str] = []
    for f in sorted(files, key=lambda f: (f.name, f.element)):
        if not f.regular:
            warnings.append(f"{f.path}: not a regular file, not run")
            continue
        if not _HOOK_NAME_RE.match(f.name):
            warnings.append(f"{f.path}: name {f.name!r} is not [0-9A-Za-z_-]+, not run "
                            "(a dot in a hook name disables it)")
            continue
        if not f.executable:
            warnings.append(f"{f.path}: not executable, not run (chmod +x to run it)")
            continue
        # DIB merges all elements' hooks into one tree, where two same-named hooks
        # would land on one path; it aborts too, here both owners are named
        first = owners.get(f.name)
        if first is not None:
            raise ElementFormatError(
                f"hook {f.phase}/{f.name} is shipped by both {first.element} and {f.element}",
                hint=f"{first.path} and {f.path}; rename one of them")
        owners[f.name] = f
    hooks = [Hook(f.element, f.phase, f.name, f.path, f.element_dir)
             for f in sorted(owners.values(), key=lambda f: sort_key(f.name))]
    return hooks, warnings


def _stat(element: Element, phase: str, entry: os.DirEntry[str]) -> os.stat_result:
    try:
        return entry.stat()
    except OSError as exc:
        what = "a symlink that does not resolve" if entry.is_symlink() else "unreadable"
        raise ElementFormatError(
            f"element {element.name}: {entry.path}: {phase} entry is {what} "
            f"({exc.strerror})", hint="remove it or point it at an executable file") from exc


def _entries(element: Element, phase: str, directory: Path,
             environ: Mapping[str, str], top: bool = True) -> Iterable[HookFile]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise ElementFormatError(f"element {element.name}: {directory}: cannot read "
                                 f"{phase}: {exc.strerror}") from exc
    for entry in entries:
        st = _stat(element, phase, entry)
        # DIB's install types: install.d/<prefix>-<type>-install/ holds the hooks of
        # one way of installing (source, package, repo...); one is chosen per prefix
        if stat.S_ISDIR(st.st_mode) and phase == "install.d" and top:
            match = _INSTALLTYPE_RE.match(entry.name)
            if match:
                if selected_installtype(match["prefix"], environ) == match["type"]:
                    _check_not_looping(element, directory, entry)
                    yield from _entries(element, phase, Path(entry.path), environ, top=False)
                continue
        yield HookFile(element=element.name, phase=phase, name=entry.name,
                       path=Path(entry.path), executable=bool(st.st_mode & stat.S_IXUSR),
                       regular=stat.S_ISREG(st.st_mode), element_dir=element.path)


def _check_not_looping(element: Element, directory: Path, entry: os.DirEntry[str]) -> None:
    """An install type linking to its own install.d (or above) would list it again."""
    if not entry.is_symlink():
        return
    target = os.path.realpath(entry.path)
    here = os.path.realpath(directory)
    if here == target or here.startswith(target.rstrip("/") + "/"):
        raise ElementFormatError(
            f"element {element.name}: {entry.path}: install type directory links to "
            f"{target}, its own install.d or a directory above it",
            hint="an install type holds its own hooks; make it a real directory")


def scan(elements: Sequence[Element], phase: str,
         environ: Mapping[str, str]) -> tuple[list[Hook], list[str]]:
    """Collect and order the hooks of ``phase`` across ``elements``."""
    files: list[HookFile] = []
    for element in elements:
        if phase in element.entries:
            files.extend(_entries(element, phase, element.path / phase, environ))
    return order_hooks(files)


def environment_files(elements: Sequence[Element]) -> list[tuple[str, Path]]:
    """``environment.d`` files of all elements in numeric order (element, path).

    DIB sources them before every phase from the merged tree (so same-named files
    clash there too).  Its ``sort -n`` sees full paths, which start with ``/``,
    so DIB's order is in effect bytewise (``10-x`` before ``9-y``); DIB also only
    sources names matching ``[0-9A-Za-z_.-]+``.
    """
    found: dict[str, tuple[str, Path]] = {}
    for element in elements:
        env_dir = element.environment_dir
        if env_dir is None:
            continue
        for name in sorted(os.listdir(env_dir)):
            path = env_dir / name
            if name.startswith(".") or not path.is_file():
                continue
            if name in found:
                raise ElementFormatError(
                    f"environment.d/{name} is shipped by both {found[name][0]} "
                    f"and {element.name}", hint="rename one of them")
            found[name] = (element.name, path)
    return [found[n] for n in sorted(found, key=sort_key)]


def check_source_repository_collisions(elements: Sequence[Element]) -> None:
    owners: dict[str, str] = {}
    for element in elements:
        for path in element.source_repositories:
            if path.name in owners:
                raise ElementFormatError(
                    f"{path.name} is shipped by both {owners[path.name]} and {element.name}",
                    hint="DIB would silently keep one; rename one of them")
            owners[path.name] = element.name


def static_files(element: Element) -> list[str]:
    """Relative paths of every non-directory entry under the element's static/."""
    static = element.static_dir
    if static is None:
        return []
    result = []
    for dirpath, dirnames, filenames in os.walk(static):
        dirnames.sort()
        rel = os.path.relpath(dirpath, static)
        for name in sorted(filenames) + [d for d in dirnames
                                         if os.path.islink(os.path.join(dirpath, d))]:
            result.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(result)


def check_static_collisions(elements: Sequence[Element]) -> None:
    owners: dict[str, str] = {}
    for element in elements:
        for rel in static_files(element):
            if rel in owners:
                raise ElementFormatError(
                    f"static/{rel} is shipped by both {owners[rel]} and {element.name}",
                    hint="one element must own each file")
            owners[rel] = element.name


#: DIB phases that have no meaning for a system extension
# (block-device.d and pre-finalise.d work on the partitioned disk DIB makes)
UNSUPPORTED_PHASES = ("post-root.d", "block-device.d", "pre-finalise.d")


def unsupported_phase_dirs(elements: Sequence[Element]) -> list[str]:
    """Warnings for phase directories that would never run (never skipped silently)."""
    return [f"{element.path / entry}: DIB phase {entry} does not exist in sysext-builder; "
            "its hooks do not run (see doc/dib.rst)"
            for element in elements for entry in sorted(element.entries)
            if entry in UNSUPPORTED_PHASES]


#: what makes an element describe a disk's partitions (DIB's block-device layer)
PARTITION_FILES = ("block-device-default.yaml", "block-device.d")


def check_not_disk_image(elements: Sequence[Element]) -> None:
    """Refuse elements that lay out a disk or make its boot chain (DIB's
    :data:`.builtin.DISK_IMAGE_ONLY`): a system extension has neither, and building
    one from them would fail late or give an image without what they are for."""
    for element in elements:
        reason = builtin.DISK_IMAGE_ONLY.get(element.name)
        if reason is not None and builtin.is_dib_element(element.path):
            raise TreeRuleError(
                f"element {element.name} (diskimage-builder's) {reason}; a system extension "
                "has no boot loader, kernel, initramfs or partitions (it merges into /usr "
                "and /opt of a running system)",
                hint="drop the element: the base OS boots the machine")
        for name in PARTITION_FILES:
            if name in element.entries:
                raise TreeRuleError(
                    f"element {element.name}: {element.path / name} lays out the partitions "
                    "of a disk image; a system extension has none (it merges into /usr and "
                    "/opt of a running system)",
                    hint="drop the element: the disk is the base OS's (with --base, its image)")
