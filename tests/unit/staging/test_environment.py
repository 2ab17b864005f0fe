"""environment.d sourcing with the real bash."""

from __future__ import annotations

from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import HookFailedError
from sysext_builder.staging import environment


class TestSource(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def file(self, name: str, text: str) -> Path:
        path = self.top / name
        path.write_text(text)
        return path

    def test_exports_are_seen_in_order_and_plain_variables_are_not(self) -> None:
        files = [("a", self.file("10-a", "export GREETING=hello\nLOCAL_ONLY=1\n")),
                 ("b", self.file("20-b", 'export GREETING="$GREETING world"\n'
                                          'export FROM_BASE="$BASEVAR!"\n'))]
        env = environment.source(files, {"PATH": "/usr/bin:/bin", "BASEVAR": "base"})
        self.assertEqual("hello world", env["GREETING"])
        self.assertEqual("base!", env["FROM_BASE"])
        self.assertNotIn("LOCAL_ONLY", env)
        self.assertEqual("base", env["BASEVAR"])

    def test_values_with_newlines_survive(self) -> None:
        files = [("a", self.file("10-a", "export MULTI=$'one\\ntwo'\n"))]
        env = environment.source(files, {"PATH": "/usr/bin:/bin"})
        self.assertEqual("one\ntwo", env["MULTI"])

    def test_failing_file_names_element_and_file(self) -> None:
        files = [("good", self.file("10-good", "export A=1\n")),
                 ("broken", self.file("20-broken", "echo about to fail >&2\nfalse\n"))]
        err = self.assertRaises(HookFailedError, environment.source, files,
                                {"PATH": "/usr/bin:/bin"}, "install.d")
        self.assertEqual("environment file broken/environment.d/20-broken failed "
                         "before install.d", err.message)
        self.assertIn("about to fail", err.hint or "")

    def two(self, text: str) -> list[tuple[str, Path]]:
        return [("good", self.file("10-good", "export A=1\necho good file output\n")),
                ("broken", self.file("20-broken", text)),
                ("later", self.file("30-later", "export B=1\n"))]

    def test_return_1_names_the_file_and_shows_its_output(self) -> None:
        err = self.assertRaises(HookFailedError, environment.source,
                                self.two("echo on stdout\necho on stderr >&2\nreturn 1\n"),
                                {"PATH": "/usr/bin:/bin"}, "install.d")
        self.assertEqual("environment file broken/environment.d/20-broken failed "
                         "before install.d", err.message)
        self.assertIn("on stdout", err.hint or "")
        self.assertIn("on stderr", err.hint or "")
        self.assertNotIn("good file output", err.hint or "")
        self.assertNotIn("__SYSEXT", err.hint or "")

    def test_exit_names_the_file_and_shows_its_output(self) -> None:
        err = self.assertRaises(HookFailedError, environment.source,
                                self.two("echo giving up\nexit 3\n"),
                                {"PATH": "/usr/bin:/bin"}, "defaults")
        self.assertEqual("environment file broken/environment.d/20-broken failed with "
                         "exit status 3 before defaults", err.message)
        self.assertIn("giving up", err.hint or "")

    def test_exit_after_clobbering_traps_and_variables_still_names_the_file(self) -> None:
        err = self.assertRaises(HookFailedError, environment.source,
                                self.two("trap - EXIT\n__sb_i=0\n__sb_files=()\nexit 1\n"),
                                {"PATH": "/usr/bin:/bin"})
        self.assertIn("broken/environment.d/20-broken", err.message)
        self.assertEqual("the file printed nothing", err.hint)

    def test_exit_0_is_an_error_naming_the_file(self) -> None:
        err = self.assertRaises(HookFailedError, environment.source, self.two("exit 0\n"),
                                {"PATH": "/usr/bin:/bin"})
        self.assertIn("broken/environment.d/20-broken called exit 0", err.message)

    def test_output_of_good_files_is_not_in_the_environment(self) -> None:
        env = environment.source(self.two("export C=1\n"), {"PATH": "/usr/bin:/bin"})
        self.assertEqual(("1", "1", "1"), (env["A"], env["B"], env["C"]))

    def test_no_files_returns_base(self) -> None:
        self.assertEqual({"X": "1"}, environment.source([], {"X": "1"}))
