"""tools/test-summary on real subunit v2 streams; tests.base.require.

The streams come from running tiny testtools suites through subunit's
StreamResultToBytes, as ``stestr last --subunit`` would hand them over.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import unittest

import fixtures
import subunit
import testtools

from tests.base import REPO_ROOT, REQUIRE_ENV, TestCase, require

SUMMARY = REPO_ROOT / "tools" / "test-summary"


def sample_cases() -> list[unittest.TestCase]:
    """Made here, not at module level, so the test loader does not collect them."""

    class Sample(testtools.TestCase):
        def test_passes(self) -> None:
            pass

        def test_passes_too(self) -> None:
            pass

        def test_fails(self) -> None:
            self.fail("expected failure")

        def test_errors(self) -> None:
            raise RuntimeError("boom")

        def test_skips(self) -> None:
            self.skipTest("docutils is not installed")

        def test_needs_a_tool(self) -> None:
            require("tools", False, "mkfs.erofs not installed (apt-get install erofs-utils)")

        def test_needs_root(self) -> None:
            require("root", False, "merging needs root\n  (CI runs as root)")

        def test_has_what_it_needs(self) -> None:
            require("network", True, "never shown")

    Sample.__module__, Sample.__qualname__ = "sample", "Sample"
    return [Sample(name) for name in sorted(n for n in dir(Sample) if n.startswith("test_"))]


def subunit_stream(cases: list[unittest.TestCase]) -> bytes:
    """The subunit v2 bytes of running ``cases``."""
    buffer = io.BytesIO()
    result = testtools.ExtendedToStreamDecorator(subunit.StreamResultToBytes(buffer))
    result.startTestRun()
    try:
        unittest.TestSuite(cases).run(result)
    finally:
        result.stopTestRun()
    return buffer.getvalue()


def only(*names: str) -> list[unittest.TestCase]:
    return [case for case in sample_cases() if case.id().rpartition(".")[2] in names]


class TestSummary(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(fixtures.EnvironmentVariable(REQUIRE_ENV))

    def summarise(self, stream: bytes) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, str(SUMMARY)], input=stream,
                              capture_output=True, timeout=60, check=False)
        return subprocess.CompletedProcess(done.args, done.returncode,
                                           done.stdout.decode(), done.stderr.decode())

    def test_counts_skip_lines_and_failures(self) -> None:
        done = self.summarise(subunit_stream(sample_cases()))
        lines = done.stdout.splitlines()
        self.assertEqual("3 passed, 2 failed, 3 skipped", lines[-1])
        self.assertEqual([
            "SKIPPED: sample.Sample.test_needs_a_tool: "
            "mkfs.erofs not installed (apt-get install erofs-utils)",
            "SKIPPED: sample.Sample.test_needs_root: merging needs root (CI runs as root)",
            "SKIPPED: sample.Sample.test_skips: docutils is not installed",
        ], lines[:-1])
        self.assertEqual(1, done.returncode)
        self.assertIn("FAILED: sample.Sample.test_fails", done.stderr)
        self.assertIn("FAILED: sample.Sample.test_errors", done.stderr)

    def test_passes_and_skips_exit_zero(self) -> None:
        done = self.summarise(subunit_stream(only("test_passes", "test_skips")))
        self.assertEqual(["SKIPPED: sample.Sample.test_skips: docutils is not installed",
                          "1 passed, 0 failed, 1 skipped"], done.stdout.splitlines())
        self.assertEqual((0, ""), (done.returncode, done.stderr))

    def test_all_passed_prints_only_the_counts(self) -> None:
        done = self.summarise(subunit_stream(only("test_passes", "test_passes_too")))
        self.assertEqual(("2 passed, 0 failed, 0 skipped\n", 0),
                         (done.stdout, done.returncode))

    def test_one_failure_exits_one(self) -> None:
        done = self.summarise(subunit_stream(only("test_passes", "test_fails")))
        self.assertEqual(("1 passed, 1 failed, 0 skipped\n", 1),
                         (done.stdout, done.returncode))
        self.assertEqual("FAILED: sample.Sample.test_fails\n", done.stderr)

    def test_no_test_ran_exits_one(self) -> None:
        for stream in (b"", subunit_stream([])):
            done = self.summarise(stream)
            self.assertEqual(("0 passed, 0 failed, 0 skipped\n", 1),
                             (done.stdout, done.returncode))
            self.assertIn("no test ran", done.stderr)

    def test_required_kinds_turn_skips_into_failures(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(REQUIRE_ENV, "tools,network"))
        done = self.summarise(subunit_stream(sample_cases()))
        lines = done.stdout.splitlines()
        self.assertEqual("3 passed, 3 failed, 2 skipped", lines[-1])
        self.assertEqual([
            "SKIPPED: sample.Sample.test_needs_root: merging needs root (CI runs as root)",
            "SKIPPED: sample.Sample.test_skips: docutils is not installed",
        ], lines[:-1])
        self.assertIn("FAILED: sample.Sample.test_needs_a_tool", done.stderr)
        self.assertEqual(1, done.returncode)


class TestRequire(TestCase):

    def test_skips_with_the_reason_by_default(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(REQUIRE_ENV))
        for kind in ("root", "network", "tools"):
            err = self.assertRaises(unittest.SkipTest, require, kind, False, "why not")
            self.assertEqual("why not", str(err))
            require(kind, True, "fine")

    def test_listed_kinds_fail_with_the_reason(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(REQUIRE_ENV, " root, tools "))
        for kind in ("root", "tools"):
            err = self.assertRaises(AssertionError, require, kind, False, "why not")
            self.assertTrue(str(err).startswith("why not ["), str(err))
            require(kind, True, "fine")
        self.assertRaises(unittest.SkipTest, require, "network", False, "offline")

    def test_unknown_kinds_are_errors(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable(REQUIRE_ENV))
        self.assertRaises(ValueError, require, "gpu", False, "no gpu")
        self.useFixture(fixtures.EnvironmentVariable(REQUIRE_ENV, "root,netwrok"))
        err = self.assertRaises(AssertionError, require, "root", True, "fine")
        self.assertIn("netwrok", str(err))

    def test_ci_run_requires_every_kind(self) -> None:
        script = (REPO_ROOT / ".ci" / "run").read_text()
        self.assertIn("export SYSEXT_TESTS_REQUIRE=root,network,tools", script)
        self.assertTrue(os.access(REPO_ROOT / ".ci" / "run", os.X_OK))
