"""package-installs and pkg-map: which distro packages an element asks for.

Pure: parsing and evaluation only; installing is a package backend's job.

``package-installs.yaml`` (or ``.json``) maps a *logical* package name to ``null``, one dict
of options, or a list of such dicts (each dict is one independent request, e.g. per
architecture).  Keys: ``phase`` (pre-install.d, install.d (default), post-install.d), the
flags ``uninstall`` (remove instead) and ``build-only`` (install, then remove again; both
removals run after post-install.d's hooks), ``installtype`` (only when the element's install
type -- ``DIB_INSTALLTYPE_<element>`` or ``DIB_DEFAULT_INSTALLTYPE``, default ``source`` --
equals it), ``arch`` / ``not-arch`` (comma lists, not both), ``when`` (``VAR = value``,
``VAR != value``, or a list: all must hold; an unset VAR is an error, as in DIB).

On purpose unlike DIB: ``uninstall: false`` means false (DIB only looks at the key); arch
names are compared canonically (``x86_64`` matches ``amd64``); unknown keys are errors with
a suggestion; ``VAR == x`` is malformed (DIB would read ``=`` and the value ``= x``).

``pkg-map`` (JSON, one per element) translates logical names for the target: sections
``default``, ``family`` (family -> map), ``distro`` (distro -> map) and ``release`` (distro
-> release -> map).  DIB layers them in that order, so the most specific wins.  A mapped
value of ``""`` skips the package (the name is mapped, so no less specific table is asked);
a value with spaces names several packages; an unmapped name is used as is.
"""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from sysext_builder.errors import ElementFormatError, InstallError
from sysext_builder.model.element import Element, read_text
from sysext_builder.model.phases import selected_installtype

PACKAGE_PHASES: tuple[str, ...] = ("pre-install.d", "install.d", "post-install.d")
_KEYS: tuple[str, ...] = ("phase", "uninstall", "build-only", "installtype", "arch",
                          "not-arch", "when", "dib_python_version")
_WHEN_RE = re.compile(r"^\s*(?P<var>\w+)\s*(?P<op>!=|=)(?!=)\s*(?P<val>.*?)\s*$")

#: os-release ID -> pkg-map family.
_FAMILIES: dict[str, str] = {
    "debian": "debian", "ubuntu": "debian",
    "fedora": "redhat", "centos": "redhat", "rhel": "redhat", "rocky": "redhat",
    "almalinux": "redhat", "openeuler": "redhat",
    "sles": "suse", "suse": "suse",
    "gentoo": "gentoo",
}

#: Every spelling we accept -> the DIB (Debian) architecture name.
_ARCH_ALIASES: dict[str, str] = {
    "x86-64": "amd64", "x86_64": "amd64", "amd64": "amd64",
    "x86": "i386", "i386": "i386", "i486": "i386", "i586": "i386", "i686": "i386",
    "arm64": "arm64", "aarch64": "arm64",
    "arm": "armhf", "armhf": "armhf", "armv7l": "armhf", "armv7hl": "armhf",
    "ppc64-le": "ppc64le", "ppc64le": "ppc64le", "ppc64el": "ppc64le",
    "ppc64": "ppc64", "ppc": "powerpc", "powerpc": "powerpc",
    "s390x": "s390x", "s390": "s390",
    "riscv64": "riscv64", "loongarch64": "loong64", "loong64": "loong64",
    "mips64-le": "mips64el", "mips64el": "mips64el",
}


def dib_arch(arch: str) -> str:
    """DIB's name for ``arch`` (systemd's ``x86-64``, uname's ``x86_64``, ... -> ``amd64``).

    Unknown names are returned unchanged."""
    return _ARCH_ALIASES.get(arch.strip(), arch.strip())


def family_of(os_id: str, id_like: str | Sequence[str] = ()) -> str:
    """pkg-map family of an os-release ``ID`` (then ``ID_LIKE``); ``""`` if none."""
    words = id_like.split() if isinstance(id_like, str) else list(id_like)
    for name in [os_id, *words]:
        name = name.strip().lower()
        if name.startswith("opensuse"):
            return "suse"
        if name in _FAMILIES:
            return _FAMILIES[name]
    return ""


@dataclass(frozen=True)
class Condition:
    """One ``when`` clause: ``var op value``."""

    var: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.var} {self.op} {self.value}"


@dataclass(frozen=True)
class PackageSpec:
    """One request of a package-installs file (before evaluation)."""

    element: str
    file: Path
    name: str
    phase: str = "install.d"
    uninstall: bool = False
    build_only: bool = False
    installtype: str | None = None
    arch: tuple[str, ...] | None = None
    not_arch: tuple[str, ...] | None = None
    when: tuple[Condition, ...] = ()
    #: DIB's ``dib_python_version``: only for a target whose DIB_PYTHON_VERSION it is
    python_version: str | None = None


@dataclass(frozen=True)
class PackageAction:
    """A package to install (or uninstall) in one phase, after mapping."""

    element: str
    phase: str
    name: str
    logical: str
    uninstall: bool
    build_only: bool


