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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder.errors import UsageError

DEFAULT_FORMATS: tuple[str, ...] = ("squashfs",)

#: user variables passed to hooks besides the builder's own
_USER_VAR_RE = re.compile(r"^DIB_[A-Za-z0-9_]+$")


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
    workdir: Path | None = None
    keep_workdir: bool = False
    trace: bool = False
    strict: bool = False
    element_paths: tuple[str, ...] = ()
    epoch: int = 0
    base: Path | None = None
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
