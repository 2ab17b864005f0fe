"""Error lines: bounded, one line, no control characters; hostile reads give them."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder import runner
from sysext_builder.cli import check, common
from sysext_builder.errors import ElementFormatError, ReleaseError
from tests.base import CLIResult, RootLoggerRestored


def run_body(exc: Exception) -> CLIResult:
    def body() -> int:
        raise exc

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = common.run("prog", False, body)
    return CLIResult(code, "", err.getvalue())


class TestOneLine(testtools.TestCase):

    def test_short_text_is_kept(self) -> None:
        self.assertEqual("a b: 'c' é", common.one_line("a b: 'c' é"))

    def test_cut_with_a_count(self) -> None:
        text = "x" * (common.MAX_MESSAGE_CHARS + 1234)
        self.assertEqual("x" * common.MAX_MESSAGE_CHARS + "... (1234 more characters)",
                         common.one_line(text))

    def test_control_characters_and_bad_name_bytes_are_escaped(self) -> None:
        self.assertEqual("a\\x0ab\\x1b[31m\\x7f\\udcff", common.one_line("a\nb\x1b[31m\x7f\udcff"))


class TestReport(testtools.TestCase):

    def test_huge_message_and_hint_are_bounded(self) -> None:
        result = run_body(ReleaseError("m" * 10_000_000, hint="h\n" * 1000))
        self.assertEqual(23, result.code)
        lines = result.stderr.splitlines()
        self.assertEqual(1 + common.MAX_HINT_LINES, len(lines))
        self.assertTrue(lines[0].startswith("prog: error: mmm"))
        self.assertTrue(lines[0].endswith(f"... ({10_000_000 - common.MAX_MESSAGE_CHARS} more "
                                          "characters)"))
        self.assertLess(max(len(line) for line in lines), common.MAX_MESSAGE_CHARS + 100)
        self.assertEqual(["prog: hint: h"] + ["  h"] * (common.MAX_HINT_LINES - 1), lines[1:])

    def test_a_failed_commands_last_output_is_indented_under_the_hint(self) -> None:
        exc = runner.CommandFailed(["tar", "-x"], 2, ["tar: not a tar\x1b[31m", "tar: exiting"],
                                   "unpacking b.tar")
        result = run_body(exc)
        self.assertEqual(["prog: error: unpacking b.tar failed with exit status 2",
                          "prog: hint: last output:", "  tar: not a tar\\x1b[31m",
                          "  tar: exiting"], result.stderr.splitlines())

    def test_newline_in_a_message_stays_one_line(self) -> None:
        result = run_body(ElementFormatError("a\nfake: error: b"))
        self.assertEqual("prog: error: a\\x0afake: error: b\n", result.stderr)


class TestCheckHostileTargets(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(RootLoggerRestored())
        img = self.dir / "hello"
        (img / "usr/lib/extension-release.d").mkdir(parents=True)
        (img / "usr/lib/extension-release.d/extension-release.hello").write_text(
            "ID=fakebase\nVERSION_ID=7\n")
        self.image = img

    def run_check(self, *target: str) -> CLIResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = check.main([*target, "--systemd-version", "252", "--arch", "x86-64",
                               str(self.image)])
        return CLIResult(code, out.getvalue(), err.getvalue())

    def test_os_release_dev_zero(self) -> None:
        result = self.run_check("--os-release", "/dev/zero")
        self.assertEqual(23, result.code)
        self.assertEqual("sysext-check: error: /dev/zero: not a regular file (character "
                         "device)", result.stderr.splitlines()[0])
        self.assertNotIn("Traceback", result.stderr)

    def test_root_link_to_usr_lib_is_the_roots(self) -> None:
        root = self.dir / "root"
        (root / "etc").mkdir(parents=True)
        (root / "usr/lib").mkdir(parents=True)
        (root / "usr/lib/os-release").write_text("ID=fakebase\nVERSION_ID=7\n")
        os.symlink("/usr/lib/os-release", root / "etc/os-release")
        result = self.run_check("--root", str(root))
        self.assertEqual(0, result.code, result.stderr)
        self.assertEqual("compatible\n", result.stdout)

    def test_root_fifo(self) -> None:
        root = self.dir / "root"
        (root / "etc").mkdir(parents=True)
        os.mkfifo(root / "etc/os-release")
        result = self.run_check("--root", str(root))
        self.assertEqual(23, result.code)
        self.assertIn("etc/os-release: not a regular file (fifo)", result.stderr)


class TestLogfile(testtools.TestCase):

    def test_logfile_in_a_missing_directory_is_one_line_exit_2(self) -> None:
        from sysext_builder.cli import create

        self.useFixture(RootLoggerRestored())
        missing = Path(self.useFixture(fixtures.TempDir()).path) / "no" / "log"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = create.main(["hello", "--logfile", str(missing)])
        self.assertEqual(2, code)
        self.assertEqual([f"sysext-create: error: --logfile {missing}: cannot open it: "
                          "No such file or directory",
                          "sysext-create: hint: give a file in a directory that exists "
                          "and is writable"], err.getvalue().splitlines())
        self.assertFalse(missing.parent.exists())
