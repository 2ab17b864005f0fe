"""``sysext-element-new``: write a working element skeleton.

The skeleton lints clean, builds, and carries a test case::

    NAME/
      README.rst                     title, what it does, variables, tests
      element-deps                   comments only (no dependencies yet)
      environment.d/10-NAME          DIB_NAME_GREETING default, SYSEXT_DEFAULT_NAME
      install.d/50-NAME              sources $SYSEXT_FUNCTIONS, installs
                                     /usr/share/NAME/hello and /usr/bin/NAME-hello
      units                          a commented-out example
      test-elements/basic/           the test case (see sysext_builder.authoring.testing.cases)
        README.rst
        element-deps                 NAME
        expect                       what the image must hold
        post-install.d/50-check-NAME checks the staging tree during the build

The whole tree is written into a temporary sibling directory and renamed into
place, so a failure never leaves half a skeleton.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from sysext_builder.errors import OutputError, UsageError

#: Element names the skeleton accepts: they must also work as hook file names
#: (no dots) and image names (no ``_`` or ``+``, which systemd >= 256 cuts at).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")

_README = """\
@NAME@
@LINE@

What it does: installs ``/usr/share/@NAME@/hello`` and ``/usr/bin/@NAME@-hello``,
which prints it.  Replace this with what your element adds to the extension.

Variables
---------

``@VAR@``
    The greeting written to ``/usr/share/@NAME@/hello``
    (default: ``hello from @NAME@``).

Tests
-----

``test-elements/basic`` builds the element and checks the image (``expect``)::

    sysext-element-lint @NAME@/
    sysext-test-elements @NAME@ --element-path DIR
"""

_DEPS = """\
# Elements this one needs, one name a line, sorted.
"""

_ENVIRONMENT = """\
# Sourced by bash before every phase: export defaults, never run commands.
export @VAR@=${@VAR@:-"hello from @NAME@"}
# The image name when sysext-create -o gives only a directory.
export SYSEXT_DEFAULT_NAME=${SYSEXT_DEFAULT_NAME:-@NAME@}
"""

_HOOK = """\
#!/bin/bash
# Install @NAME@ into the image.  TARGET_ROOT is the staging tree; only /usr
# and /opt end up in the extension.
set -eu -o pipefail

source "$SYSEXT_FUNCTIONS"

work=$(mktemp -d "$TMP_BUILD_DIR/@NAME@.XXXXXX")
printf '%s\\n' "$@VAR@" > "$work/hello"
sysext_install_file "$work/hello" /usr/share/@NAME@/hello 0644

cat > "$work/@NAME@-hello" <<'EOF'
#!/bin/sh
exec cat /usr/share/@NAME@/hello
EOF
sysext_install_file "$work/@NAME@-hello" /usr/bin/@NAME@-hello 0755
info "@NAME@: installed /usr/share/@NAME@/hello"
"""

_UNITS = """\
# Units the extension enables (the unit file must be installed under
# /usr/lib/systemd/system by a hook or static/):
#
#   enable UNIT [TARGET]    ship TARGET.wants/UNIT (TARGET: the unit's WantedBy=)
#   upholds UNIT [TARGET]   the same, and keep it running (Upholds= drop-in)
#
#enable @NAME@.service
"""

_CASE_README = """\
basic
=====

Test case of ``@NAME@``: builds it alone and checks that the greeting and
the command are in the image (``expect``, and ``post-install.d/50-check-@NAME@``
during the build).
"""

_CASE_EXPECT = """\
# Paths the image must hold ("!PATH": must not), relative to the image root.
usr/share/@NAME@/hello contains hello from @NAME@
usr/bin/@NAME@-hello executable
!usr/lib/os-release
"""

_CASE_HOOK = """\
#!/bin/bash
# Runs during the test build, after install.d: fail early with a clear message.
set -eu -o pipefail

source "$SYSEXT_FUNCTIONS"

[ -s "$TARGET_ROOT/usr/share/@NAME@/hello" ] || die "@NAME@ did not install its greeting"
[ -x "$TARGET_ROOT/usr/bin/@NAME@-hello" ] || die "@NAME@ did not install its command"
"""

#: relative path -> (template, mode)
FILES: dict[str, tuple[str, int]] = {
    "README.rst": (_README, 0o644),
    "element-deps": (_DEPS, 0o644),
    "environment.d/10-@NAME@": (_ENVIRONMENT, 0o644),
    "install.d/50-@NAME@": (_HOOK, 0o755),
    "units": (_UNITS, 0o644),
    "test-elements/basic/README.rst": (_CASE_README, 0o644),
    "test-elements/basic/element-deps": ("@NAME@\n", 0o644),
    "test-elements/basic/expect": (_CASE_EXPECT, 0o644),
    "test-elements/basic/post-install.d/50-check-@NAME@": (_CASE_HOOK, 0o755),
}


def variable(name: str) -> str:
    """The ``DIB_`` variable of the skeleton for element ``name``."""
    return "DIB_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_GREETING"


def render(template: str, name: str) -> str:
    return (template.replace("@LINE@", "=" * len(name)).replace("@VAR@", variable(name))
            .replace("@NAME@", name))


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"invalid element name {name!r}",
                         hint="use letters, digits and '-', starting with a letter or digit "
                              "(at most 63 characters), e.g. my-tool")


def create(name: str, directory: Path) -> Path:
    """Write the skeleton of element ``name`` into ``directory``; return its path.

    Raises :class:`UsageError` for an invalid name or an existing target and
    :class:`OutputError` when writing fails.
    """
    check_name(name)
    target = directory / name
    if os.path.lexists(target):
        raise UsageError(f"{target} already exists", hint="choose another name or --dir")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=directory))
    except OSError as exc:
        raise OutputError(f"cannot create {target}: {exc}") from exc
    try:
        for rel, (template, mode) in FILES.items():
            path = scratch / render(rel, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(template, name), encoding="utf-8")
            path.chmod(mode)
        for sub in sorted(p for p in scratch.rglob("*") if p.is_dir()):
            sub.chmod(0o755)
        scratch.chmod(0o755)
        os.rename(scratch, target)
    except OSError as exc:
        raise OutputError(f"cannot create {target}: {exc}") from exc
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target
