"""Running a phase's hooks: order, environment, failure reporting."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import HookFailedError
from sysext_builder.model.phases import Hook
from sysext_builder.staging import executor


class FakeLauncher:
    def __init__(self, results: Mapping[str, tuple[int, list[str]]]) -> None:
        self.results = results
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str],
                 on_line: Callable[[str], None]) -> tuple[int, list[str]]:
        self.calls.append((list(argv), dict(env)))
        code, lines = self.results.get(Path(argv[-1]).name, (0, []))
        for line in lines:
            on_line(line)
        return code, lines


def hook(element: str, name: str) -> Hook:
    return Hook(element, "install.d", name, Path(f"/el/{element}/install.d/{name}"),
                Path(f"/el/{element}"))


class TestRunPhase(testtools.TestCase):

    def test_runs_in_order_with_per_hook_element_variables(self) -> None:
        launcher = FakeLauncher({})
        hooks = [hook("a", "10-x"), hook("b", "20-y")]
        report = executor.run_phase("install.d", hooks, {"TARGET_ROOT": "/r"},
                                    launcher=launcher)
        self.assertEqual([["/el/a/install.d/10-x"], ["/el/b/install.d/20-y"]],
                         [argv for argv, _ in launcher.calls])
        self.assertEqual("a", launcher.calls[0][1]["SYSEXT_ELEMENT"])
        self.assertEqual("/el/b", launcher.calls[1][1]["SYSEXT_ELEMENT_DIR"])
        self.assertEqual("/r", launcher.calls[1][1]["TARGET_ROOT"])
        self.assertEqual(["a/install.d/10-x", "b/install.d/20-y"],
                         [label for label, _ in report.hook_seconds])

    def test_failure_names_element_phase_hook_status_and_tail(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger())
        launcher = FakeLauncher({"20-y": (3, ["compiling", "boom: no such file"])})
        hooks = [hook("a", "10-x"), hook("b", "20-y"), hook("c", "30-z")]
        err = self.assertRaises(HookFailedError, executor.run_phase, "install.d", hooks, {},
                                launcher=launcher)
        self.assertEqual("hook 20-y of element b in phase install.d failed with exit status 3",
                         err.message)
        self.assertIn("boom: no such file", err.hint or "")
        self.assertEqual(2, len(launcher.calls), "hooks after the failure must not run")
        self.assertIn("[b/20-y] boom: no such file", logger.output)

    def test_killed_hook_reports_signal(self) -> None:
        launcher = FakeLauncher({"10-x": (-9, [])})
        err = self.assertRaises(HookFailedError, executor.run_phase, "install.d",
                                [hook("a", "10-x")], {}, launcher=launcher)
        self.assertIn("killed by SIGKILL", err.message)

    def test_trace_runs_shell_hooks_under_bash_x(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        script = top / "10-sh"
        script.write_text("#!/bin/bash\necho hi\n")
        binary = top / "20-py"
        binary.write_text("#!/usr/bin/python3\nprint(1)\n")
        self.assertEqual(["bash", "-x", str(script)],
                         executor.hook_argv(Hook("a", "install.d", "10-sh", script), True))
        self.assertEqual([str(binary)],
                         executor.hook_argv(Hook("a", "install.d", "20-py", binary), True))
        self.assertEqual([str(script)],
                         executor.hook_argv(Hook("a", "install.d", "10-sh", script), False))
