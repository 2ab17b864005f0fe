"""systemd-sysupdate transfer definitions for built images (``--sysupdate URL``).

For image ``NAME`` and version ``V`` the run places ``NAME_V.raw`` beside
``NAME.raw`` (a hard link) and writes ``NAME.transfer``::

    [Source]  Type=url-file, Path=URL, MatchPattern=NAME_@v.raw
    [Target]  Type=regular-file, Path=/var/lib/extensions.d,
              MatchPattern=NAME_@v.raw, CurrentSymlink=/var/lib/extensions/NAME.raw

Why this shape keeps systemd's name rule intact: systemd >= 256 cuts the
extension name at the first ``_``, so ``NAME_V.raw`` still matches
``extension-release.NAME``; systemd 252 does not cut, so the target is
reached through the ``CurrentSymlink`` named ``NAME.raw``, the name systemd
matches there.  systemd-sysupdate reads ``SHA256SUMS`` from the same URL:
the run's ``SHA256SUMS`` lists the versioned files.  (systemd < 257 reads
``sysupdate.d/*.conf``: install the file under that suffix there.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sysext_builder.errors import UsageError
from sysext_builder.fileutil import redact_urls
from sysext_builder.output.atomic import commit, temp_path_for

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~^-]*$")


def check_version(version: str) -> str:
    if not _VERSION_RE.match(version):
        raise UsageError(f"--image-version {version!r}: use letters, digits and . + ~ ^ -",
                         hint="no '_' or '/': the version is part of NAME_VERSION.raw")
    return version


def versioned_name(name: str, version: str) -> str:
    return f"{name}_{version}.raw"


def transfer(name: str, url: str) -> str:
    if not url.startswith(("https://", "http://", "file://")):
        raise UsageError(f"--sysupdate {redact_urls(url)!r} is not a URL",
                         hint="e.g. https://example.com/sysext/ (where the images are served)")
    url = url.rstrip("/")
    pattern = f"{name}_@v.raw"
    return "\n".join([
        "# Written by sysext-builder: update the system extension " + name,
        "[Transfer]",
        "Verify=no",
        "",
        "[Source]",
        "Type=url-file",
        f"Path={url}/",
        f"MatchPattern={pattern}",
        "",
        "[Target]",
        "Type=regular-file",
        "Path=/var/lib/extensions.d/",
        f"MatchPattern={pattern}",
        f"CurrentSymlink=/var/lib/extensions/{name}.raw",
        "",
    ])


def publish(image: Path, version: str, url: str) -> list[Path]:
    """Hard-link ``NAME_V.raw`` and write ``NAME.transfer`` beside ``image`` (atomically)."""
    name = image.name[:-4] if image.name.endswith(".raw") else image.name
    versioned = image.with_name(versioned_name(name, version))
    tmp = temp_path_for(versioned)
    os.link(image, tmp)
    commit(tmp, versioned)
    definition = image.with_name(f"{name}.transfer")
    tmp = temp_path_for(definition)
    tmp.write_text(transfer(name, url), encoding="utf-8")
    os.chmod(tmp, 0o644)
    commit(tmp, definition)
    return [versioned, definition]
