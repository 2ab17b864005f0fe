"""Would systemd-sysext accept this extension on that host?

A pure mirror of systemd's ``extension_release_validate()``
(``src/shared/extension-util.c``, v252 through v258) and of the image name
rule of ``path_extract_image_name()`` (``src/basic/os-util.c``).  Values are
compared as exact strings; an empty value counts as absent, as in systemd's
``isempty()``.

The checks, in systemd's order:

1. the host os-release must carry an ``ID`` (systemd-sysext refuses to merge
   anything otherwise);
2. the extension must carry release data at all;
3. ``SYSEXT_SCOPE`` (split on whitespace, default ``system portable``) must
   contain the host scope; a present but empty scope matches nothing;
4. ``ARCHITECTURE`` must equal the host's unless absent or ``_any``;
5. ``ID`` must be set; ``ID=_any`` accepts at once;
6. ``ID`` must equal the host ``ID`` (or a word of the host's ``ID_LIKE``:
   upstream since v258, and in Debian's 257 build, which backports it);
7. a host with neither ``VERSION_ID`` nor ``SYSEXT_LEVEL`` accepts;
8. if host and extension both have ``SYSEXT_LEVEL`` they must be equal;
9. otherwise, if the host has ``VERSION_ID``, the extension's must equal it;
   (a host with only ``SYSEXT_LEVEL`` accepts an extension without one).

The host fields come from ``ROOT/etc/os-release``, else
``ROOT/usr/lib/os-release`` (:func:`.osrelease.read_root`); the host
architecture is not an os-release field: systemd takes it from ``uname()``.

The ``user.extension-release.strict=false`` xattr, which lets systemd fall
back to any extension-release file when the name does not match, is not
modelled: :func:`release_name_ok` answers the strict question.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_SCOPE = ("system", "portable")
_IMAGE_SUFFIXES_256 = (".sysext.raw", ".confext.raw", ".raw")


def _get(fields: Mapping[str, str], key: str) -> str:
    # systemd tests fields with isempty(): KEY= and a missing KEY are the same
    return fields.get(key) or ""


def incompatibility(ext: Mapping[str, str], host: Mapping[str, str], *, host_arch: str,
                    scope: str = "system", id_like: bool = True) -> str | None:
    """None when systemd-sysext would merge ``ext`` on ``host``, else the reason.

    ``ext`` and ``host`` are parsed extension-release and os-release fields;
    ``host_arch`` is the host architecture in systemd's spelling; ``id_like``
    enables the ``ID_LIKE`` match of systemd >= 258.
    """
    host_id = _get(host, "ID")
    if not host_id:
        return "host os-release has no ID"
    if not ext:
        return "extension carries no release data"
    reason = _scope_or_arch(ext, host_arch=host_arch, scope=scope)
    if reason is not None:
        return reason
    ext_id = _get(ext, "ID")
    if not ext_id:
        return "extension has no ID"
    if ext_id == "_any":
        return None
    reason = _id_mismatch(ext_id, host, id_like=id_like)
    if reason is not None:
        return reason
    return _version_mismatch(ext, host)


def id_like_default(systemd_version: int, *, debian_build: bool) -> bool:
    """Does that systemd-sysext match an extension ID against the host's ``ID_LIKE``?

    Upstream from 258 on; Debian's 257 (``257.x-N~deb13uM``) carries the change as a
    patch (its systemd-sysext names ``ID_LIKE``, 252's does not), so a 257 read off
    a dpkg database counts too.
    """
    return systemd_version >= 258 or (debian_build and systemd_version >= 257)


def _scope_or_arch(ext: Mapping[str, str], *, host_arch: str, scope: str) -> str | None:
    # Not _get(): here absent and empty differ.  An absent scope means the default;
    # systemd splits an empty one into an empty list, which contains no scope.
    raw_scope = ext.get("SYSEXT_SCOPE")
    words = raw_scope.split() if raw_scope is not None else list(DEFAULT_SCOPE)
    if scope not in words:
        shown = f"'{raw_scope}'" if raw_scope is not None else f"'{' '.join(words)}' (default)"
        return f"extension scope {shown} does not include '{scope}'"
    # Compared verbatim with systemd's name for the running kernel's machine, so a
    # uname spelling such as x86_64 in the image never matches.
    arch = _get(ext, "ARCHITECTURE")
    if arch and arch not in ("_any", host_arch):
        return f"extension architecture '{arch}' does not match host '{host_arch}'"
    return None


def _id_mismatch(ext_id: str, host: Mapping[str, str], *, id_like: bool) -> str | None:
    host_id = _get(host, "ID")
    if ext_id == host_id:
        return None
    # Only upstream >= 258 and Debian's 257 know ID_LIKE here; 252-256 compare ID alone.
    like = _get(host, "ID_LIKE")
    if id_like and ext_id in like.split():
        return None
    reason = f"extension ID '{ext_id}' does not match host ID '{host_id}'"
    if id_like and like:
        reason += f" or ID_LIKE '{like}'"
    return reason


def _version_mismatch(ext: Mapping[str, str], host: Mapping[str, str]) -> str | None:
    host_version = _get(host, "VERSION_ID")
    host_level = _get(host, "SYSEXT_LEVEL")
    if not host_version and not host_level:
        return None  # rolling release: the ID match is enough
    ext_level = _get(ext, "SYSEXT_LEVEL")
    # SYSEXT_LEVEL decides only when both sides set it; otherwise VERSION_ID does,
    # and a host with a level but no VERSION_ID accepts an extension without one.
    if host_level and ext_level:
        if ext_level != host_level:
            return (f"extension SYSEXT_LEVEL '{ext_level}' does not match "
                    f"host SYSEXT_LEVEL '{host_level}'")
        return None
    if host_version:
        ext_version = _get(ext, "VERSION_ID")
        if not ext_version:
            reason = f"extension has no VERSION_ID to match host VERSION_ID '{host_version}'"
            if host_level:
                reason += f" (or SYSEXT_LEVEL to match '{host_level}')"
            return reason
        if ext_version != host_version:
            return (f"extension VERSION_ID '{ext_version}' does not match "
                    f"host VERSION_ID '{host_version}'")
    return None


def image_name(image_file_name: str, systemd_version: int, *, directory: bool = False) -> str:
    """The NAME systemd derives from an installed image file (or ``directory``) name."""
    name = image_file_name.rstrip("/").rsplit("/", 1)[-1]
    # 256 added versioned image names (path_extract_image_name()): NAME_1.2.raw and
    # boot-counted NAME+3.raw both belong to NAME.  252 only drops ".raw", so there
    # extension-release.NAME_1.2 would be the file to ship.
    if systemd_version >= 256:
        for suffix in _IMAGE_SUFFIXES_256:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        for index, char in enumerate(name):
            if char in "_+":
                name = name[:index]
                break
    elif name.endswith(".raw") and not directory:
        # measured: 252 names a directory "n.raw" "n.raw", and so ignores it when it
        # carries extension-release.n
        name = name[: -len(".raw")]
    return name


def _image_name_valid(name: str) -> bool:
    # image_name_is_valid(): a valid file name, no control characters, not ".#..."
    return (bool(name) and name not in (".", "..") and "/" not in name
            and len(name.encode("utf-8", "surrogateescape")) <= 255
            and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
            and not name.startswith(".#"))


def release_name_ok(image_file_name: str, release_suffix: str, systemd_version: int, *,
                    directory: bool = False) -> bool:
    """Would ``extension-release.<release_suffix>`` be found in ``image_file_name``?

    NAME is the file name minus ``.raw``; systemd >= 256 also strips
    ``.sysext.raw`` and cuts NAME at the first ``_`` or ``+``; 252 does not.
    """
    name = image_name(image_file_name, systemd_version, directory=directory)
    return _image_name_valid(name) and name == release_suffix