class _Missing(enum.Enum):
    MISSING = "MISSING"


#: :meth:`PkgMap.lookup` result for a name the map does not mention.
MISSING: Final = _Missing.MISSING


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _load_document(path: Path) -> Any:
    text = read_text(path)  # bounded, regular files only: a fifo is an error, not a hang
    if path.suffix == ".json" or path.name == "pkg-map":
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise ElementFormatError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and mark is not None and cmark.line != mark.line:
            problem += f" ({context} at line {cmark.line + 1})"
        raise ElementFormatError(f"{where}: invalid YAML: {problem}") from exc


def _arch_list(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise ElementFormatError(f"{where}: expected a comma separated list of architectures")
    result = tuple(i.strip() for i in items if i.strip())
    if not result:
        raise ElementFormatError(f"{where}: empty architecture list")
    return result


def _conditions(value: object, where: str) -> tuple[Condition, ...]:
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        match = _WHEN_RE.match(item) if isinstance(item, str) else None
        if match is None:
            raise ElementFormatError(f"{where}: malformed 'when' {item!r}",
                                     hint="write 'VAR = value' or 'VAR != value' "
                                          "(a list means all of them)")
        result.append(Condition(match["var"], match["op"], match["val"]))
    return tuple(result)


def _flag(params: Mapping[str, object], key: str, where: str) -> bool:
    value = params.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ElementFormatError(f"{where}: {key!r} must be true or false, not {value!r}")
    return value


def _spec(element: str, path: Path, name: str, params: object) -> PackageSpec:
    where = f"{path}: package {name!r}"
    if params is None:
        return PackageSpec(element=element, file=path, name=name)
    if not isinstance(params, dict):
        raise ElementFormatError(f"{where}: expected nothing, a mapping of options or a "
                                 f"list of mappings, not {type(params).__name__}")
    for key in params:
        if key not in _KEYS:
            raise ElementFormatError(f"{where}: unknown key {key!r}{_suggest(str(key), _KEYS)}",
                                     hint="valid keys: " + ", ".join(_KEYS))
    python = params.get("dib_python_version")
    if python is not None and str(python) not in ("2", "3"):
        raise ElementFormatError(f"{where}: dib_python_version must be 2 or 3, not {python!r}")
    phase = params.get("phase", "install.d")
    if phase not in PACKAGE_PHASES:
        raise ElementFormatError(f"{where}: phase {phase!r} is not one of "
                                 + ", ".join(PACKAGE_PHASES) + _suggest(str(phase),
                                                                        PACKAGE_PHASES))
    installtype = params.get("installtype")
    if installtype is not None and not isinstance(installtype, str):
        raise ElementFormatError(f"{where}: installtype must be a string")
    if params.get("arch") is not None and params.get("not-arch") is not None:
        raise ElementFormatError(f"{where}: give 'arch' or 'not-arch', not both")
    arch = params.get("arch")
    not_arch = params.get("not-arch")
    when = params.get("when")
    return PackageSpec(
        element=element, file=path, name=name, phase=phase,
        uninstall=_flag(params, "uninstall", where),
        build_only=_flag(params, "build-only", where),
        installtype=installtype,
        arch=_arch_list(arch, where + " arch") if arch is not None else None,
        not_arch=_arch_list(not_arch, where + " not-arch") if not_arch is not None else None,
        when=_conditions(when, where) if when is not None else (),
        python_version=str(python) if python is not None else None)


def parse_package_installs(path: Path, element: str) -> list[PackageSpec]:
    """Parse ``package-installs.yaml``/``.json`` of ``element`` (file order kept)."""
    doc = _load_document(path)
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ElementFormatError(f"{path}: expected a mapping of package names, "
                                 f"not {type(doc).__name__}")
    specs: list[PackageSpec] = []
    for name, params in doc.items():
        if not isinstance(name, str) or not name.strip() or len(name.split()) != 1:
            raise ElementFormatError(f"{path}: invalid package name {name!r}")
        entries = params if isinstance(params, list) else [params]
        if not entries:
            raise ElementFormatError(f"{path}: package {name!r}: empty list of options")
        specs.extend(_spec(element, path, name, p) for p in entries)
    return specs


@dataclass(frozen=True)
class PkgMap:
    """A parsed ``pkg-map`` file."""

    path: Path | None = None
    default: Mapping[str, str] = field(default_factory=dict)
    family: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    distro: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    release: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)

    def lookup(self, name: str, distro: str, family: str = "",
               release: str = "") -> str | None | _Missing:
        """Mapped name; None when mapped to ``""`` (skip); MISSING when unmapped."""
        # DIB's update() order reversed: the first table naming ``name`` decides
        for table in (self.release.get(distro, {}).get(release, {}) if release else {},
                      self.distro.get(distro, {}),
                      self.family.get(family, {}) if family else {},
                      self.default):
            if name in table:
                return table[name] or None
        return MISSING


