"""Sourcing ``environment.d`` with bash into the environment hooks see.

All elements' ``environment.d`` files are sourced in numeric order by one bash
process per phase; whatever they export (and only that) is what every hook of
the phase sees.  A file that fails stops the build naming element and file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from sysext_builder import runner
from sysext_builder.errors import HookFailedError

LOG = logging.getLogger(__name__)

_MARK = "__SYSEXT_BUILDER_ENV__"
_FAIL = 97

# bash variables that describe the shell, not the build
_SHELL_NOISE = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"})

# Before each file a "sourcing N" line goes to stderr: whatever the file does
# (return 1, exit N, its own traps, clobbering our variables), the last such
# line names it.  Its stdout goes to stderr too, so that output shows in order.
_SCRIPT = r"""
set -o pipefail
__sb_files=("$@")
__sb_i=0
for __sb_f in "${__sb_files[@]}"; do
    echo "@MARK@-sourcing $__sb_i" >&2
    if ! source "$__sb_f" >&2; then
        echo "@MARK@-failed" >&2
        exit @FAIL@
    fi
    __sb_i=$((__sb_i + 1))
done
unset __sb_f __sb_i __sb_files
printf '%s\0' "@MARK@"
env -0
""".replace("@MARK@", _MARK).replace("@FAIL@", str(_FAIL))


def parse_env0(data: str) -> dict[str, str]:
    """Parse ``env -0`` output (after our marker)."""
    _, _, payload = data.partition(_MARK + "\0")
    env: dict[str, str] = {}
    for item in payload.split("\0"):
        if not item or "=" not in item:
            continue
        key, value = item.split("=", 1)
        if key in _SHELL_NOISE:
            continue
        env[key] = value
    return env


def source(files: Sequence[tuple[str, Path]], base: Mapping[str, str],
           phase: str = "") -> dict[str, str]:
    """Source ``files`` ((element, path) pairs) over ``base``; return the exported env."""
    if not files:
        return dict(base)
    argv = ["bash", "-c", _SCRIPT, "environment.d", *(str(p) for _, p in files)]
    result = runner.run(argv, env=base, check=False)
    lines = result.stderr.splitlines()
    if result.returncode != 0 or _MARK + "\0" not in result.stdout:
        raise _failure(files, lines, result.returncode, phase)
    for line in lines:
        if _MARK not in line:
            LOG.info("[environment.d] %s", line)
    env = parse_env0(result.stdout)
    LOG.debug("environment after sourcing %d files: %d variables", len(files), len(env))
    return env


def _failure(files: Sequence[tuple[str, Path]], lines: list[str], returncode: int,
             phase: str) -> HookFailedError:
    """The error for a failed sourcing: the file that was being sourced and its output."""
    index: int | None = None
    tail: list[str] = []
    for line in lines:
        if line.startswith(_MARK + "-sourcing "):
            index, tail = int(line.split()[-1]), []
        elif _MARK not in line:
            tail.append(line)
    tail = tail[-runner.TAIL_LINES:]
    where = f" before {phase}" if phase else ""
    hint = ("last output:\n  " + "\n  ".join(tail)) if tail else "the file printed nothing"
    if index is None or index >= len(files):
        return HookFailedError(f"sourcing environment.d{where} "
                               f"{runner.describe_status(returncode)}", hint=hint)
    element, path = files[index]
    if _MARK + "-failed" in lines:
        how = "failed"
    elif returncode == 0:
        how = "called exit 0 (a sourced file must not exit; use return)"
    else:
        how = runner.describe_status(returncode)
    return HookFailedError(f"environment file {element}/environment.d/{path.name} {how}{where}",
                           hint=hint)
