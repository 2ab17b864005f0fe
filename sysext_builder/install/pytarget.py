"""Where Python packages go in the target image, and which Python runs them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sysext_builder.errors import InstallError

DEBIAN_SITE = Path("usr/lib/python3/dist-packages")
_PYDIR = re.compile(r"python(3\.\d+)")


@dataclass(frozen=True)
class TargetPython:
    """Where Python packages go in the image (``site`` is relative) and its X.Y."""

    site: Path
    version: str | None


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _versions(roots: Sequence[Path], marker: str) -> list[str]:
    found = set()
    for root in roots:
        for libdir in ("usr/lib", "usr/lib64"):
            try:
                entries = os.listdir(root / libdir)
            except OSError:
                continue
            for name in entries:
                match = _PYDIR.fullmatch(name)
                if match and (root / libdir / name / marker).exists():
                    found.add(match.group(1))
    return sorted(found, key=_vkey)


def target_python(root: Path, base: Path | None = None,
                  wanted: Sequence[str] = (),
                  declared: Mapping[str, str] | None = None) -> TargetPython:
    """Site directory and version of the target's Python, from ``root`` or ``base``.

    Without a base, an element may declare the target's Python instead
    (``SYSEXT_PYTHON_SITE``, relative to ``/``, and ``SYSEXT_PYTHON_VERSION``
    X.Y) for when ``root`` holds none; with a base, the base decides.
    """
    roots = [root] + ([base] if base is not None else [])
    site = (declared or {}).get("SYSEXT_PYTHON_SITE", "").strip("/")
    if base is None and site and not any((root / "usr/lib").glob("python3*")):
        return TargetPython(Path(site),
                            (declared or {}).get("SYSEXT_PYTHON_VERSION") or None)
    stdlib = _versions(roots, "os.py")
    if any((r / DEBIAN_SITE).is_dir() for r in roots):
        return TargetPython(DEBIAN_SITE, stdlib[-1] if stdlib else None)
    sites = _versions(roots, "site-packages")
    if sites:
        return TargetPython(Path(f"usr/lib/python{sites[-1]}/site-packages"), sites[-1])
    where = f"{root}" + (f" or the base {base}" if base is not None else "")
    asked = f"Python packages {', '.join(wanted)} were requested, but " if wanted else ""
    raise InstallError(f"{asked}the target has no Python: neither {DEBIAN_SITE} nor "
                       f"usr/lib/python3.X/site-packages exists in {where}",
                       hint="add python3 to the element's package-installs (with --base) "
                            "or build against a base that has Python")


def target_site(root: Path, base: Path | None = None, *, wanted: Sequence[str] = ()) -> Path:
    """``root/<site>``: Debian's dist-packages if the target uses it, else site-packages."""
    return root / target_python(root, base, wanted).site
