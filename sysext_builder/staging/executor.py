"""Run one phase's hooks with the right environment, logging and timing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder import runner
from sysext_builder.errors import HookFailedError
from sysext_builder.model.phases import Hook

LOG = logging.getLogger(__name__)

#: how a hook is started: (argv, env) -> (returncode, tail lines)
Launcher = Callable[[Sequence[str], Mapping[str, str], Callable[[str], None]],
                    tuple[int, list[str]]]


def default_launcher(argv: Sequence[str], env: Mapping[str, str],
                     on_line: Callable[[str], None]) -> tuple[int, list[str]]:
    return runner.stream(argv, env=env, on_line=on_line)


def _is_shell_script(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            first = f.readline(128)
    except OSError:
        return False
    return first.startswith(b"#!") and (b"bash" in first or b"/sh" in first)


def hook_argv(hook: Hook, trace: bool, path: str | None = None) -> list[str]:
    """The command line for ``hook`` (at ``path`` as the hook sees it): traced
    through ``bash -x`` when asked."""
    shown = path or str(hook.path)
    if trace and _is_shell_script(hook.path):
        return ["bash", "-x", shown]
    return [shown]


#: (hook) -> (hook path, element dir) as the hook sees them (e.g. inside a chroot)
Translate = Callable[[Hook], tuple[str, str]]


@dataclass
class PhaseReport:
    phase: str
    hook_seconds: list[tuple[str, float]] = field(default_factory=list)


def run_phase(phase: str, hooks: Sequence[Hook], env: Mapping[str, str], *,
              trace: bool = False, launcher: Launcher = default_launcher,
              wrap: Callable[[list[str]], list[str]] | None = None,
              translate: Translate | None = None,
              after: Callable[[Hook], None] | None = None) -> PhaseReport:
    """Run ``hooks`` in order; the first failure raises HookFailedError.

    ``wrap`` and ``translate`` let the builder run hooks elsewhere (chrooted
    into the overlay over a base): ``wrap`` rewrites the command line,
    ``translate`` gives the paths the hook sees.  ``after`` checks what a
    hook that succeeded left behind (and raises to stop the build).
    """
    report = PhaseReport(phase)
    for hook in hooks:
        prefix = f"[{hook.element}/{hook.name}]"
        hook_env = dict(env)
        hook_env["SYSEXT_ELEMENT"] = hook.element
        path, element_dir = (translate(hook) if translate is not None
                             else (str(hook.path), str(hook.element_dir or "")))
        if element_dir:
            hook_env["SYSEXT_ELEMENT_DIR"] = element_dir
        argv = hook_argv(hook, trace, path)
        if wrap is not None:
            argv = wrap(argv)
        LOG.info("%s running %s", prefix, hook.label, extra={"progress_hook": hook.label})

        def on_line(line: str, prefix: str = prefix) -> None:
            LOG.info("%s %s", prefix, line)

        start = time.monotonic()
        returncode, tail = launcher(argv, hook_env, on_line)
        elapsed = time.monotonic() - start
        report.hook_seconds.append((hook.label, elapsed))
        if returncode != 0:
            hint = ("last output:\n  " + "\n  ".join(tail)) if tail else "the hook printed nothing"
            raise HookFailedError(
                f"hook {hook.name} of element {hook.element} in phase {phase} "
                f"{runner.describe_status(returncode)}", hint=hint)
        LOG.debug("%s done in %.3fs", prefix, elapsed)
        if after is not None:
            after(hook)
    return report