_SECTIONS = ("default", "family", "distro", "release")


def _name_table(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ElementFormatError(f"{where}: expected an object of package names")
    for key, mapped in value.items():
        if not isinstance(mapped, str):
            raise ElementFormatError(f"{where}: {key!r} must map to a string "
                                     f"(\"\" to skip), not {mapped!r}")
    return dict(value)


def _nested(value: object, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise ElementFormatError(f"{where}: expected an object")
    return {str(k): _name_table(v, f"{where}.{k}") for k, v in value.items()}


def parse_pkg_map(path: Path) -> PkgMap:
    """Parse a ``pkg-map`` JSON file."""
    doc = _load_document(path)
    if doc is None:
        return PkgMap(path=path)
    if not isinstance(doc, dict):
        raise ElementFormatError(f"{path}: expected a JSON object with sections "
                                 + ", ".join(_SECTIONS))
    for key in doc:
        if key not in _SECTIONS:
            raise ElementFormatError(f"{path}: unknown section {key!r}"
                                     + _suggest(key, _SECTIONS),
                                     hint="sections: " + ", ".join(_SECTIONS))
    release = doc.get("release", {})
    if not isinstance(release, dict):
        raise ElementFormatError(f"{path}: release: expected an object")
    return PkgMap(
        path=path,
        default=_name_table(doc.get("default", {}), f"{path}: default"),
        family=_nested(doc.get("family", {}), f"{path}: family"),
        distro=_nested(doc.get("distro", {}), f"{path}: distro"),
        release={str(d): _nested(v, f"{path}: release.{d}") for d, v in release.items()})


def collect(elements: Sequence[Element]) -> tuple[list[PackageSpec], dict[str, PkgMap]]:
    """Every element's package-installs specs and pkg-map (parsed once per build)."""
    specs: list[PackageSpec] = []
    maps: dict[str, PkgMap] = {}
    for element in elements:
        if element.package_installs is not None:
            specs.extend(parse_package_installs(element.package_installs, element.name))
        if element.pkg_map is not None:
            maps[element.name] = parse_pkg_map(element.pkg_map)
    return specs, maps


def _arch_matches(spec: PackageSpec, arch: str) -> bool:
    if spec.arch is not None:
        return arch in {dib_arch(a) for a in spec.arch}
    if spec.not_arch is not None:
        return arch not in {dib_arch(a) for a in spec.not_arch}
    return True


def _when_holds(spec: PackageSpec, environ: Mapping[str, str]) -> bool:
    for cond in spec.when:
        if cond.var not in environ:
            raise InstallError(
                f"element {spec.element}: {spec.file}: package {spec.name!r}: "
                f"'when: {cond}' uses {cond.var}, which is not set",
                hint=f"give {cond.var} a default in an environment.d file of the element")
        value = environ[cond.var]
        if (value == cond.value) != (cond.op == "="):
            return False
    return True


def select(specs: Iterable[PackageSpec], *, phase: str, environ: Mapping[str, str],
           arch: str, distro: str, family: str, release: str,
           pkg_map: PkgMap | None | Mapping[str, PkgMap | None] = None
           ) -> list[PackageAction]:
    """The actions of ``phase`` for the target, sorted by element then name.

    ``pkg_map`` is one map applied to every spec, or a mapping of element
    name to that element's map (pkg-map files are per element).
    """
    target_arch = dib_arch(arch)
    actions: set[PackageAction] = set()
    for spec in specs:
        if spec.phase != phase:
            continue
        if spec.installtype is not None and \
                spec.installtype != selected_installtype(spec.element, environ):
            continue
        if not _arch_matches(spec, target_arch) or not _when_holds(spec, environ):
            continue
        if spec.python_version not in (None, environ.get("DIB_PYTHON_VERSION", "3")):
            continue  # as in DIB: a python-2-only package on a python 3 target is skipped
        table = pkg_map.get(spec.element) if isinstance(pkg_map, Mapping) else pkg_map
        mapped = table.lookup(spec.name, distro, family, release) if table else MISSING
        if mapped is None:
            continue
        names = [spec.name] if mapped is MISSING else mapped.split()
        for name in names:
            actions.add(PackageAction(element=spec.element, phase=phase, name=name,
                                      logical=spec.name, uninstall=spec.uninstall,
                                      build_only=spec.build_only))
    return sorted(actions, key=lambda a: (a.element, a.name, a.logical, a.uninstall,
                                          a.build_only))


def require_base(actions: Sequence[PackageAction], have_base: bool) -> None:
    """Without a base tree there is no package manager: fail naming what was asked."""
    if have_base or not actions:
        return
    wanted: dict[str, list[str]] = {}
    for action in actions:
        names = wanted.setdefault(action.element, [])
        if action.name not in names:
            names.append(action.name)
    asks = "; ".join(f"element {element} asks for distro packages {', '.join(names)}"
                     for element, names in sorted(wanted.items()))
    raise InstallError(f"{asks}: pass --base PATH (packages are installed with the "
                       "target's package manager)")
