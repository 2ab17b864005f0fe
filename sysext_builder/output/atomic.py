"""Atomic placement: hidden temporary names beside the final ones, and the commit.

Every output of a build is written under a name from :func:`temp_path_for`
in the output directory itself, so that :func:`commit` is a rename on one
filesystem: a reader (``systemd-sysext``, a web server publishing
``/var/lib/extensions``) sees the old file or the new one, never a half
written image.  The names start with a dot because systemd-sysext and
sysupdate skip hidden entries when they scan a directory.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import secrets
from pathlib import Path

from sysext_builder import runner
from sysext_builder.errors import OutputError
from sysext_builder.fileutil import remove_path

LOG = logging.getLogger(__name__)


def temp_path_for(final: Path) -> Path:
    """A hidden, unique name beside ``final``: ``.NAME.tmp-<pid>-<boot.start>-<random>``.

    Being in the same directory makes :func:`commit` a rename on one
    filesystem; being hidden keeps it out of ``/var/lib/extensions`` globs.
    The process stamp lets a later build tell this temporary from a live
    one: what a killed build left beside ``final`` is removed here first.
    """
    remove_stale(final)
    return final.with_name(f".{final.name}.tmp-{runner.temp_tag()}-{secrets.token_hex(4)}")


def remove_stale(final: Path) -> list[str]:
    """Remove the temporaries of ``final`` (``.NAME.tmp-*``, ``.NAME.old-*``) whose
    build is dead (:func:`.runner.stale_temps`); returns their names.  A live
    build's temporaries, and every other file, are never touched."""
    return runner.remove_stale_temps(final.parent, (f".{final.name}.tmp-", f".{final.name}.old-"))


def _is_extension_tree(path: Path) -> bool:
    """Whether the directory ``path`` is a directory-format image (one the builder
    writes): it holds ``usr/lib/extension-release.d/extension-release.*``."""
    release_dir = path / "usr/lib/extension-release.d"
    try:
        return any(e.name.startswith("extension-release.") for e in os.scandir(release_dir))
    except OSError:
        return False


def _fsync_path(path: Path, directory: bool) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE).

    Returns False where the kernel, libc or filesystem cannot do it.
    """
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                     ctypes.c_uint]
    func.restype = ctypes.c_int
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_with_tree(tmp: Path, final: Path) -> None:
    """Put ``tmp`` at ``final`` when either of them is a directory.

    Preferred: one atomic renameat2(RENAME_EXCHANGE), then the old content
    (now at ``tmp``) is removed.  Fallback where exchange is unsupported:
    rename ``final`` aside, rename ``tmp`` into place, remove the old one.
    In the fallback there is a window of two rename(2) calls during which
    ``final`` does not exist; if the second rename fails the old one is put
    back.  Readers never see a partial tree in either case.
    """
    if not os.path.lexists(final):
        os.rename(tmp, final)
        return
    if _exchange(tmp, final):
        remove_path(tmp)
        return
    aside = final.with_name(f".{final.name}.old-{runner.temp_tag()}-{secrets.token_hex(4)}")
    os.rename(final, aside)
    try:
        os.rename(tmp, final)
    except OSError:
        os.rename(aside, final)
        raise
    remove_path(aside)


def commit(tmp: Path, final: Path) -> None:
    """Atomically put the complete ``tmp`` (from :func:`temp_path_for`) at ``final``.

    Files (and symlinks) are fsynced and moved with rename(2), replacing any
    existing file: readers see the old or the new image, never a mix.
    Directories are swapped as described in :func:`_replace_with_tree`
    (their contents are not fsynced).  The directory entry is fsynced after.
    Raises :class:`OutputError`; ``tmp`` is left for the caller to remove.
    """
    if tmp.parent.resolve() != final.parent.resolve():
        raise OutputError(f"cannot commit {tmp} to {final}: not in the same directory")
    if final.is_dir() and not final.is_symlink() and not _is_extension_tree(final):
        raise OutputError(f"{final} is a directory that is not an extension image; "
                          "not replacing it",
                          hint="move it away or build into another output directory")
    try:
        tmp_is_dir = tmp.is_dir() and not tmp.is_symlink()
        final_is_dir = final.is_dir() and not final.is_symlink()
        if tmp_is_dir or final_is_dir:
            _replace_with_tree(tmp, final)
        else:
            if not tmp.is_symlink():
                _fsync_path(tmp, directory=False)
            os.replace(tmp, final)
        _fsync_path(final.parent, directory=True)
    except OSError as exc:
        raise OutputError(f"cannot move {tmp.name} to {final}: {exc.strerror or exc}",
                          hint="is the output directory writable and on one filesystem?") \
            from exc
    LOG.debug("placed %s", final)
