"""sysext-test-elements and the element skeleton, end to end (real bash, real builds).

Fixture: tests/fixtures/element-tests/greeter with the cases ``passes``,
``own-target`` (its own identity and image name), ``missing-file`` (an
``expect`` line that cannot hold) and ``hook-fails`` (a failing check hook);
``untested`` has no cases.  Merging runs only as root (CI runs these as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import fixtures

from sysext_builder.authoring.testing import cases as elementtests
from sysext_builder.authoring.testing import run as caserun
from sysext_builder.authoring.testing import suite
from sysext_builder.errors import ElementFormatError, EnvironmentUnusableError, UsageError
from sysext_builder.sysext import osrelease
from tests.base import TestCase
from tests.functional import base

ELEMENTS = base.FIXTURES / "element-tests"
GREETER_CASES = ["greeter/hook-fails", "greeter/missing-file", "greeter/own-target",
                 "greeter/passes"]
IS_ROOT = os.geteuid() == 0


def run_tests(*args: str) -> subprocess.CompletedProcess[str]:
    return base.run("sysext-test-elements", "--element-path", str(ELEMENTS), *args)


class TestRunner(TestCase):

    def test_passing_case(self) -> None:
        proc = run_tests("greeter/passes")
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertRegex(lines[0], r"^PASS greeter/passes \(\d+\.\d+s\)$")
        self.assertIn("  image passes (passes", lines[1])
        self.assertIn("4 expectation(s) held", lines[1])
        self.assertEqual("1 passed, 0 failed", lines[-1])
        if IS_ROOT:
            self.assertEqual("  merged passes.raw with systemd-sysext: 3 files appeared",
                             lines[2])

    def test_failures_are_reported_per_case(self) -> None:
        proc = run_tests("greeter")
        self.assertEqual(18, proc.returncode, proc.stderr)
        out = proc.stdout
        self.assertIn("FAIL greeter/missing-file: 1 expectation(s) of expect failed\n"
                      "    expect:2: usr/share/greeter/nope is not in the image\n", out)
        self.assertIn("FAIL greeter/hook-fails: build failed (exit 20): hook "
                      "50-check-greeter-fails of element hook-fails in phase post-install.d "
                      "failed with exit status 1", out)
        self.assertIn("greeting is not what this case wants", out)
        self.assertIn("PASS greeter/passes", out)
        self.assertIn("PASS greeter/own-target", out)
        self.assertEqual("2 passed, 2 failed", out.splitlines()[-1])
        self.assertIn("sysext-test-elements: error: 2 of 4 test cases failed: "
                      "greeter/hook-fails, greeter/missing-file", proc.stderr)

    def test_json(self) -> None:
        proc = run_tests("--json", "--no-merge", "greeter")
        self.assertEqual(18, proc.returncode, proc.stderr)
        doc = json.loads(proc.stdout)
        self.assertEqual((2, 2), (doc["passed"], doc["failed"]))
        status = {f'{c["element"]}/{c["case"]}': c["status"] for c in doc["cases"]}
        self.assertEqual({"greeter/hook-fails": "fail", "greeter/missing-file": "fail",
                          "greeter/own-target": "pass", "greeter/passes": "pass"}, status)
        missing = next(c for c in doc["cases"] if c["case"] == "missing-file")
        self.assertEqual(["expect:2: usr/share/greeter/nope is not in the image"],
                         missing["details"])
        self.assertFalse(any("merged" in n for c in doc["cases"] for n in c["notes"]))

    def test_own_target_and_keep(self) -> None:
        proc = run_tests("--keep", "--json", "greeter/own-target")
        self.assertEqual(0, proc.returncode, proc.stderr)
        case = json.loads(proc.stdout)["cases"][0]
        kept = Path(case["kept"])
        self.addCleanup(shutil.rmtree, kept, True)
        release = osrelease.read_file(
            kept / "greeter-own/usr/lib/extension-release.d/extension-release.greeter-own")
        self.assertEqual(("sbtest", "3"), (release["ID"], release["VERSION_ID"]))
        self.assertEqual("hello from greeter\n",
                         (kept / "greeter-own/usr/share/greeter/greeting").read_text())
        if IS_ROOT:
            self.assertIn("merged greeter-own.raw with systemd-sysext: 3 files appeared",
                          case["notes"])

    def test_os_release_option_sets_the_target(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        (tmp / "os-release").write_text("ID=sbother\nVERSION_ID=9\n")
        proc = run_tests("--keep", "--json", "--os-release", str(tmp / "os-release"),
                         "greeter/passes")
        self.assertEqual(0, proc.returncode, proc.stderr)
        kept = Path(json.loads(proc.stdout)["cases"][0]["kept"])
        self.addCleanup(shutil.rmtree, kept, True)
        release = osrelease.read_file(
            kept / "passes/usr/lib/extension-release.d/extension-release.passes")
        self.assertEqual(("sbother", "9"), (release["ID"], release["VERSION_ID"]))

    def test_usage_errors(self) -> None:
        untested = run_tests("untested")
        self.assertEqual(2, untested.returncode)
        self.assertIn("element 'untested'", untested.stderr)
        self.assertIn("has no test cases", untested.stderr)
        self.assertEqual(2, run_tests("greeter/nope").returncode)
        self.assertEqual(11, run_tests("no-such-element").returncode)


class TestOnBase(TestCase):
    """--base: the cases build chrooted on a Debian base and target its os-release."""

    def test_case_on_a_debian_base(self) -> None:
        base.require_root("building on a base")
        from tests.functional import debian_base

        tarball = debian_base.base_tarball()
        cache = self.useFixture(fixtures.TempDir()).path
        proc = run_tests("--keep", "--json", "--base", str(tarball), "--cache-dir", cache,
                         "greeter/passes")
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        case = json.loads(proc.stdout)["cases"][0]
        kept = Path(case["kept"])
        self.addCleanup(shutil.rmtree, kept, True)
        release = osrelease.read_file(
            kept / "passes/usr/lib/extension-release.d/extension-release.passes")
        self.assertEqual("debian", release["ID"])
        self.assertTrue(release["VERSION_ID"], release)
        self.assertIn("merged passes.raw with systemd-sysext: 3 files appeared", case["notes"])


class TestFindCases(TestCase):

    def test_default_is_every_element_with_cases(self) -> None:
        self.isolate_search_path()
        cases = suite.find_cases([str(ELEMENTS)], {})
        self.assertEqual(GREETER_CASES, [c.label for c in cases])
        self.assertEqual(ELEMENTS / "greeter/test-elements/passes", cases[-1].path)

    def test_selection(self) -> None:
        self.isolate_search_path()
        cases = suite.find_cases([str(ELEMENTS)], {}, ["greeter/passes", "greeter"])
        self.assertEqual(["greeter/passes", "greeter/hook-fails", "greeter/missing-file",
                          "greeter/own-target"], [c.label for c in cases])
        self.assertRaises(UsageError, suite.find_cases, [str(ELEMENTS)], {},
                          ["untested"])


class TestChecks(TestCase):
    """The checks of a built image, on hand-made trees."""

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def tree(self, name: str, release_name: str, text: str) -> Path:
        release_dir = self.tmp / name / "usr/lib/extension-release.d"
        release_dir.mkdir(parents=True)
        (release_dir / f"extension-release.{release_name}").write_text(text)
        return self.tmp / name

    def test_target_of(self) -> None:
        options = elementtests.Options()
        self.assertEqual({"ID": "sysext-test"}, caserun.target_of({"ID": "_any"}, options))
        self.assertEqual({"ID": "debian", "VERSION_ID": "12"},
                         caserun.target_of({"ID": "debian", "VERSION_ID": "12",
                                            "ARCHITECTURE": "x86-64"}, options))
        (self.tmp / "os-release").write_text("ID=fedora\nVERSION_ID=40\n")
        given = elementtests.Options(os_release=self.tmp / "os-release")
        self.assertEqual("fedora", caserun.target_of({"ID": "debian"}, given)["ID"])

    def test_check_image(self) -> None:
        good = self.tree("good", "good", "ID=_any\n")
        self.assertEqual({"ID": "_any"},
                         caserun.check_image(good, elementtests.Options(), 252))
        misnamed = self.tree("misnamed", "other", "ID=_any\n")
        exc = self.assertRaises(elementtests.CaseFailed, caserun.check_image, misnamed,
                                elementtests.Options(), 252)
        self.assertIn("sysext-check: misnamed: no extension-release for image name "
                      "'misnamed'", exc.reason)
        with_os = self.tree("withos", "withos", "ID=_any\n")
        (with_os / "usr/lib/os-release").write_text("ID=debian\n")
        exc = self.assertRaises(elementtests.CaseFailed, caserun.check_image, with_os,
                                elementtests.Options(), 252)
        self.assertIn("ships usr/lib/os-release", exc.reason)
        (self.tmp / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
        other = self.tree("other", "other", "ID=debian\nVERSION_ID=11\n")
        exc = self.assertRaises(elementtests.CaseFailed, caserun.check_image, other,
                                elementtests.Options(os_release=self.tmp / "os-release"), 252)
        self.assertEqual("other: incompatible with its target: extension VERSION_ID '11' does "
                         "not match host VERSION_ID '12'", exc.reason)

    def test_want_merge(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))
        self.assertFalse(caserun.want_merge(elementtests.Options()))
        self.assertFalse(caserun.want_merge(elementtests.Options(merge=False)))
        self.assertRaises(EnvironmentUnusableError, caserun.want_merge,
                          elementtests.Options(merge=True))


class TestExpect(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def parse(self, text: str) -> list[elementtests.Expectation]:
        path = self.tmp / "expect"
        path.write_text(text)
        return elementtests.parse_expect(path)

    def test_format(self) -> None:
        rules = self.parse("# comment\n\n/usr/bin/x\n!opt/y/\nusr/z executable\n"
                           "usr/c contains  two  spaces \nusr/d   # trailing comment\n")
        self.assertEqual([
            elementtests.Expectation(3, "usr/bin/x"),
            elementtests.Expectation(4, "opt/y", negate=True),
            elementtests.Expectation(5, "usr/z", check="executable"),
            elementtests.Expectation(6, "usr/c", check="contains", text=" two  spaces"),
            elementtests.Expectation(7, "usr/d"),
        ], rules)

    def test_boot_lines(self) -> None:
        rules = self.parse("usr/a\nboot  active  a.service\nboot no-failed-units\n")
        self.assertEqual([elementtests.Expectation(2, "", check="boot", text="active a.service"),
                          elementtests.Expectation(3, "", check="boot", text="no-failed-units")],
                         rules[1:])
        root = self.tmp / "tree"
        (root / "usr").mkdir(parents=True)
        (root / "usr/a").write_text("")
        self.assertEqual([], elementtests.check_expectations(rules, root),
                         "boot lines are not checked against the tree")
        exc = self.assertRaises(ElementFormatError, self.parse, "usr/a\nboot actve a\n")
        self.assertIn(":2: unknown boot assertion 'actve'", exc.message)

    def test_malformed_lines_name_the_line(self) -> None:
        for text, fragment in (("usr/a\netc/x\n", ":2: 'etc/x' is outside usr/ and opt/"),
                               ("usr/../etc\n", ":1: 'usr/../etc' is not a plain"),
                               ("usr/a is-there\n", ":1: expected 'PATH', '!PATH'"),
                               ("!usr/a executable\n", ":1: '!PATH' takes no check")):
            exc = self.assertRaises(ElementFormatError, self.parse, text)
            self.assertIn(fragment, exc.message)

    def test_checks_against_a_tree(self) -> None:
        root = self.tmp / "tree"
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin/run").write_text("#!/bin/sh\n")
        (root / "usr/bin/run").chmod(0o755)
        (root / "usr/bin/data").write_text("hello world\n")
        os.symlink("run", root / "usr/bin/link")
        ok = self.parse("usr/bin/run executable\nusr/bin/data contains hello\nusr/bin/link\n"
                        "usr/bin/d*\n!usr/lib/os-release\n!usr/sbin/*\n")
        self.assertEqual([], elementtests.check_expectations(ok, root))
        bad = self.parse("usr/bin/data executable\nusr/bin/run contains hello\n"
                         "usr/bin/link executable\n!usr/bin/*\nopt/x\nusr/lib/*.so\n")
        self.assertEqual([
            "expect:1: usr/bin/data is not executable (mode 0644)",
            "expect:2: usr/bin/run does not contain 'hello'",
            "expect:3: usr/bin/link is not a regular file",
            "expect:4: usr/bin/data is in the image but must not be",
            "expect:5: opt/x is not in the image",
            "expect:6: usr/lib/*.so is not in the image",
        ], elementtests.check_expectations(bad, root))


class TestSkeleton(TestCase):
    """sysext-element-new's skeleton lints clean, builds, and its test case passes."""

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        proc = base.run("sysext-element-new", "my-tool", "--dir", str(self.dir))
        self.assertEqual((0, f"{self.dir}/my-tool\n"), (proc.returncode, proc.stdout),
                         proc.stderr)

    def test_lints_clean(self) -> None:
        proc = base.run("sysext-element-lint", str(self.dir / "my-tool"))
        self.assertEqual((0, "", ""), (proc.returncode, proc.stdout, proc.stderr))

    def test_builds(self) -> None:
        out = self.dir / "out"
        proc = base.run("sysext-create", "my-tool", "--element-path", str(self.dir),
                        "--os-id", "_any", "-t", "directory", "-o", f"{out}/")
        self.assertEqual(0, proc.returncode, proc.stderr)
        tree = out / "my-tool"
        self.assertEqual("hello from my-tool\n",
                         (tree / "usr/share/my-tool/hello").read_text())
        self.assertEqual(0o755, (tree / "usr/bin/my-tool-hello").stat().st_mode & 0o777)
        release = osrelease.read_file(
            tree / "usr/lib/extension-release.d/extension-release.my-tool")
        self.assertEqual("_any", release["ID"])

    def test_variable_reaches_the_image(self) -> None:
        out = self.dir / "out"
        proc = base.run("sysext-create", "my-tool", "--element-path", str(self.dir),
                        "--os-id", "_any", "-t", "directory", "-o", f"{out}/",
                        env={"DIB_MY_TOOL_GREETING": "custom words"})
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual("custom words\n",
                         (out / "my-tool/usr/share/my-tool/hello").read_text())

    def test_its_test_case_passes(self) -> None:
        proc = base.run("sysext-test-elements", "my-tool", "--element-path", str(self.dir))
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.assertIn("PASS my-tool/basic", proc.stdout)
        self.assertIn("3 expectation(s) held", proc.stdout)
