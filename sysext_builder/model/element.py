"""The element model: parsing one element directory and discovering elements.

An element is a directory on the search path.  :class:`Element` is the frozen
result of reading one; :class:`ElementIndex` knows every element name on the
search path and loads elements on demand (a 10,000-element path must not cost
10,000 parses when a build needs twenty).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder import treeread
from sysext_builder.errors import ElementFormatError, MissingElementError

LOG = logging.getLogger(__name__)

#: Phase directories an element may carry, in the order they run.
PHASES: tuple[str, ...] = (
    "root.d",
    "extra-data.d",
    "pre-install.d",
    "install.d",
    "post-install.d",
    "finalise.d",
    "cleanup.d",
)

#: element files the model reads (element-deps, ...) larger than this are refused
MAX_FILE_BYTES = 1024 * 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def valid_name(name: str) -> bool:
    """Element (and virtual) names: letters, digits, ``_ . + -``; no leading punctuation."""
    return bool(_NAME_RE.fullmatch(name))  # fullmatch: "$" alone lets "a\n" through


@dataclass(frozen=True)
class SearchDir:
    """One directory of the element search path and where it came from."""

    path: Path
    origin: str


@dataclass(frozen=True)
class Element:
    """One parsed element directory."""

    name: str
    path: Path
    origin: str
    deps: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    entries: frozenset[str] = field(default_factory=frozenset)
    #: what the target OS must provide for the element's files to work (``target-requires``)
    target_requires: tuple[str, ...] = ()

    def file(self, name: str) -> Path | None:
        """Path of a top-level entry, or None when the element lacks it."""
        return self.path / name if name in self.entries else None

    @property
    def package_installs(self) -> Path | None:
        return self.file("package-installs.yaml") or self.file("package-installs.json")

    @property
    def pkg_map(self) -> Path | None:
        return self.file("pkg-map")

    @property
    def source_repositories(self) -> tuple[Path, ...]:
        return tuple(self.path / e for e in sorted(self.entries)
                     if e.startswith("source-repository-"))

    @property
    def static_dir(self) -> Path | None:
        return self.file("static")

    @property
    def environment_dir(self) -> Path | None:
        return self.file("environment.d")


def read_text(path: Path | str, limit: int = MAX_FILE_BYTES) -> str:
    """An element file as text: a regular file of at most ``limit`` bytes, UTF-8.

    A fifo, a device (or a link to one), a directory or a larger file is a
    one-line :class:`ElementFormatError` naming the file, never a hang.
    """
    try:
        data = treeread.read_regular(path, limit)
    except treeread.ReadRefused as exc:
        raise ElementFormatError(str(exc), hint="element files are regular files of at most "
                                 f"{limit} bytes") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ElementFormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def read_name_list(path: Path | str) -> tuple[str, ...]:
    """Read an ``element-deps``/``element-provides`` style file.

    One name per line; blank lines and ``#`` comments (whole-line or trailing)
    are ignored; duplicates are dropped keeping the first.  Raises
    :class:`ElementFormatError` naming the file and line of a bad name.
    """
    text = read_text(path)
    names: dict[str, None] = {}
    fullmatch = _NAME_RE.fullmatch
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if "#" in raw:
            raw = raw.split("#", 1)[0]
        line = raw.strip()
        if not line:
            continue
        if fullmatch(line) is None:
            raise ElementFormatError(
                f"{path}:{lineno}: invalid element name {line!r}",
                hint="one name per line: letters, digits and '_.+-', "
                     "not starting with punctuation; '#' starts a comment")
        names[line] = None
    return tuple(names)


def read_requirements(path: Path | str) -> tuple[str, ...]:
    """Read a ``target-requires`` file: one requirement a line, free text.

    ``#`` starts a comment (whole-line or trailing); blanks are collapsed;
    duplicates are dropped keeping the first.  Raises
    :class:`ElementFormatError` when the file cannot be read as UTF-8 text.
    """
    text = read_text(path)
    lines = (" ".join(raw.split("#", 1)[0].split()) for raw in text.splitlines())
    return tuple(dict.fromkeys(line for line in lines if line))


def target_requirements(elements: Iterable[Element]) -> list[tuple[str, str]]:
    """(element name, requirement) of every ``target-requires`` line, in element order."""
    return [(e.name, req) for e in elements for req in e.target_requires]


def load_element(path: Path, origin: str = "") -> Element:
    """Parse the element directory ``path``."""
    spath = os.fspath(path)
    name = os.path.basename(spath)
    try:
        entries = frozenset(os.listdir(spath))
    except OSError as exc:
        raise ElementFormatError(f"{path}: cannot read element: {exc.strerror}") from exc
    deps = (read_name_list(os.path.join(spath, "element-deps"))
            if "element-deps" in entries else ())
    provides = (read_name_list(os.path.join(spath, "element-provides"))
                if "element-provides" in entries else ())
    requires = (read_requirements(os.path.join(spath, "target-requires"))
                if "target-requires" in entries else ())
    if name in deps:
        raise ElementFormatError(f"{path / 'element-deps'}: element {name!r} depends on itself")
    if name in provides:
        raise ElementFormatError(
            f"{path / 'element-provides'}: element {name!r} provides its own name")
    return Element(name=name, path=path, origin=origin, deps=deps,
                   provides=provides, entries=entries, target_requires=requires)


class ElementIndex:
    """Every element name on a search path; elements are parsed on first use.

    The first directory that holds a name wins; each shadowed copy is logged at
    warning level with both paths.
    """

    def __init__(self, search_path: Sequence[SearchDir]) -> None:
        self.search_path = tuple(search_path)
        self._where: dict[str, SearchDir] = {}
        self._loaded: dict[str, Element] = {}
        for sdir in self.search_path:
            self._scan(sdir)

    def _scan(self, sdir: SearchDir) -> None:
        try:
            with os.scandir(sdir.path) as it:
                children = sorted(e.name for e in it if e.is_dir())
        except FileNotFoundError:
            LOG.warning("element directory %s (%s) does not exist", sdir.path, sdir.origin)
            return
        except NotADirectoryError:
            LOG.warning("element path %s (%s) is not a directory", sdir.path, sdir.origin)
            return
        except OSError as exc:
            LOG.warning("element directory %s (%s) cannot be read: %s", sdir.path, sdir.origin,
                        exc.strerror)
            return
        for name in children:
            if name.startswith(".") or name in ("__pycache__", "__init__.py"):
                continue  # hidden, or the Python package an elements directory may be (DIB's)
            if not valid_name(name):
                LOG.warning("ignoring %s: %r is not a valid element name",
                            sdir.path / name, name)
                continue
            first = self._where.get(name)
            if first is None:
                self._where[name] = sdir
            else:
                LOG.warning("element %s: %s (%s) overrides %s (%s)", name,
                            first.path / name, first.origin, sdir.path / name, sdir.origin)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def names(self) -> list[str]:
        return sorted(self._where)

    def location(self, name: str) -> SearchDir:
        return self._where[name]

    def get(self, name: str) -> Element:
        """Load ``name`` (cached).  Raises MissingElementError when unknown."""
        element = self._loaded.get(name)
        if element is None:
            sdir = self._where.get(name)
            if sdir is None:
                raise MissingElementError(f"element {name!r} not found",
                                          hint=self.searched_hint())
            element = load_element(sdir.path / name, sdir.origin)
            self._loaded[name] = element
        return element

    def load_all(self) -> Iterable[Element]:
        """Every element on the path (used for error explanations and lint)."""
        for name in self.names():
            yield self.get(name)

    def searched_hint(self) -> str:
        dirs = ", ".join(str(s.path) for s in self.search_path) or "(none)"
        return f"searched: {dirs}"
