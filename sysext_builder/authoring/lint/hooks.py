"""Lint of hooks and environment.d files (see :mod:`sysext_builder.authoring.lint.check`).

A hook must be an executable regular file named ``NN-name`` with a shebang;
a bash/sh hook must turn on ``-e``, ``-u`` and ``-o pipefail`` (in any
spelling: ``set -eu -o pipefail``, ``set -euo pipefail``, three ``set``
lines, ``set -o errexit``, or shebang arguments); bash hooks and
environment.d files must pass ``bash -n``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from sysext_builder import paths, runner, treeread
from sysext_builder.authoring.lint.findings import Finding

#: bytes of a script lint reads (its flags are checked in these; a longer one is not
#: given to ``bash -n``, which would see it cut)
MAX_SCRIPT_BYTES = 1024 * 1024

_HOOK_CHARS = re.compile(r"[0-9A-Za-z_-]+")
_NUMBERED = re.compile(r"[0-9]+-")
_INSTALLTYPE = re.compile(r"(?P<prefix>.+)-(?P<type>[^-]+)-install")
_SHELLS = frozenset({"bash", "sh", "dash", "ksh", "mksh", "zsh", "ash"})
_LONG_FLAGS = {"errexit": "e", "nounset": "u", "pipefail": "pipefail"}
_REQUIRED_FLAGS = (("e", "-e"), ("u", "-u"), ("pipefail", "-o pipefail"))
_BASH_ERROR = re.compile(r": line (\d+): (.*)")


def shell_flags(text: str) -> set[str]:
    """Options a shell script turns on with ``set`` (and shebang arguments).

    ``-e``/``errexit`` give ``e``, ``-u``/``nounset`` give ``u``, ``-o
    pipefail`` gives ``pipefail``; other letters are included as they are.
    """
    lines = text.splitlines()
    flags: set[str] = set()
    if lines and lines[0].startswith("#!"):
        for word in lines[0][2:].split()[1:]:
            if word.startswith("-") and not word.startswith("--"):
                flags.update(word[1:])
    for raw in lines[1:]:
        for part in re.split(r";|&&|\|\|", raw.split("#", 1)[0]):
            words = part.split()
            if len(words) < 2 or words[0] != "set":
                continue
            index = 1
            while index < len(words):
                word = words[index]
                takes_name = word == "-o" or (word.startswith("-") and word.endswith("o")
                                              and not word.startswith("--"))
                if word.startswith("-") and not word.startswith("--"):
                    flags.update(word[1:-1] if takes_name else word[1:])
                if takes_name and index + 1 < len(words):
                    option = words[index + 1]
                    flags.add(_LONG_FLAGS.get(option, option))
                    index += 1
                index += 1
    return flags


def interpreter(first_line: str) -> str:
    """The interpreter's base name in a shebang (``/usr/bin/env bash`` gives ``bash``)."""
    words = first_line[2:].split()
    if not words:
        return ""
    name = os.path.basename(words[0])
    if name == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        name = os.path.basename(rest[0]) if rest else ""
    return name


def read_script(path: Path) -> tuple[bytes, bool] | Finding:
    """The head of a script lint checks (and whether it was cut), or the SB024 finding
    when it is no regular file: lint never opens a fifo or a device."""
    try:
        return treeread.read_prefix(path, MAX_SCRIPT_BYTES)
    except treeread.ReadRefused as exc:
        return Finding(path, None, "SB024", f"{exc.reason}; not read")


def bash_syntax(path: Path, code: str = "SB023", data: bytes | None = None) -> list[Finding]:
    """``bash -n`` of ``path``: a finding per reported syntax error (none without bash).

    The script goes in on stdin, decoded with replacement characters, so that
    neither a file name nor a line bash quotes back can be invalid UTF-8.
    """
    bash = paths.which("bash")
    if bash is None:
        return []
    if data is None:
        head = read_script(path)
        if isinstance(head, Finding):
            return [head]
        data, cut = head
        if cut:
            return []
    done = runner.run([bash, "-n"], input=data.decode("utf-8", "replace"), check=False)
    if done.returncode == 0:
        return []
    for line in done.stderr.splitlines():
        match = _BASH_ERROR.search(line)
        if match:
            return [Finding(path, int(match.group(1)), code, "bash -n: " + match.group(2))]
    return [Finding(path, None, code, "bash -n: " + (done.stderr.strip() or "failed"))]


def lint_hook(path: Path) -> list[Finding]:
    """Name, mode, shebang and shell options of one hook file."""
    found: list[Finding] = []
    name = path.name
    if not _HOOK_CHARS.fullmatch(name):
        why = "a dot disables a hook" if "." in name else "only [0-9A-Za-z_-] run"
        found.append(Finding(path, None, "SB004",
                             f"hook name {name!r} is never run ({why}); name it NN-name"))
    elif not _NUMBERED.match(name):
        found.append(Finding(path, None, "SB003", f"hook name {name!r} has no numeric prefix; "
                             "unnumbered hooks run after all numbered ones (name it NN-name)"))
    if not path.stat().st_mode & stat.S_IXUSR:
        found.append(Finding(path, None, "SB002", "hook is not executable and is never run "
                             "(chmod +x)"))
    script = read_script(path)
    if isinstance(script, Finding):
        return [*found, script]
    head, cut = script
    if head.startswith(b"\x7fELF"):
        return found
    if not head.startswith(b"#!"):
        return [*found, Finding(path, 1, "SB005", "no shebang (#!) on the first line")]
    text = head.decode("utf-8", "replace")
    shell = interpreter(text.splitlines()[0])
    if shell in _SHELLS:
        flags = shell_flags(text)
        missing = [shown for flag, shown in _REQUIRED_FLAGS if flag not in flags]
        if missing:
            found.append(Finding(path, 1, "SB006", f"{shell} hook without "
                                 f"'set -eu -o pipefail' (missing {', '.join(missing)})"))
    if shell == "bash" and not cut:
        found += bash_syntax(path, data=head)
    return found


def lint_phase_dir(directory: Path, phase: str, top: bool = True) -> list[Finding]:
    found: list[Finding] = []
    for entry in sorted(os.listdir(directory)):
        path = directory / entry
        mode = path.stat().st_mode if path.exists() else 0
        if stat.S_ISDIR(mode):
            if phase == "install.d" and top and _INSTALLTYPE.fullmatch(entry):
                found += lint_phase_dir(path, phase, top=False)
            else:
                where = "an install type" if not top else \
                    "install types are install.d/<prefix>-<type>-install"
                found.append(Finding(path, None, "SB018",
                                     f"directory in {phase} is never run ({where})"))
        elif not stat.S_ISREG(mode):
            found.append(Finding(path, None, "SB018",
                                 "not a regular file (or a dangling link); never run"))
        else:
            found += lint_hook(path)
    return found


def lint_environment(directory: Path) -> list[Finding]:
    found: list[Finding] = []
    for entry in sorted(os.listdir(directory)):
        path = directory / entry
        if entry.startswith(".") or path.is_dir():
            continue
        if not path.is_file():
            found.append(Finding(path, None, "SB024", "not a regular file (or a dangling "
                                 "link); not read, and the build skips it"))
            continue
        if path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            found.append(Finding(path, None, "SB007", "environment.d files are sourced by "
                                 "bash, not run; drop the executable bit"))
        found += bash_syntax(path)
    return found
