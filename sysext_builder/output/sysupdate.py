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

from sysext_builder.errors import OutputError, UsageError
from sysext_builder.fileutil import redact_urls, remove_path, url_secrets
from sysext_builder.output.atomic import commit, temp_path_for

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~^-]*$")


def check_version(version: str) -> str:
    if not _VERSION_RE.match(version):
        raise UsageError(f"--image-version {version!r}: use letters, digits and . + ~ ^ -",
                         hint="no '_' or '/': the version is part of NAME_VERSION.raw")
    return version


def versioned_name(name: str, version: str) -> str:
    return f"{name}_{version}.raw"


def check_url(url: str) -> str:
    """``url`` if it can be the transfer's source: a URL without a credential, which
    would be written into ``NAME.transfer``, a file made to be installed on every target."""
    if not url.startswith(("https://", "http://", "file://")):
        raise UsageError(f"--sysupdate {redact_urls(url)!r} is not a URL",
                         hint="e.g. https://example.com/sysext/ (where the images are served)")
    if url_secrets(url):
        raise UsageError(f"--sysupdate {redact_urls(url)!r}: the URL carries a credential, "
                         "which NAME.transfer would publish to every target",
                         hint="serve the images where the targets need no credential in the URL")
    return url


def transfer(name: str, url: str) -> str:
    url = check_url(url).rstrip("/")
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
    text = transfer(name, url)
    versioned = image.with_name(versioned_name(name, version))
    definition = image.with_name(f"{name}.transfer")
    for final, content in ((versioned, None), (definition, text)):
        tmp = temp_path_for(final)
        try:
            if content is None:
                os.link(image, tmp)
            else:
                _write_text(tmp, content)
        except OSError as exc:
            remove_path(tmp)
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from exc
        commit(tmp, final)
    return [versioned, definition]


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)
