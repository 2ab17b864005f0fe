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

    def test_no_files_returns_base(self) -> None:
        self.assertEqual({"X": "1"}, environment.source([], {"X": "1"}))
