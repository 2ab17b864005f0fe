"""The frozen settings of one build.

``BuildConfig`` is built once by the CLI (or a caller of the library) and
never changes during the build.  Element defaults read from
``environment.d`` are resolved into a :class:`Target` separately, so the
precedence is explicit: command line > target os-release > element defaults.

Variables the builder reads from the elements' ``environment.d`` (after
sourcing them with the user's environment):

``SYSEXT_DEFAULT_NAME``
    image name when ``-o`` gives only a directory (or is absent)
``SYSEXT_DEFAULT_OS_ID``, ``SYSEXT_DEFAULT_OS_VERSION_ID``
    target ``ID``/``VERSION_ID`` when neither options, ``--os-release`` nor a
    ``--base`` set them (the version default is ignored when ``--os-id`` is given)
``SYSEXT_DEFAULT_SYSEXT_LEVEL``
    ``SYSEXT_LEVEL`` used only when no ``VERSION_ID`` was given by any source
``SYSEXT_DEFAULT_SCOPE``
    ``SYSEXT_SCOPE`` when ``--scope`` is absent
``SYSEXT_RELEASE_<KEY>``
    extra extension-release fields, e.g. ``SYSEXT_RELEASE_SYSEXT_NAME="Microsoft Azure"``
    writes ``SYSEXT_NAME="Microsoft Azure"``
``SYSEXT_RELOAD_MANAGER=1``
    force ``EXTENSION_RELOAD_MANAGER=1`` even without shipped units
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sysext_builder.errors import UsageError

DEFAULT_FORMATS: tuple[str, ...] = ("squashfs",)

#: user variables passed to hooks besides the builder's own
_USER_VAR_RE = re.compile(r"^DIB_[A-Za-z0-9_]+$")
#: a ``--base`` starting so names a base to make (staging/debian.py), not a path
NAMED_BASE_PREFIXES = ("debian:",)


@dataclass(frozen=True)
class BuildConfig:
    elements: tuple[str, ...]
    output: str | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    compression: str | None = None
    arch: str | None = None
    os_release: Path | None = None
    os_id: str | None = None
    os_version_id: str | None = None
    sysext_level: str | None = None
    scope: str | None = None
    checksum: bool = False
    #: ``--oem-partition DIR``: also write Flatcar's OEM partition tree (output/oem.py)
    oem_partition: Path | None = None
    #: ``--no-activate``: without the flag file ``sysext/active-oem-ID``
    oem_no_activate: bool = False
    workdir: Path | None = None
    keep_workdir: bool = False
    trace: bool = False
    strict: bool = False
    element_paths: tuple[str, ...] = ()
    epoch: int = 0
    #: a path, or the text of a named base (``debian:...``, see :func:`is_named_base`)
    base: Path | str | None = None
    #: the target's systemd major version, when known (``--target-systemd`` or the base's)
    target_systemd: int | None = None
    cache_dir: Path | None = None
    offline: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)

    def user_variables(self) -> dict[str, str]:
        """The user's ``DIB_*`` variables (passed to hooks, never recorded)."""
        return {k: v for k, v in sorted(self.environ.items()) if _USER_VAR_RE.match(k)}


def epoch_from(environ: Mapping[str, str]) -> int:
    """``SOURCE_DATE_EPOCH`` from the environment, default 0 (reproducible)."""
    raw = environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer") from None
    if value < 0:
        raise UsageError("SOURCE_DATE_EPOCH must not be negative")
    return value


def parse_formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names:
        raise UsageError("-t/--format needs at least one format name")
    return names


def split_output(output: str | None, default_name: str | None) -> tuple[Path, str]:
    """``-o`` value -> (directory, image name).

    ``-o out/oem-azure`` names directory ``out`` and image ``oem-azure`` (a
    trailing ``.raw`` is dropped); ``-o out/`` or an existing directory gives
    only the directory and the name comes from the elements' default.
    """
    directory = Path(".")
    name: str | None = None
    if output:
        path = Path(output)
        if output.endswith("/") or path.is_dir():
            directory = path
        else:
            directory = path.parent
            name = path.name[:-4] if path.name.endswith(".raw") else path.name
    name = name or default_name
    if not name:
        raise UsageError("no image name: pass -o DIR/NAME",
                         hint="or use an element that sets SYSEXT_DEFAULT_NAME")
    return directory, name


# -- the options table -------------------------------------------------------------------
#
# Every ``sysext-create`` option is declared here once.  The table drives the
# argument parser (cli/create.py), the ``options:`` keys an image of a
# ``--config`` file may set (imageset.py, which also takes the YAML key from
# here), the command line each ``--jobs`` child inherits, and
# :func:`from_values` that turns parsed values into a :class:`BuildConfig`.

