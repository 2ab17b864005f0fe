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

_SCRIPT = r"""
set -o pipefail
__sb_files=("$@")
__sb_i=0
for __sb_f in "${__sb_files[@]}"; do
    if ! source "$__sb_f"; then
        echo "@MARK@-failed $__sb_i" >&2
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
    if result.returncode != 0:
        index = None
        for line in result.stderr.splitlines():
            if line.startswith(_MARK + "-failed "):
                index = int(line.split()[-1])
        tail = [ln for ln in result.stderr.splitlines() if _MARK not in ln][-runner.TAIL_LINES:]
        where = f" before {phase}" if phase else ""
        if index is not None:
            element, path = files[index]
            raise HookFailedError(
                f"environment file {element}/environment.d/{path.name} failed{where}",
                hint=("last output:\n  " + "\n  ".join(tail)) if tail else None)
        raise HookFailedError(f"sourcing environment.d{where} "
                              f"{runner.describe_status(result.returncode)}",
                              hint="\n  ".join(tail) or None)
    for line in result.stderr.splitlines():
        LOG.info("[environment.d] %s", line)
    env = parse_env0(result.stdout)
    LOG.debug("environment after sourcing %d files: %d variables", len(files), len(env))
    return env
