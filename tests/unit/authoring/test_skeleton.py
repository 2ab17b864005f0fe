"""sysext-element-new: the skeleton is complete, lints clean, and refuses bad input.

(That it builds and its test case passes is in tests/functional/test_element_tests.py.)
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from pathlib import Path

import fixtures

from sysext_builder.authoring import skeleton
from sysext_builder.authoring.lint import check as lint
from sysext_builder.authoring.testing.cases import parse_expect
from sysext_builder.errors import UsageError
from sysext_builder.model.element import SearchDir, load_element, read_name_list
from sysext_builder.sysext.units import parse_units
from tests.base import CLIResult, TestCase


class SkeletonTestCase(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def mode(self, rel: str) -> int:
        return stat.S_IMODE((self.dir / rel).stat().st_mode)


class TestCreate(SkeletonTestCase):

    def test_files_and_modes(self) -> None:
        path = skeleton.create("my-tool", self.dir)
        self.assertEqual(self.dir / "my-tool", path)
        files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        self.assertEqual(["README.rst", "element-deps", "environment.d/10-my-tool",
                          "install.d/50-my-tool", "test-elements/basic/README.rst",
                          "test-elements/basic/element-deps", "test-elements/basic/expect",
                          "test-elements/basic/post-install.d/50-check-my-tool", "units"],
                         files)
        self.assertEqual(0o755, self.mode("my-tool/install.d/50-my-tool"))
        self.assertEqual(0o755, self.mode(
            "my-tool/test-elements/basic/post-install.d/50-check-my-tool"))
        self.assertEqual(0o644, self.mode("my-tool/environment.d/10-my-tool"))
        self.assertEqual(0o755, self.mode("my-tool/test-elements"))
        self.assertEqual([], [p.name for p in self.dir.iterdir() if p.name != "my-tool"],
                         "the temporary directory was left behind")

    def test_contents_use_the_name(self) -> None:
        path = skeleton.create("my-tool", self.dir)
        readme = (path / "README.rst").read_text()
        self.assertTrue(readme.startswith("my-tool\n=======\n"), readme)
        self.assertIn("``DIB_MY_TOOL_GREETING``", readme)
        hook = (path / "install.d/50-my-tool").read_text()
        self.assertIn('source "$SYSEXT_FUNCTIONS"', hook)
        self.assertIn("sysext_install_file", hook)
        self.assertIn("/usr/share/my-tool/hello", hook)
        self.assertIn('export DIB_MY_TOOL_GREETING=${DIB_MY_TOOL_GREETING:-"hello from my-tool"}',
                      (path / "environment.d/10-my-tool").read_text())
        self.assertEqual((), read_name_list(path / "element-deps"))
        self.assertEqual([], parse_units(path / "units"))
        self.assertIn("#enable my-tool.service", (path / "units").read_text())

    def test_test_case_depends_on_the_element(self) -> None:
        path = skeleton.create("my-tool", self.dir)
        case = load_element(path / "test-elements/basic")
        self.assertEqual(("my-tool",), case.deps)
        rules = parse_expect(path / "test-elements/basic/expect")
        self.assertEqual([("usr/share/my-tool/hello", False, "contains"),
                          ("usr/bin/my-tool-hello", False, "executable"),
                          ("usr/lib/os-release", True, "exists")],
                         [(r.pattern, r.negate, r.check) for r in rules])

    def test_lints_clean(self) -> None:
        path = skeleton.create("my-tool", self.dir)
        self.assertEqual([], lint.lint([path], [SearchDir(self.dir, "--element-path")]))

    def test_creates_missing_parent_directories(self) -> None:
        path = skeleton.create("x1", self.dir / "a" / "b")
        self.assertTrue((path / "README.rst").is_file())


class TestRefusals(SkeletonTestCase):

    def test_invalid_names(self) -> None:
        for name in ("", "-x", "a.b", "a_b", "a+b", "a/b", "a b", "ä", "x" * 64):
            exc = self.assertRaises(UsageError, skeleton.create, name, self.dir)
            self.assertIn("invalid element name", exc.message)
        self.assertEqual([], os.listdir(self.dir))

    def test_existing_directory(self) -> None:
        (self.dir / "taken").mkdir()
        (self.dir / "taken" / "mine").write_text("keep me")
        exc = self.assertRaises(UsageError, skeleton.create, "taken", self.dir)
        self.assertEqual(f"{self.dir}/taken already exists", exc.message)
        self.assertEqual(["mine"], os.listdir(self.dir / "taken"))

    def test_existing_file_or_link(self) -> None:
        (self.dir / "file").write_text("")
        os.symlink("nowhere", self.dir / "link")
        self.assertRaises(UsageError, skeleton.create, "file", self.dir)
        self.assertRaises(UsageError, skeleton.create, "link", self.dir)


class TestCLI(SkeletonTestCase):

    def run_new(self, *argv: str) -> CLIResult:
        from sysext_builder.cli import element_new

        self._restore_root_logger()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = element_new.main(list(argv))
        return CLIResult(code, out.getvalue(), err.getvalue())

    def test_prints_the_new_path(self) -> None:
        result = self.run_new("hello", "--dir", str(self.dir))
        self.assertEqual((0, f"{self.dir}/hello\n", ""),
                         (result.code, result.stdout, result.stderr))

    def test_default_dir_is_the_current_directory(self) -> None:
        cwd = os.getcwd()
        os.chdir(self.dir)
        self.addCleanup(os.chdir, cwd)
        self.assertEqual(0, self.run_new("here").code)
        self.assertTrue((self.dir / "here/install.d/50-here").is_file())

    def test_refusal_exit_codes(self) -> None:
        bad = self.run_new("a.b", "--dir", str(self.dir))
        self.assertEqual(2, bad.code)
        self.assertIn("sysext-element-new: error: invalid element name 'a.b'", bad.stderr)
        self.assertEqual(0, self.run_new("dup", "--dir", str(self.dir)).code)
        again = self.run_new("dup", "--dir", str(self.dir))
        self.assertEqual((2, ""), (again.code, again.stdout))
        self.assertIn("already exists", again.stderr)