#: kinds of values: a string, a path (made absolute for children, relative to
#: the YAML file in ``options:``), an integer, a flag, a repeatable string
KINDS = ("str", "path", "int", "flag", "list")


@dataclass(frozen=True)
class Option:
    """One command-line option of ``sysext-create``."""

    name: str  # long option without dashes; also its key in a --config image's options:
    group: str
    help: str
    kind: str = "str"
    short: str | None = None
    metavar: str | None = None
    default: Any = None
    #: the BuildConfig field it sets; None: the run's, not one image's (--jobs ...)
    field: str | None = None
    #: an image of --config may set it under options:
    per_image: bool = False
    #: --config children inherit it from the command line (their own value wins)
    inherited: bool = False
    #: declared by cli.common for every command (only listed here for the children)
    common: bool = False

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


_RUN, _OUT, _ID, _INST, _STEER = ("several images (CI jobs)", "output",
                                  "target identity (extension-release)",
                                  "installing software", "running")

OPTIONS: tuple[Option, ...] = (
    Option("config", _RUN, kind="path", metavar="FILE",
           help="build every image listed in this YAML file (name, elements, output, "
                "formats, options, environment per image); the identity, discovery and "
                "running options on the command line (not -t) apply to every image unless "
                "the image sets them; a summary table ends the run"),
    Option("jobs", _RUN, kind="int", short="-j", metavar="N", default=1,
           help="with --config, build N images at a time (default: %(default)s)"),
    Option("sysupdate", _RUN, metavar="URL",
           help="also publish each image for systemd-sysupdate: NAME_VERSION.raw and "
                "NAME.transfer (source URL) beside NAME.raw; needs --image-version"),
    Option("image-version", _RUN, metavar="VERSION",
           help="version of the images for --sysupdate"),
    Option("output", _OUT, short="-o", metavar="PATH", field="output",
           help="DIR/NAME of the image; NAME is what systemd matches and names the "
                "extension-release file (default: ./ and the name the elements set)"),
    Option("format", _OUT, short="-t", metavar="FMT[,FMT]", default="squashfs",
           field="formats",
           help="output formats, comma separated: squashfs, erofs, directory "
                "(default: %(default)s)"),
    Option("compression", _OUT, metavar="ALG|FMT=ALG[,...]", field="compression",
           per_image=True, inherited=True,
           help="compression for all formats, or per format "
                "(default: zstd for squashfs, lz4hc for erofs)"),
    Option("checksum", _OUT, kind="flag", field="checksum", per_image=True, inherited=True,
           help="also write NAME.raw.sha256 and SHA256SUMS (sha256sum format); --config "
                "and --sysupdate runs always write SHA256SUMS"),
    Option("oem-partition", _OUT, kind="path", metavar="DIR", field="oem_partition",
           per_image=True,
           help="for an OEM image (oem-common), also write the OEM partition's tree into "
                "DIR: oem-release, grub.cfg, sysext/oem-ID-VERSION.raw and the empty flag "
                "sysext/active-oem-ID; other files in DIR are kept; needs -t squashfs or "
                "erofs"),
    Option("no-activate", _OUT, kind="flag", field="oem_no_activate", per_image=True,
           help="with --oem-partition, do not write the flag sysext/active-oem-ID (an "
                "existing one is kept)"),
    Option("arch", _ID, short="-a", metavar="ARCH", field="arch", per_image=True,
           inherited=True,
           help="ARCHITECTURE in systemd's spelling (x86-64, arm64, ...) or _any "
                "(default: the build host's)"),
    Option("os-release", _ID, kind="path", metavar="FILE", field="os_release",
           per_image=True, inherited=True,
           help="the target's os-release: ID, VERSION_ID and SYSEXT_LEVEL from it"),
    Option("os-id", _ID, metavar="ID", field="os_id", per_image=True, inherited=True,
           help="target ID (or _any for every OS)"),
    Option("os-version-id", _ID, metavar="VERSION", field="os_version_id", per_image=True,
           inherited=True, help="target VERSION_ID (exact match on the host)"),
    Option("sysext-level", _ID, metavar="LEVEL", field="sysext_level", per_image=True,
           inherited=True,
           help="target SYSEXT_LEVEL (version-independent extensions, e.g. 1.0)"),
    Option("scope", _ID, metavar="SCOPE", field="scope", per_image=True, inherited=True,
           help='SYSEXT_SCOPE: words of "system portable initrd"'),
    Option("target-systemd", _ID, metavar="VERSION", field="target_systemd",
           per_image=True, inherited=True,
           help="the systemd version of the target (default: the --base's); below 255 "
                "an image's units start at boot only with the host helper, which is then "
                "written beside the image (doc/booting.rst)"),
    Option("base", _INST, kind="path", metavar="PATH|debian:RELEASE", field="base",
           per_image=True, inherited=True,
           help="build against this target OS (directory, .tar[.gz|.xz|.zst], squashfs or "
                "erofs image, or debian:RELEASE[/VARIANT][+PKG,...], made once with "
                "mmdebstrap and cached): install hooks run chrooted in an overlay over it, "
                "packages come from its package manager, only what is new lands in the "
                "image, and its os-release is the default target identity; needs root"),
    Option("cache-dir", _INST, kind="path", metavar="DIR", field="cache_dir", inherited=True,
           help="cache for packages, wheels, sources and unpacked bases, shared and locked "
                "between builds (default: ~/.cache/sysext-builder)"),
    Option("offline", _INST, kind="flag", field="offline", inherited=True,
           help="use only what the cache holds; fail naming anything missing"),
    Option("workdir", _STEER, kind="path", metavar="DIR", field="workdir", inherited=True,
           help="create the build directory under DIR (default: $TMPDIR or /var/tmp)"),
    Option("keep-workdir", _STEER, kind="flag", field="keep_workdir", inherited=True,
           help="keep the build directory after the build, also on failure"),
    Option("trace", _STEER, kind="flag", short="-x", field="trace", inherited=True,
           help="run shell hooks with set -x (also exports DIB_DEBUG_TRACE=1)"),
    Option("strict", _STEER, kind="flag", field="strict", per_image=True, inherited=True,
           help="refuse /etc and /var content instead of lowering it to tmpfiles.d"),
    Option("logfile", _STEER, metavar="FILE", help="also write the full debug log to FILE"),
    Option("element-path", "", kind="list", field="element_paths", inherited=True,
           common=True, help="(declared by cli.common)"),
    Option("debug", "", kind="flag", inherited=True, common=True,
           help="(declared by cli.common)"),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def per_image_options() -> dict[str, Option]:
    """The keys an image of a ``--config`` file may set under ``options:``."""
    return {o.name: o for o in OPTIONS if o.per_image}


def option_argv(option: Option, value: Any) -> list[str]:
    """``value`` of ``option`` as command-line words (``[]`` for unset or off)."""
    if value is None or value is False or value == []:
        return []
    if option.kind == "flag":
        return [option.flag]
    values = value if option.kind == "list" else [value]
    words: list[str] = []
    for item in values:
        absolute = option.kind in ("path", "list") and not (
            option.name == "base" and is_named_base(item))
        text = str(Path(item).absolute()) if absolute else str(item)
        words += [option.flag, text]
    return words


def inherited_argv(values: Mapping[str, Any]) -> list[str]:
    """The options a ``--config`` child inherits from the parsed command line."""
    words: list[str] = []
    for option in OPTIONS:
        if option.inherited:
            words += option_argv(option, values.get(option.dest))
    return words


def is_named_base(value: object) -> bool:
    """Whether a ``--base`` value names a base to make rather than a path."""
    return str(value).startswith(NAMED_BASE_PREFIXES)


def _converted(option: Option, value: Any) -> Any:
    if value is None:
        return None
    if option.name == "format":
        return parse_formats(value)
    if option.name == "base":  # a named base stays text: staging/debian.py parses it
        return str(value) if is_named_base(value) else Path(value)
    if option.name == "target-systemd":
        return _systemd_version(value)
    if option.kind == "list":
        return tuple(value)
    return value


def _systemd_version(value: object) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 200 <= int(text) < 1000:
        raise UsageError(f"--target-systemd: {text!r} is not a systemd version",
                         hint="the major version, e.g. 252 or 257")
    return int(text)


def from_values(values: Mapping[str, Any], *, elements: Sequence[str],
                environ: Mapping[str, str]) -> BuildConfig:
    """The :class:`BuildConfig` of parsed option values (keyed by ``Option.dest``)."""
    settings: dict[str, Any] = {}
    for option in OPTIONS:
        if option.field is not None and option.dest in values:
            converted = _converted(option, values[option.dest])
            if converted is not None:
                settings[option.field] = converted
    return BuildConfig(elements=tuple(elements), epoch=epoch_from(environ),
                       environ=dict(environ), **settings)


def groups() -> Iterator[tuple[str, list[Option]]]:
    """Parser groups in table order, each with its options (common ones left out)."""
    seen: dict[str, list[Option]] = {}
    for option in OPTIONS:
        if not option.common:
            seen.setdefault(option.group, []).append(option)
    yield from seen.items()
